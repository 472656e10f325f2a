// Command netsim simulates X for the inbox on one machine: it serves a fake
// X API that the inbox sends its replies to, and it plays a small cast of
// residents who post mentions and direct messages to the council through
// signed webhooks, and who answer each message the council sends them.
//
//	netsim [flags]                  serve the fake X API and play residents
//	netsim send -kind mention|dm -from HANDLE -text TEXT [-in-reply-to ID]
//	                                send one signed webhook and exit
//
// `make run` starts it next to the inbox; the inbox's configuration points
// the X account's api_base_url at -listen.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
)

const usage = `usage:
  netsim [flags]
      serve the fake X API on -listen and play residents writing to the
      council through -webhook
  netsim send -kind mention|dm -from HANDLE -text TEXT [-in-reply-to ID] [flags]
      send one signed webhook; exit 0 if the inbox answered 200

`

// Defaults shared by both modes.
const (
	defaultListen    = "127.0.0.1:8081"
	defaultWebhook   = "http://127.0.0.1:8080/webhooks/x/council-x"
	defaultReady     = "http://127.0.0.1:9090/readyz" // the inbox's operations listener
	defaultCouncilID = "1500000000000000001"
	secretEnv        = "X_CONSUMER_SECRET"
)

// shutdownTimeout bounds how long the fake X API waits for requests in
// flight when netsim stops.
const shutdownTimeout = 5 * time.Second

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "netsim:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "send" {
		return sendOnce(ctx, args[1:], stdout, stderr)
	}
	return simulate(ctx, args, stdout, stderr)
}

// target is where webhooks go and how they are signed.
type target struct {
	webhook   string
	secret    string
	councilID string
}

// addTargetFlags declares the flags both modes share.
// parseWithTarget adds the target flags to fs, parses args and checks the
// target. help is true when -h was asked for and the usage printed.
func parseWithTarget(fs *flag.FlagSet, t *target, args []string, stderr io.Writer) (help bool, err error) {
	addTargetFlags(fs, t)
	if err := parseFlags(fs, args, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return true, nil
		}
		return false, err
	}
	return false, t.check()
}

func addTargetFlags(fs *flag.FlagSet, t *target) {
	fs.StringVar(&t.webhook, "webhook", defaultWebhook, "the inbox's X webhook URL")
	fs.StringVar(&t.secret, "secret", "", "consumer secret that signs webhooks (default: $"+secretEnv+")")
	fs.StringVar(&t.councilID, "council-id", defaultCouncilID, "the council account's X user id")
}

// check completes and validates the shared flags after parsing.
func (t *target) check() error {
	if t.secret == "" {
		t.secret = os.Getenv(secretEnv)
	}
	if t.secret == "" {
		return errors.New("no consumer secret: set -secret or " + secretEnv)
	}
	u, err := url.Parse(t.webhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-webhook %q is not an http(s) URL", t.webhook)
	}
	if t.councilID == "" {
		return errors.New("-council-id is empty")
	}
	return nil
}

func (t *target) client() *webhook {
	return &webhook{
		url:     t.webhook,
		secret:  t.secret,
		http:    &http.Client{Timeout: 10 * time.Second},
		tries:   4,
		backoff: 250 * time.Millisecond,
	}
}

// parseFlags parses args into fs; -h prints the usage and yields
// flag.ErrHelp.
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) error {
	fs.SetOutput(stderr)
	fs.Usage = func() {
		printf(stderr, "%s", usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return nil
}

// simulate serves the fake X API and plays residents until ctx ends, or
// until -count events are sent when -exit-after-count is set.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		t              target
		fs             = flag.NewFlagSet("netsim", flag.ContinueOnError)
		listen         = fs.String("listen", defaultListen, "address of the fake X API")
		ready          = fs.String("ready", defaultReady, "the inbox's readiness URL, on its operations listener (INBOX_OPS_ADDR)")
		wait           = fs.Duration("wait", 60*time.Second, "how long to wait for -ready to answer 200 (0: do not wait)")
		interval       = fs.Duration("interval", 4*time.Second, "time between resident events")
		count          = fs.Int("count", 0, "resident events to send (0: no limit)")
		exitAfterCount = fs.Bool("exit-after-count", false, "exit once -count events are sent, instead of serving until interrupted")
		answerDelay    = fs.Duration("answer-delay", 3*time.Second, "how long a resident takes to answer the council")
	)
	if help, err := parseWithTarget(fs, &t, args, stderr); help || err != nil {
		return err
	}
	if *interval <= 0 {
		return errors.New("-interval must be positive")
	}
	if *count < 0 {
		return errors.New("-count must not be negative")
	}
	if u, err := url.Parse(*ready); *wait > 0 && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "") {
		return fmt.Errorf("-ready %q is not an http(s) URL", *ready)
	}

	// Residents.
	hook := t.client()
	p := newPlayer(hook, stdout, t.councilID)
	p.interval = *interval
	p.count = *count
	p.exitAfterCount = *exitAfterCount
	p.answerDelay = *answerDelay

	// Fake X API.
	fake := xfake.New()
	fake.SetUserID(t.councilID)
	fake.OnSent(p.councilSent)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("fake X API: %w", err)
	}
	srv := &http.Server{Handler: fake, ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("fake X API: %w", err))
		}
	}()
	printf(stdout, "fake X API on http://%s (what the council sent: /__sim/sent)\n", ln.Addr())

	// Play until interrupted.
	err = start(ctx, hook, *ready, *wait, stdout)
	if err == nil {
		printf(stdout, "residents write every %s, and answer each message the council sends them %s later\n",
			*interval, *answerDelay)
		err = p.play(ctx)
	}
	if errors.Is(err, context.Canceled) {
		// Interrupted while waiting for the inbox: a normal way to stop.
		err = nil
	}

	shutdownCtx, cancelShutdown := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancelShutdown()
	if serr := srv.Shutdown(shutdownCtx); serr != nil {
		err = errors.Join(err, fmt.Errorf("fake X API shutdown: %w", serr))
	}
	<-served
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = errors.Join(err, cause)
	}
	if err == nil {
		printf(stdout, "netsim stopped\n")
	}
	return err
}

// start waits until the inbox is ready and checks that it shares the
// consumer secret.
func start(ctx context.Context, hook *webhook, readyURL string, wait time.Duration, stdout io.Writer) error {
	if wait > 0 {
		if err := waitReady(ctx, hook.http, readyURL, wait, stdout); err != nil {
			return err
		}
	}
	if err := hook.checkCRC(ctx); err != nil {
		return err
	}
	printf(stdout, "CRC check OK: the inbox and netsim share the consumer secret\n")
	return nil
}

// sendOnce sends one signed webhook, for scripts.
func sendOnce(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var (
		t         target
		fs        = flag.NewFlagSet("netsim send", flag.ContinueOnError)
		kind      = fs.String("kind", "mention", "mention or dm")
		from      = fs.String("from", "", "the resident's handle (one of the cast, or any other)")
		text      = fs.String("text", "", "what the resident writes")
		inReplyTo = fs.String("in-reply-to", "", "id of the post a mention answers")
	)
	if help, err := parseWithTarget(fs, &t, args, stderr); help || err != nil {
		return err
	}
	switch {
	case strings.TrimPrefix(*from, "@") == "":
		return errors.New("send: -from is required")
	case *text == "":
		return errors.New("send: -text is required")
	case *kind != "mention" && *kind != "dm":
		return fmt.Errorf("send: -kind %q is not mention or dm", *kind)
	case *kind == "dm" && *inReplyTo != "":
		return errors.New("send: -in-reply-to applies to mentions only")
	}

	r := residentByHandle(*from)
	now := time.Now()
	id := newIDs(now).next()
	var ev event
	switch {
	case *kind == "dm":
		ev = event{label: "DM from @" + r.Handle, text: *text, body: xfake.DirectMessage(council(t.councilID), id, r, *text, now)}
	case *inReplyTo != "":
		ev = event{label: "reply from @" + r.Handle + " to " + *inReplyTo, text: *text,
			body: xfake.Mention(council(t.councilID), id, r, *text, *inReplyTo, now)}
	default:
		ev = event{label: "mention from @" + r.Handle, text: *text, body: xfake.Mention(council(t.councilID), id, r, *text, "", now)}
	}
	d := t.client().post(ctx, ev.body)
	printf(stdout, "→ %s: %s  %s\n", ev.label, oneLine(ev.text), d)
	if d.err != nil {
		return d.err
	}
	if d.status != http.StatusOK {
		return fmt.Errorf("the inbox answered %d", d.status)
	}
	return nil
}
