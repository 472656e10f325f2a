// Command inbox is the citizen inbox server and its admin commands.
//
//	inbox serve                              run every role
//	inbox migrate                            apply database migrations
//	inbox user create -email E -name N -role R -teams a,b | -all-teams   (password prompted, or stdin's first line)
//	inbox user disable -email E
//	inbox token create -email E -name N [-ttl 720h]
//	inbox token revoke -id N
//	inbox rules test [-config F] [-at T]     route JSON lines from stdin with the rules
//	inbox demo-data [-cases N] [-messages M] [-year-end DATE] [-seed S] [-force]
//	                                         fill the database with a year of made-up cases
//
// Infrastructure settings come from INBOX_* environment variables; business
// configuration from the YAML file named by INBOX_CONFIG.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/citizeninbox/inbox/internal/auth"
	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/demodata"
	"github.com/citizeninbox/inbox/internal/networks"
	"github.com/citizeninbox/inbox/internal/server"
	"github.com/citizeninbox/inbox/internal/store"
)

const usage = `usage:
  inbox serve
  inbox migrate
  inbox user create -email EMAIL -name NAME -role adviser|supervisor|admin -teams SLUG,SLUG | -all-teams
                     the password for the web pages is prompted for, or read from the
                     first line of standard input when that is not a terminal
  inbox user disable -email EMAIL
  inbox token create -email EMAIL -name NAME [-ttl DURATION]
  inbox token revoke -id ID
  inbox rules test [-config FILE] [-at TIME]
                     route JSON lines from standard input ({"text", "channel", "account",
                     "visibility", "received_at", "follow_up", "contact_tags"}) with the
                     file's rules and SLA policy, one JSON line out per line in; needs no
                     database, NATS or credentials
  inbox demo-data [-cases N] [-messages M] [-year-end DATE] [-seed S] [-force]
                     fill the database with a made-up year of cases through COPY (default
                     1000000 cases, 5000000 messages, the year ending today, seed 1): the
                     configuration's teams, accounts and SLA policy, surges, late replies,
                     the supervisors' figures; run again with the same flags it does nothing,
                     on a database with other cases it refuses unless given -force

environment:
  INBOX_DATABASE_URL  PostgreSQL URL (default postgres://postgres@127.0.0.1:5432/inbox?sslmode=disable)
  INBOX_NATS_URL      NATS URL(s), may carry user:password; empty starts an embedded NATS with JetStream
  INBOX_NATS_CREDS    .creds file for an external NATS
  INBOX_NATS_CA       CA certificates for an external NATS over TLS
  INBOX_NATS_CERT     client certificate for an external NATS (with INBOX_NATS_KEY)
  INBOX_NATS_KEY      the client certificate's key
  INBOX_NATS_REPLICAS stream replicas in a NATS cluster: 1, 3 or 5 (default 1)
  INBOX_NATS_DIR      embedded NATS data directory (default ./data/nats)
  INBOX_HTTP_ADDR     public listen address: webhooks, API, pages (default 127.0.0.1:8080)
  INBOX_OPS_ADDR      operations listen address: /metrics, /healthz, /readyz (default 127.0.0.1:9090)
  INBOX_PUBLIC_URL    public base URL (default http://INBOX_HTTP_ADDR)
  INBOX_CONFIG        YAML configuration file (default deploy/config.example.yaml)
  INBOX_LOG_LEVEL     debug, info, warn or error (default info)
  INBOX_NATS_NAMESPACE prefix of stream and subject names, for installations sharing one NATS (default none)
  INBOX_SEND_LEASE    how long a claim on a reply lasts unrenewed; a dead replica's reply is taken over after it (default 30s)
`

func main() {
	if err := run(os.Args[1:], os.Getenv, os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "inbox:", err)
		os.Exit(1)
	}
}

func run(args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) error {
	env, err := config.FromEnv(getenv)
	if err != nil {
		return err
	}
	log := newLogger(env.LogLevel, stderr)
	slog.SetDefault(log)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("a command is required")
	}
	switch cmd := args[0]; {
	case cmd == "serve":
		return serve(ctx, env, getenv, log)
	case cmd == "migrate":
		if err := store.Migrate(ctx, env.DatabaseURL); err != nil {
			return err
		}
		log.Info("migrations applied")
		return nil
	case cmd == "user" && len(args) > 1 && args[1] == "create":
		return createUser(ctx, env, getenv, log, args[2:], stdin, stdout, stderr)
	case cmd == "user" && len(args) > 1 && args[1] == "disable":
		return disableUser(ctx, env, log, args[2:], stdout)
	case cmd == "token" && len(args) > 1 && args[1] == "create":
		return createToken(ctx, env, log, args[2:], stdout, stderr)
	case cmd == "token" && len(args) > 1 && args[1] == "revoke":
		return revokeToken(ctx, env, log, args[2:], stdout)
	case cmd == "demo-data":
		return demoData(ctx, env, getenv, log, args[1:], stdout)
	case cmd == "rules" && len(args) > 1 && args[1] == "test":
		return testRules(args[2:], getenv, env, stdin, stdout)
	case cmd == "help" || cmd == "-h" || cmd == "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", cmd)
	}
}

func newLogger(level string, w io.Writer) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}

// drivers are the networks this binary serves (internal/networks).
func drivers() (*channels.Registry, error) { return networks.Registry() }

func serve(ctx context.Context, env config.Env, getenv func(string) string, log *slog.Logger) error {
	registry, err := drivers()
	if err != nil {
		return err
	}
	// SIGHUP reads the configuration file again; one that comes while the
	// server starts waits until it serves.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	file, err := config.Load(env.ConfigFile, getenv, registry)
	if err != nil {
		return err
	}
	srv, err := server.Start(ctx, server.Options{Env: env, File: file, Drivers: registry, Log: log})
	if err != nil {
		return err
	}
	var served error
wait:
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			break wait
		case served = <-srv.Served():
			log.Error("HTTP server stopped", "err", served)
			served = fmt.Errorf("HTTP server stopped: %w", served)
			break wait
		case <-hup:
			reload(ctx, srv, env, getenv, registry, log)
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), env.ShutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return errors.Join(served, fmt.Errorf("shutdown: %w", err))
	}
	log.Info("stopped")
	return served
}

// reload reads the configuration file again and has the server follow it.
// A file that is not valid, or that the server cannot take, is logged with
// the reason (naming the field) and the running configuration is kept.
func reload(ctx context.Context, srv *server.Server, env config.Env, getenv func(string) string, registry *channels.Registry, log *slog.Logger) {
	file, err := config.Load(env.ConfigFile, getenv, registry)
	if err == nil {
		err = srv.Reload(ctx, file)
	}
	if err != nil {
		log.Error("configuration not reloaded; the running configuration is kept", "err", err)
		return
	}
	log.Info("configuration reloaded", "teams", len(file.Teams), "channel_accounts", len(file.ChannelAccounts))
}

func openDB(ctx context.Context, env config.Env, log *slog.Logger) (*auth.Service, func(), error) {
	if err := store.Migrate(ctx, env.DatabaseURL); err != nil {
		return nil, nil, err
	}
	db, err := store.Open(ctx, env.DatabaseURL, log)
	if err != nil {
		return nil, nil, err
	}
	return auth.New(db), func() { _ = store.Close(db) }, nil
}

func createUser(ctx context.Context, env config.Env, getenv func(string) string, log *slog.Logger, args []string,
	stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("user create", flag.ContinueOnError)
	email := fs.String("email", "", "the user's email address")
	name := fs.String("name", "", "the user's full name")
	role := fs.String("role", "adviser", "adviser, supervisor or admin")
	teamList := fs.String("teams", "", "comma-separated slugs of the teams the user belongs to")
	allTeams := fs.Bool("all-teams", false, "the user belongs to every team of the configuration")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var teams []string
	for _, t := range strings.Split(*teamList, ",") {
		if t = strings.TrimSpace(t); t != "" {
			teams = append(teams, t)
		}
	}
	if *allTeams && len(teams) > 0 {
		return errors.New("user create: give -teams or -all-teams, not both")
	}
	password, err := readPassword(stdin, stderr)
	if err != nil {
		return fmt.Errorf("user create: %w", err)
	}
	svc, closeDB, err := openDB(ctx, env, log)
	if err != nil {
		return err
	}
	defer closeDB()
	if len(teams) > 0 || *allTeams {
		// Teams are defined by the configuration file; write them, so that
		// users can be made before the server has first started.
		registry, err := drivers()
		if err != nil {
			return err
		}
		file, err := config.Load(env.ConfigFile, getenv, registry)
		if err != nil {
			return err
		}
		configured := make([]auth.Team, 0, len(file.Teams))
		slugs := make([]string, 0, len(file.Teams))
		for _, t := range file.Teams {
			configured = append(configured, auth.Team{Slug: t.Slug, Name: t.Name})
			slugs = append(slugs, t.Slug)
		}
		for _, t := range teams {
			if !slices.Contains(slugs, t) {
				return fmt.Errorf("user create: no team %q in %s (its teams: %s)", t, env.ConfigFile, strings.Join(slugs, ", "))
			}
		}
		if *allTeams {
			teams = slugs
		}
		if err := svc.DeclareTeams(ctx, configured); err != nil {
			return err
		}
	}
	u, err := svc.CreateUser(ctx, auth.NewUser{Email: *email, Name: *name, Role: *role, Teams: teams, Password: password})
	if err != nil {
		return fmt.Errorf("user create: %w", err)
	}
	in := "no team"
	if len(teams) > 0 {
		in = strings.Join(teams, ", ")
	}
	fmt.Fprintf(stdout, "created user %d <%s> as %s in %s\n", u.ID, u.Email, u.Role, in)
	return nil
}

// readPassword asks for a password at the terminal, without echo and
// twice, or reads the first line of stdin when it is not a terminal.
func readPassword(stdin io.Reader, prompt io.Writer) (string, error) {
	if f, ok := stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(prompt, "Password for the web pages: ")
		first, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		fmt.Fprint(prompt, "The same password again: ")
		again, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(prompt)
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if string(first) != string(again) {
			return "", errors.New("the two passwords differ")
		}
		return checkedPassword(string(first))
	}
	if stdin == nil {
		return "", errPasswordRequired
	}
	line, err := bufio.NewReader(stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read password: %w", err)
	}
	return checkedPassword(strings.TrimRight(line, "\r\n"))
}

var errPasswordRequired = errors.New("a password is required: type it at the prompt, or give it as the first line of standard input")

func checkedPassword(p string) (string, error) {
	if p == "" {
		return "", errPasswordRequired
	}
	return p, nil
}

func disableUser(ctx context.Context, env config.Env, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("user disable", flag.ContinueOnError)
	email := fs.String("email", "", "the email of the user to disable")
	if err := fs.Parse(args); err != nil {
		return err
	}
	svc, closeDB, err := openDB(ctx, env, log)
	if err != nil {
		return err
	}
	defer closeDB()
	u, live, err := svc.DisableUser(ctx, *email)
	if err != nil {
		return fmt.Errorf("user disable: %w", err)
	}
	fmt.Fprintf(stdout, "disabled user %d <%s>; they cannot sign in, their sessions end and their %d valid tokens no longer work\n", u.ID, u.Email, live)
	return nil
}

func revokeToken(ctx context.Context, env config.Env, log *slog.Logger, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("token revoke", flag.ContinueOnError)
	id := fs.Int64("id", 0, "the id of the token, as token create printed it")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *id <= 0 {
		return errors.New("token revoke: -id is required")
	}
	svc, closeDB, err := openDB(ctx, env, log)
	if err != nil {
		return err
	}
	defer closeDB()
	t, err := svc.RevokeToken(ctx, *id)
	if err != nil {
		return fmt.Errorf("token revoke: %w", err)
	}
	fmt.Fprintf(stdout, "revoked token %d %q of <%s>\n", t.ID, t.Name, t.Email)
	return nil
}

func createToken(ctx context.Context, env config.Env, log *slog.Logger, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token create", flag.ContinueOnError)
	email := fs.String("email", "", "the email of the user the token acts for")
	name := fs.String("name", "", "what the token is for")
	ttl := fs.Duration("ttl", 0, "how long the token is valid (0: until revoked)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *name == "" {
		return errors.New("token create: -name is required")
	}
	svc, closeDB, err := openDB(ctx, env, log)
	if err != nil {
		return err
	}
	defer closeDB()
	secret, tok, err := svc.CreateToken(ctx, *email, *name, *ttl)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, secret)
	expiry := "never expires"
	if tok.ExpiresAt != nil {
		expiry = "expires " + tok.ExpiresAt.Format(time.RFC3339)
	}
	fmt.Fprintf(stderr, "token %d %q for %s created; it %s. Keep it safe: it is not shown again.\n", tok.ID, tok.Name, *email, expiry)
	return nil
}

// demoData fills the database with a made-up year of cases (see package
// demodata), after migrating it and writing the configuration's teams and
// accounts as serve does.
func demoData(ctx context.Context, env config.Env, getenv func(string) string, log *slog.Logger, args []string, stdout io.Writer) error {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		return err
	}
	fs := flag.NewFlagSet("demo-data", flag.ContinueOnError)
	n := fs.Int("cases", 1000000, "how many cases")
	m := fs.Int("messages", 5000000, "how many messages, all cases together (at least two a case)")
	end := fs.String("year-end", time.Now().In(london).Format(time.DateOnly), "the date the year ends on (its cases stand as at its first moment)")
	seed := fs.Uint64("seed", 1, "the seed of the made-up data: the same flags make the same data")
	force := fs.Bool("force", false, "add to a database that holds other cases")
	if err := fs.Parse(args); err != nil {
		return err
	}
	registry, err := drivers()
	if err != nil {
		return err
	}
	file, err := config.Load(env.ConfigFile, getenv, registry)
	if err != nil {
		return err
	}
	if err := store.Migrate(ctx, env.DatabaseURL); err != nil {
		return err
	}
	db, err := store.Open(ctx, env.DatabaseURL, log)
	if err != nil {
		return err
	}
	defer func() { _ = store.Close(db) }()
	accts, err := server.SyncConfig(ctx, db, file, registry, env.PublicURL)
	if err != nil {
		return fmt.Errorf("write configuration to the database: %w", err)
	}
	p := demodata.Params{Cases: *n, Messages: *m, YearEnd: *end, Seed: *seed}
	res, err := demodata.Generate(ctx, db, file, p, demodata.Options{Force: *force, Progress: stdout, Replies: accts})
	if err != nil {
		return err
	}
	if res.Skipped {
		fmt.Fprintf(stdout, "demo data: the database already holds this year (%s); nothing to do\n", p.Marker())
		return nil
	}
	s := res.Elapsed.Seconds()
	fmt.Fprintf(stdout, "demo data: %d cases, %d messages, %d residents, %d advisers, %d pauses, %d responses, %d resolutions: "+
		"%d rows in %.1f s, %.0f rows/s\n", res.Cases, res.Messages, res.Contacts, res.Advisers, res.Pauses, res.Responses,
		res.Resolutions, res.Rows(), s, float64(res.Rows())/s)
	return nil
}
