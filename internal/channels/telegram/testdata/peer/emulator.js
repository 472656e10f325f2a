// Starts the telegram-test-api Bot API emulator for peer_test.go and
// drives its emulated user. Usage: node emulator.js PORT BOT_TOKEN.
// Prints "ready <api url>" once listening, then reads one JSON command a
// line on stdin and answers one JSON line on stdout:
//   {"say": TEXT, "userId": N, "chatId": N, "userName": S, "chatType": S}
//     the user sends TEXT to the bot (through the emulator's client API)
//   {"inbox": {"userId": N, "chatId": N}}
//     what the bot sent to that chat, as the user's client receives it
// It stops when stdin closes.
const readline = require('readline');
const TelegramServer = require('telegram-test-api');

const [port, token] = process.argv.slice(2);

async function main() {
  const server = new TelegramServer({ port: Number(port), host: '127.0.0.1', storeTimeout: 600 });
  await server.start();
  const clients = new Map();
  const client = (o) => {
    const key = JSON.stringify([o.userId, o.chatId, o.chatType]);
    if (!clients.has(key)) {
      clients.set(key, server.getClient(token, {
        userId: o.userId, chatId: o.chatId, firstName: o.firstName || 'Resident',
        userName: o.userName, type: o.chatType || 'private', timeout: 5000,
      }));
    }
    return clients.get(key);
  };
  process.stdout.write(`ready ${server.config.apiURL}\n`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    let answer;
    try {
      const cmd = JSON.parse(line);
      if (cmd.say !== undefined) {
        const c = client(cmd);
        answer = await c.sendMessage(c.makeMessage(cmd.say));
      } else if (cmd.inbox) {
        answer = await client(cmd.inbox).getUpdates();
      } else {
        answer = { error: 'unknown command' };
      }
    } catch (err) {
      answer = { error: String(err && err.message ? err.message : err) };
    }
    process.stdout.write(JSON.stringify(answer) + '\n');
  }
  await server.stop();
}

main().catch((err) => {
  process.stderr.write(`emulator: ${err && err.stack ? err.stack : err}\n`);
  process.exit(1);
});
