// Command netsim simulates a network for the inbox on one machine: it
// serves a fake of the network's API that the inbox sends its replies to,
// and it plays a small cast of residents who post to the council and
// message it privately through signed webhooks, and who answer each message
// the council sends them. Each network's fake is registered with one line
// in networks.
//
//	netsim [-network NAME] [flags]  serve the fake API and play residents
//	netsim send [-network NAME] -kind mention|dm -from HANDLE -text TEXT [-in-reply-to ID]
//	                                send one signed webhook and exit
//
// `make run` starts it next to the inbox; the inbox's configuration points
// the account's api_base_url at -listen.
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

	"github.com/citizeninbox/inbox/internal/channels/bluesky/blueskyfake"
	"github.com/citizeninbox/inbox/internal/channels/email/emailfake"
	"github.com/citizeninbox/inbox/internal/channels/mastodon/mastodonfake"
	"github.com/citizeninbox/inbox/internal/channels/meta/metafake"
	"github.com/citizeninbox/inbox/internal/channels/telegram/telegramfake"
	"github.com/citizeninbox/inbox/internal/channels/twilio/twiliofake"
	"github.com/citizeninbox/inbox/internal/channels/x/xfake"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// networks are the networks netsim can simulate, the first by default:
// one line per network.
func networks() []netsim.Network {
	return []netsim.Network{
		xfake.NewSimulation(),
		metafake.NewSimulation(),
		twiliofake.NewSimulation(),
		telegramfake.NewSimulation(),
		mastodonfake.NewSimulation(),
		blueskyfake.NewSimulation(),
		emailfake.NewSimulation(),
	}
}

const usage = `usage:
  netsim [-network NAME] [flags]
      serve the network's fake API on -listen and play residents writing
      to the council through -webhook
  netsim send [-network NAME] -kind mention|dm -from HANDLE -text TEXT [-in-reply-to ID] [flags]
      send one signed webhook; exit 0 if the inbox answered 200

`

// defaultReady is the demo inbox's readiness URL, on its operations
// listener.
const defaultReady = "http://127.0.0.1:9090/readyz"

// shutdownTimeout bounds how long the fake API waits for requests in
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

// target is the network simulated and where its webhooks go.
type target struct {
	network netsim.Network
	webhook string
}

// pickNetwork finds the network -network names in args (the first
// registered one when none is named), before the flags are parsed: the
// other flags depend on it.
func pickNetwork(args []string) (netsim.Network, error) {
	all := networks()
	name := ""
	for i, arg := range args {
		if !strings.HasPrefix(arg, "-") {
			continue // a flag's value, or an argument
		}
		a := strings.TrimPrefix(strings.TrimPrefix(arg, "-"), "-")
		if v, ok := strings.CutPrefix(a, "network="); ok {
			name = v
		} else if a == "network" && i+1 < len(args) {
			name = args[i+1]
		}
	}
	if name == "" {
		return all[0], nil
	}
	var names []string
	for _, n := range all {
		if n.Name() == name {
			return n, nil
		}
		names = append(names, n.Name())
	}
	return nil, fmt.Errorf("-network %q is not one of: %s", name, strings.Join(names, " "))
}

// addTargetFlags declares the flags both modes share.
// parseWithTarget adds the target flags to fs, parses args and checks the
// target. help is true when -h was asked for and the usage printed.
func parseWithTarget(fs *flag.FlagSet, t *target, args []string, stderr io.Writer) (help bool, err error) {
	if t.network, err = pickNetwork(args); err != nil {
		return false, err
	}
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
	var names []string
	for _, n := range networks() {
		names = append(names, n.Name())
	}
	fs.String("network", t.network.Name(), "the network to simulate: "+strings.Join(names, ", "))
	if _, polled := t.network.(netsim.Polled); !polled {
		fs.StringVar(&t.webhook, "webhook", t.network.DefaultWebhook(), "the inbox's "+t.network.Title()+" webhook URL")
	}
	t.network.Flags(fs)
}

// check completes and validates the shared flags after parsing.
func (t *target) check() error {
	if err := t.network.Check(); err != nil {
		return err
	}
	if _, polled := t.network.(netsim.Polled); polled {
		return nil // the inbox polls the fake: there is no webhook
	}
	u, err := url.Parse(t.webhook)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-webhook %q is not an http(s) URL", t.webhook)
	}
	return nil
}

func (t *target) client() *webhook {
	return &webhook{
		url:     t.webhook,
		network: t.network,
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

// simulate serves the fake API and plays residents until ctx ends, or
// until -count events are sent when -exit-after-count is set.
func simulate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	network, err := pickNetwork(args)
	if err != nil {
		return err
	}
	var (
		t              target
		fs             = flag.NewFlagSet("netsim", flag.ContinueOnError)
		listen         = fs.String("listen", network.DefaultListen(), "address of the fake "+network.Title()+" API")
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
	p := newPlayer(hook, stdout)
	p.interval = *interval
	p.count = *count
	p.exitAfterCount = *exitAfterCount
	p.answerDelay = *answerDelay

	// The network's fake API.
	title := t.network.Title()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("fake %s API: %w", title, err)
	}
	srv := &http.Server{Handler: t.network.API(p.councilSent), ReadHeaderTimeout: 5 * time.Second}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	served := make(chan struct{})
	go func() {
		defer close(served)
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			cancel(fmt.Errorf("fake %s API: %w", title, err))
		}
	}()
	printf(stdout, "fake %s API on http://%s (what the council sent: /__sim/sent)\n", title, ln.Addr())

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
		err = errors.Join(err, fmt.Errorf("fake %s API shutdown: %w", title, serr))
	}
	<-served
	if c, ok := t.network.(io.Closer); ok {
		// Servers of its own (email's IMAP and SMTP).
		err = errors.Join(err, c.Close())
	}
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = errors.Join(err, cause)
	}
	if err == nil {
		printf(stdout, "netsim stopped\n")
	}
	return err
}

// start waits until the inbox is ready and checks that it shares the
// network's secret.
func start(ctx context.Context, hook *webhook, readyURL string, wait time.Duration, stdout io.Writer) error {
	if wait > 0 {
		if err := waitReady(ctx, hook.http, readyURL, wait, stdout); err != nil {
			return err
		}
	}
	said, err := hook.network.Handshake(ctx, hook.http, hook.url)
	if err != nil {
		return err
	}
	printf(stdout, "%s\n", said)
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
	if _, polled := t.network.(netsim.Polled); polled {
		return fmt.Errorf("send: the inbox polls %s, so there is no webhook to send to: run netsim -network %s, whose residents write to its fake API", t.network.Title(), t.network.Name())
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
	ids := newIDs(time.Now())
	id := ids.next()
	var ev event
	switch {
	case *kind == "dm":
		ev = event{label: "DM from @" + r.Handle, text: *text, body: t.network.Message(id, r, *text)}
	case *inReplyTo != "":
		ev = event{label: "reply from @" + r.Handle + " to " + *inReplyTo, text: *text,
			body: t.network.Post("", id, r, *text, *inReplyTo, ids.next)}
	default:
		ev = event{label: "mention from @" + r.Handle, text: *text, body: t.network.Post("", id, r, *text, "", ids.next)}
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
