// Package config reads the two kinds of settings: infrastructure from
// environment variables, and business configuration (teams, channel
// accounts and their credentials) from a YAML file whose secrets may name
// environment variables as ${NAME}.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"
	"gopkg.in/yaml.v3"
)

// Env holds the infrastructure settings.
type Env struct {
	// DatabaseURL is a PostgreSQL connection URL.
	DatabaseURL string
	// NATSURL is the NATS server to use; empty starts an embedded
	// nats-server with JetStream that keeps its data in NATSDir.
	NATSURL string
	NATSDir string
	// NATSReplicas is how many servers of the NATS cluster keep each
	// stream (3 for a three-node cluster).
	NATSReplicas int
	// NATSCreds, NATSCA, NATSCert and NATSKey are files that authenticate
	// and secure the connection to an external NATS: a .creds file (user
	// JWT and NKey seed), the CA that signed the servers' certificates, and
	// a client certificate and its key. A user and password, or a token,
	// may also be written in NATSURL (nats://user:password@host:4222).
	NATSCreds string
	NATSCA    string
	NATSCert  string
	NATSKey   string
	// HTTPAddr is the address the public HTTP server listens on: webhooks,
	// the REST API and pages.
	HTTPAddr string
	// OpsAddr is the address of the operations listener: /metrics,
	// /healthz and /readyz, kept off the public one.
	OpsAddr string
	// PublicURL is the base URL networks and browsers use to reach us.
	PublicURL string
	// ConfigFile is the path of the YAML business configuration.
	ConfigFile string
	// LogLevel is debug, info, warn or error.
	LogLevel string
	// ShutdownTimeout bounds each step of graceful shutdown.
	ShutdownTimeout time.Duration
}

// Environment variable names.
const (
	EnvDatabaseURL  = "INBOX_DATABASE_URL"
	EnvNATSURL      = "INBOX_NATS_URL"
	EnvNATSDir      = "INBOX_NATS_DIR"
	EnvNATSReplicas = "INBOX_NATS_REPLICAS"
	EnvNATSCreds    = "INBOX_NATS_CREDS"
	EnvNATSCA       = "INBOX_NATS_CA"
	EnvNATSCert     = "INBOX_NATS_CERT"
	EnvNATSKey      = "INBOX_NATS_KEY"
	EnvHTTPAddr     = "INBOX_HTTP_ADDR"
	EnvOpsAddr      = "INBOX_OPS_ADDR"
	EnvPublicURL    = "INBOX_PUBLIC_URL"
	EnvConfigFile   = "INBOX_CONFIG"
	EnvLogLevel     = "INBOX_LOG_LEVEL"
)

// FromEnv reads the infrastructure settings, applying defaults.
func FromEnv(getenv func(string) string) (Env, error) {
	get := func(name, def string) string {
		if v := strings.TrimSpace(getenv(name)); v != "" {
			return v
		}
		return def
	}
	e := Env{
		DatabaseURL:     get(EnvDatabaseURL, "postgres://postgres@127.0.0.1:5432/inbox?sslmode=disable"),
		NATSURL:         get(EnvNATSURL, ""),
		NATSDir:         get(EnvNATSDir, "./data/nats"),
		NATSCreds:       get(EnvNATSCreds, ""),
		NATSCA:          get(EnvNATSCA, ""),
		NATSCert:        get(EnvNATSCert, ""),
		NATSKey:         get(EnvNATSKey, ""),
		HTTPAddr:        get(EnvHTTPAddr, "127.0.0.1:8080"),
		OpsAddr:         get(EnvOpsAddr, "127.0.0.1:9090"),
		PublicURL:       get(EnvPublicURL, ""),
		ConfigFile:      get(EnvConfigFile, "deploy/config.example.yaml"),
		LogLevel:        get(EnvLogLevel, "info"),
		ShutdownTimeout: 20 * time.Second,
	}
	switch r := get(EnvNATSReplicas, "1"); r {
	case "1", "3", "5":
		e.NATSReplicas = int(r[0] - '0')
	default:
		return Env{}, fmt.Errorf("%s: %q is not 1, 3 or 5", EnvNATSReplicas, r)
	}
	if e.NATSReplicas > 1 && e.NATSURL == "" {
		return Env{}, fmt.Errorf("%s: %d replicas need a NATS cluster in %s", EnvNATSReplicas, e.NATSReplicas, EnvNATSURL)
	}
	if err := e.checkNATSSecurity(); err != nil {
		return Env{}, err
	}
	if e.OpsAddr == e.HTTPAddr {
		return Env{}, fmt.Errorf("%s: %q is also %s; operations endpoints need their own address", EnvOpsAddr, e.OpsAddr, EnvHTTPAddr)
	}
	if e.PublicURL == "" {
		e.PublicURL = "http://" + e.HTTPAddr
	}
	if u, err := url.Parse(e.PublicURL); err != nil || u.Scheme == "" || u.Host == "" {
		return Env{}, fmt.Errorf("%s: %q is not an absolute URL", EnvPublicURL, e.PublicURL)
	}
	switch e.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return Env{}, fmt.Errorf("%s: %q is not debug, info, warn or error", EnvLogLevel, e.LogLevel)
	}
	return e, nil
}

// checkNATSSecurity checks the settings for an external NATS's
// credentials and TLS: they need an external NATS, and a client certificate
// needs its key.
func (e Env) checkNATSSecurity() error {
	if e.NATSURL == "" {
		for _, s := range []struct{ name, value string }{
			{EnvNATSCreds, e.NATSCreds}, {EnvNATSCA, e.NATSCA}, {EnvNATSCert, e.NATSCert}, {EnvNATSKey, e.NATSKey},
		} {
			if s.value != "" {
				return fmt.Errorf("%s applies to an external NATS, and %s is empty (the embedded NATS makes its own credentials)", s.name, EnvNATSURL)
			}
		}
	}
	if (e.NATSCert == "") != (e.NATSKey == "") {
		return fmt.Errorf("%s and %s go together: a client certificate needs its key", EnvNATSCert, EnvNATSKey)
	}
	return nil
}

// File is the business configuration.
type File struct {
	Teams           []Team           `yaml:"teams" validate:"required,min=1,dive"`
	ChannelAccounts []ChannelAccount `yaml:"channel_accounts" validate:"dive"`
}

// Team is one team cases are routed to.
type Team struct {
	Slug string `yaml:"slug" validate:"required,slug"`
	Name string `yaml:"name" validate:"required"`
}

// ChannelAccount is one configured presence on a network.
type ChannelAccount struct {
	Slug    string `yaml:"slug" validate:"required,slug"`
	Channel string `yaml:"channel" validate:"required,oneof=x"`
	Name    string `yaml:"name" validate:"required"`
	// Team receives the account's new cases.
	Team string `yaml:"team" validate:"required,slug"`
	// APIBaseURL is where the network's API is reached (a fake in tests and
	// demos).
	APIBaseURL string `yaml:"api_base_url" validate:"required,url"`
	X          *X     `yaml:"x" validate:"required_if=Channel x,omitempty"`
}

// X holds an X account's identity and credentials.
type X struct {
	// UserID is the account's own numeric X user id.
	UserID string `yaml:"user_id" validate:"required,numeric"`
	// ConsumerSecret signs webhooks (CRC and x-twitter-webhooks-signature).
	ConsumerSecret string `yaml:"consumer_secret" validate:"required"`
	// AccessToken is the OAuth 2.0 user-context token used to post.
	AccessToken string `yaml:"access_token" validate:"required"`
}

// Load reads, expands and validates the YAML file at path.
func Load(path string, getenv func(string) string) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(raw, getenv)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse decodes and validates a YAML configuration. ${NAME} references are
// replaced by the environment variable's value; a reference to an unset
// variable is an error naming the field.
func Parse(raw []byte, getenv func(string) string) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	if err := expandEnv(&root, "", getenv); err != nil {
		return nil, err
	}
	expanded, err := yaml.Marshal(&root)
	if err != nil {
		return nil, err
	}
	var f File
	dec := yaml.NewDecoder(bytes.NewReader(expanded))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if err := f.validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// expandEnv replaces ${NAME} in every scalar, tracking the field path so an
// unset variable is reported where it is used.
func expandEnv(n *yaml.Node, path string, getenv func(string) string) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := expandEnv(c, path, getenv); err != nil {
				return err
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			key := n.Content[i].Value
			p := key
			if path != "" {
				p = path + "." + key
			}
			if err := expandEnv(n.Content[i+1], p, getenv); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expandEnv(c, fmt.Sprintf("%s[%d]", path, i), getenv); err != nil {
				return err
			}
		}
	case yaml.ScalarNode:
		var missing string
		n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
			name := envRef.FindStringSubmatch(ref)[1]
			v := getenv(name)
			if v == "" && missing == "" {
				missing = name
			}
			return v
		})
		if missing != "" {
			return fmt.Errorf("%s: environment variable %s is not set", path, missing)
		}
	}
	return nil
}

var slugRe = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,62}$`)

func (f *File) validate() error {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(fld reflect.StructField) string {
		name := strings.SplitN(fld.Tag.Get("yaml"), ",", 2)[0]
		if name == "-" {
			return ""
		}
		return name
	})
	_ = v.RegisterValidation("slug", func(fl validator.FieldLevel) bool {
		return slugRe.MatchString(fl.Field().String())
	})
	if err := v.Struct(f); err != nil {
		var verrs validator.ValidationErrors
		if errors.As(err, &verrs) {
			msgs := make([]string, 0, len(verrs))
			for _, fe := range verrs {
				msgs = append(msgs, describe(fe))
			}
			return errors.New(strings.Join(msgs, "; "))
		}
		return err
	}
	teams := map[string]bool{}
	for i, t := range f.Teams {
		if teams[t.Slug] {
			return fmt.Errorf("teams[%d].slug: %q is used twice", i, t.Slug)
		}
		teams[t.Slug] = true
	}
	accounts := map[string]bool{}
	for i, a := range f.ChannelAccounts {
		if accounts[a.Slug] {
			return fmt.Errorf("channel_accounts[%d].slug: %q is used twice", i, a.Slug)
		}
		accounts[a.Slug] = true
		if !teams[a.Team] {
			return fmt.Errorf("channel_accounts[%d].team: no team has slug %q", i, a.Team)
		}
	}
	return nil
}

// describe turns a validation error into "path: reason", with the path
// written as in the YAML file (channel_accounts[0].x.user_id).
func describe(fe validator.FieldError) string {
	ns := fe.Namespace()
	if i := strings.Index(ns, "."); i >= 0 {
		ns = ns[i+1:] // drop the root type name
	}
	var reason string
	switch fe.Tag() {
	case "required", "required_if":
		reason = "is required"
	case "min":
		reason = "needs at least " + fe.Param() + " entries"
	case "oneof":
		reason = fmt.Sprintf("%q is not one of: %s", fe.Value(), fe.Param())
	case "url":
		reason = fmt.Sprintf("%q is not a URL", fe.Value())
	case "numeric":
		reason = fmt.Sprintf("%q is not a number", fe.Value())
	case "slug":
		reason = fmt.Sprintf("%q is not a slug (lower-case letters, digits and dashes)", fe.Value())
	default:
		reason = "fails " + fe.Tag()
	}
	return ns + ": " + reason
}

// Account returns the channel account with the given slug.
func (f *File) Account(slug string) (ChannelAccount, bool) {
	for _, a := range f.ChannelAccounts {
		if a.Slug == slug {
			return a, true
		}
	}
	return ChannelAccount{}, false
}
