// Reads signing cases as JSON on stdin and answers, for each, what
// Twilio's helper library computes and accepts: the expected
// X-Twilio-Signature, and whether validateRequest takes each signature
// offered for each URL offered. Run by signature_peer_test.go.
const webhooks = require("twilio/lib/webhooks/webhooks");

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => (input += chunk));
process.stdin.on("end", () => {
  const cases = JSON.parse(input);
  const out = cases.map((c) => {
    // As a form parser hands them over: a string, or an array for a
    // repeated name.
    const params = {};
    for (const [name, values] of c.params) {
      params[name] = values.length === 1 ? values[0] : values;
    }
    return {
      expected: webhooks.getExpectedTwilioSignature(c.token, c.url, params),
      valid: c.checks.map((k) => webhooks.validateRequest(c.token, k.signature, k.url, params)),
    };
  });
  process.stdout.write(JSON.stringify(out));
});
