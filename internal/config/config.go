// Package config reads the two kinds of settings: infrastructure from
// environment variables, and business configuration (teams, channel
// accounts and their credentials) from a YAML file whose secrets may name
// environment variables as ${NAME}.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"text/template"
	"time"

	"github.com/go-playground/validator/v10"
	"gopkg.in/yaml.v3"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/routing"
	"github.com/citizeninbox/inbox/internal/sla"
	"github.com/citizeninbox/inbox/internal/validation"
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
	// NATSNamespace prefixes the streams' and subjects' names, so that
	// several installations (staging beside production) can share one NATS
	// cluster; empty for none.
	NATSNamespace string
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
	// SendLease is how long a sender's claim on a reply lasts without
	// being renewed: a replica that dies mid-send leaves the reply to
	// another after it.
	SendLease time.Duration
}

// namespaceRe is what a stream namespace may be: it becomes part of stream
// names (upper-cased) and subjects (as it is).
var namespaceRe = regexp.MustCompile(`^[a-z][a-z0-9]{0,31}$`)

// Environment variable names.
const (
	EnvDatabaseURL   = "INBOX_DATABASE_URL"
	EnvNATSURL       = "INBOX_NATS_URL"
	EnvNATSDir       = "INBOX_NATS_DIR"
	EnvNATSReplicas  = "INBOX_NATS_REPLICAS"
	EnvNATSCreds     = "INBOX_NATS_CREDS"
	EnvNATSCA        = "INBOX_NATS_CA"
	EnvNATSCert      = "INBOX_NATS_CERT"
	EnvNATSKey       = "INBOX_NATS_KEY"
	EnvNATSNamespace = "INBOX_NATS_NAMESPACE"
	EnvSendLease     = "INBOX_SEND_LEASE"
	EnvHTTPAddr      = "INBOX_HTTP_ADDR"
	EnvOpsAddr       = "INBOX_OPS_ADDR"
	EnvPublicURL     = "INBOX_PUBLIC_URL"
	EnvConfigFile    = "INBOX_CONFIG"
	EnvLogLevel      = "INBOX_LOG_LEVEL"
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
		NATSNamespace:   get(EnvNATSNamespace, ""),
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
	if e.NATSNamespace != "" && !namespaceRe.MatchString(e.NATSNamespace) {
		return Env{}, fmt.Errorf("%s: %q is not a namespace (a letter, then up to 31 lower-case letters and digits)", EnvNATSNamespace, e.NATSNamespace)
	}
	lease, err := time.ParseDuration(get(EnvSendLease, "30s"))
	if err != nil || lease < time.Second {
		return Env{}, fmt.Errorf("%s: %q is not a duration of at least 1s", EnvSendLease, get(EnvSendLease, ""))
	}
	e.SendLease = lease
	if e.OpsAddr == e.HTTPAddr && !strings.HasSuffix(e.OpsAddr, ":0") {
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

	// Calendars are the business calendars SLA targets and routing rules
	// count working time on.
	Calendars []sla.CalendarSpec `yaml:"calendars" validate:"-"`
	// SLA is the SLA policy; without one, cases have no deadlines.
	SLA *sla.PolicySpec `yaml:"sla" validate:"-"`
	// Services is the catalogue of services (Open311-style codes).
	Services []routing.ServiceSpec `yaml:"services" validate:"-"`
	// Routing is the routing rules; without them, every case goes to its
	// channel account's team at normal priority.
	Routing *routing.Spec `yaml:"routing" validate:"-"`
	// Acknowledgements are the automatic replies' texts.
	Acknowledgements []Acknowledgement `yaml:"acknowledgements" validate:"dive"`
	// EmergencyReply is sent at once to a message found to be an emergency.
	EmergencyReply string `yaml:"emergency_reply"`
	// Escalations are the escalation policies.
	Escalations []Escalation `yaml:"escalations" validate:"dive"`
	// CannedResponses are texts advisers start a reply from.
	CannedResponses []CannedResponse `yaml:"canned_responses" validate:"dive"`

	// Compiled is the above, checked and ready to use.
	Compiled Compiled `yaml:"-" validate:"-"`

	// unset holds the paths of fields an unset variable left empty, where
	// that is allowed (LoadAllowingUnset).
	unset map[string]bool
}

// Acknowledgement is one automatic reply's text, as text/template with
// {{.Reference}}, {{.ReplyBy}}, {{.Opens}} and {{.Team}}; OutOfHours, when
// set, is used when the message arrives while the team is closed.
type Acknowledgement struct {
	Name       string `yaml:"name" validate:"required,slug"`
	InHours    string `yaml:"in_hours" validate:"required"`
	OutOfHours string `yaml:"out_of_hours"`
}

// AccountAcknowledgement is a channel account's automatic reply to new
// cases.
type AccountAcknowledgement struct {
	// Template names the acknowledgement sent when the rule that routed
	// the case names none.
	Template string `yaml:"template" validate:"required,slug"`
	// PrivateOnly acknowledges private messages only, never public posts.
	PrivateOnly bool `yaml:"private_only"`
	// Period is the least time between two acknowledgements on one case
	// (a Go duration: "24h"); default 24h.
	Period string `yaml:"period"`
}

// CannedResponse is a text an adviser can start a reply from, offered on
// the cases of its teams (every team's when it names none). The text may
// hold {resident_name}, {case_reference} and {team}, filled in when the
// adviser picks it.
type CannedResponse struct {
	Name  string   `yaml:"name" validate:"required,slug"`
	Title string   `yaml:"title" validate:"required,max=80"`
	Text  string   `yaml:"text" validate:"required,max=4000"`
	Teams []string `yaml:"teams" validate:"dive,slug"`
}

// Escalation is one escalation policy: steps carried out when a case's
// deadline nears (warning) or passes (breach).
type Escalation struct {
	Name  string           `yaml:"name" validate:"required,slug"`
	Steps []EscalationStep `yaml:"steps" validate:"required,min=1,dive"`
}

// EscalationStep is one step of an escalation policy.
type EscalationStep struct {
	On                string `yaml:"on" validate:"required,oneof=warning breach"`
	Target            string `yaml:"target" validate:"omitempty,oneof=first_response next_response resolution"`
	RaisePriority     bool   `yaml:"raise_priority"`
	MoveToTeam        string `yaml:"move_to_team" validate:"omitempty,slug"`
	NotifySupervisors bool   `yaml:"notify_supervisors"`
}

// Compiled is the business configuration's rules, checked and compiled.
type Compiled struct {
	Calendars sla.Calendars
	// Policies is nil without an sla block; Router nil without routing.
	Policies *sla.Policies
	Router   *routing.Router
	// Acknowledgements are the parsed templates by name.
	Acknowledgements map[string]AckTemplates
	EmergencyReply   *template.Template
}

// AckTemplates are one acknowledgement's parsed texts.
type AckTemplates struct {
	InHours, OutOfHours *template.Template
}

// Team is one team cases are routed to.
type Team struct {
	Slug string `yaml:"slug" validate:"required,slug"`
	Name string `yaml:"name" validate:"required"`
	// MaxOpenPerAdviser caps how many open cases of the team one adviser
	// may hold when taking the next case; omitted, there is no cap.
	MaxOpenPerAdviser *int `yaml:"max_open_per_adviser" validate:"omitempty,min=1"`
}

// ChannelAccount is one configured presence on a network. What every
// network has is here; the network's own settings are a block named after
// its driver (`x:`), which the driver decodes into Settings.
type ChannelAccount struct {
	Slug string `yaml:"slug" validate:"required,slug"`
	// Channel is checked against the channels of the registered drivers.
	Channel string `yaml:"channel" validate:"required"`
	Name    string `yaml:"name" validate:"required"`
	// Team receives the account's new cases.
	Team string `yaml:"team" validate:"required,slug"`
	// APIBaseURL is where the network's API is reached (a fake in tests and
	// demos). Required unless the channel's driver needs none (email names
	// its servers in its own block).
	APIBaseURL string `yaml:"api_base_url" validate:"omitempty,url"`
	// Acknowledgement, when set, sends an automatic reply to each new case.
	Acknowledgement *AccountAcknowledgement `yaml:"acknowledgement"`
	// MaxParts caps how many parts one reply may be split into, where the
	// network splits long replies; 0 keeps the channel's default.
	MaxParts int `yaml:"max_parts" validate:"min=0,max=100"`
	// Blocks holds the keys the fields above do not name: the driver's
	// settings block until it is decoded, and anything misspelt.
	Blocks map[string]yaml.Node `yaml:",inline" validate:"-"`
	// Settings are the driver's settings, as its Decode returned them.
	Settings any `yaml:"-" validate:"-"`
}

// Driver is what a channel driver is given of the account.
func (a ChannelAccount) Driver() channels.AccountConfig {
	return channels.AccountConfig{
		Slug: a.Slug, Channel: a.Channel, APIBaseURL: a.APIBaseURL, MaxParts: a.MaxParts, Settings: a.Settings,
	}
}

// AccountConfigs is every channel account, as the drivers are given them.
func (f *File) AccountConfigs() []channels.AccountConfig {
	out := make([]channels.AccountConfig, len(f.ChannelAccounts))
	for i, a := range f.ChannelAccounts {
		out[i] = a.Driver()
	}
	return out
}

// Drivers decodes channel accounts' settings blocks; channels.Registry is
// the one the server uses.
type Drivers interface {
	// Channels lists the channels a driver serves.
	Channels() []string
	// DriverName names the driver of a channel: its accounts' settings
	// block has that key.
	DriverName(channel string) (string, bool)
	// Decode has the channel's driver decode an account's settings block.
	Decode(acct channels.AccountConfig, decode func(v any) error) (any, error)
}

// Load reads, expands and validates the YAML file at path, with each
// channel account's settings decoded by its driver.
func Load(path string, getenv func(string) string, drivers Drivers) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := Parse(raw, getenv, drivers)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f, nil
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// Parse decodes and validates a YAML configuration. ${NAME} references are
// replaced by the environment variable's value; a reference to an unset
// variable is an error naming the field. Each channel account's settings
// block is decoded and validated by the driver of its channel.
func Parse(raw []byte, getenv func(string) string, drivers Drivers) (*File, error) {
	return parse(raw, getenv, drivers, nil)
}

// LoadAllowingUnset reads the file at path as Load does, except that a
// ${NAME} whose variable is unset becomes empty and the fields it left
// empty are not checked: for commands that need the rules but not the
// credentials, such as testing routing rules on an admin's machine.
func LoadAllowingUnset(path string, getenv func(string) string, drivers Drivers) (*File, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	f, err := parse(raw, getenv, drivers, map[string]bool{})
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return f, nil
}

// parse is Parse; unset, when not nil, allows unset variables and collects
// the paths of the fields they left empty.
func parse(raw []byte, getenv func(string) string, drivers Drivers, unset map[string]bool) (*File, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(raw, &root); err != nil {
		return nil, err
	}
	if err := expandEnv(&root, "", getenv, unset); err != nil {
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
	f.unset = unset
	if err := f.validate(drivers); err != nil {
		return nil, err
	}
	return &f, nil
}

// expandEnv replaces ${NAME} in every scalar, tracking the field path so an
// unset variable is reported where it is used.
func expandEnv(n *yaml.Node, path string, getenv func(string) string, unset map[string]bool) error {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := expandEnv(c, path, getenv, unset); err != nil {
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
			if err := expandEnv(n.Content[i+1], p, getenv, unset); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			if err := expandEnv(c, fmt.Sprintf("%s[%d]", path, i), getenv, unset); err != nil {
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
			if unset == nil {
				return fmt.Errorf("%s: environment variable %s is not set", path, missing)
			}
			unset[path] = true
		}
	}
	return nil
}

func newValidator() *validator.Validate { return validation.New("yaml") }

// fieldErrors are messages that already name their field's whole path.
type fieldErrors []string

func (e fieldErrors) Error() string { return strings.Join(e, "; ") }

// check validates v's tags, naming fields with prefix ("channel_accounts[0].x").
func check(v *validator.Validate, s any, prefix string) error {
	err := v.Struct(s)
	if err == nil {
		return nil
	}
	var verrs validator.ValidationErrors
	if !errors.As(err, &verrs) {
		return err
	}
	msgs := make(fieldErrors, 0, len(verrs))
	for _, fe := range verrs {
		msgs = append(msgs, describe(fe, prefix))
	}
	return msgs
}

func (f *File) validate(drivers Drivers) error {
	v := newValidator()
	var msgs fieldErrors
	if err := check(v, f, ""); err != nil {
		var fe fieldErrors
		if !errors.As(err, &fe) {
			return err
		}
		msgs = append(msgs, fe...)
	}
	for i := range f.ChannelAccounts {
		msgs = append(msgs, f.decodeSettings(i, drivers, v)...)
	}
	msgs = slices.DeleteFunc(msgs, func(m string) bool {
		path, _, _ := strings.Cut(m, ": ")
		return f.unset[path]
	})
	if len(msgs) > 0 {
		return msgs
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
	return f.compile(drivers)
}

// decodeSettings checks account i's channel against the drivers and has
// the channel's driver decode its settings block, the one key of the
// account the common fields do not name.
func (f *File) decodeSettings(i int, drivers Drivers, v *validator.Validate) fieldErrors {
	a := &f.ChannelAccounts[i]
	at := fmt.Sprintf("channel_accounts[%d]", i)
	if a.Channel == "" {
		return nil // reported as required
	}
	name, ok := "", false
	if drivers != nil {
		name, ok = drivers.DriverName(a.Channel)
	}
	if !ok {
		var known []string
		if drivers != nil {
			known = drivers.Channels()
		}
		return fieldErrors{fmt.Sprintf("%s.channel: %q is not one of: %s", at, a.Channel, strings.Join(known, " "))}
	}
	var msgs fieldErrors
	if a.APIBaseURL == "" {
		needs, ok := drivers.(interface{ NeedsAPIBaseURL(channel string) bool })
		if !ok || needs.NeedsAPIBaseURL(a.Channel) {
			msgs = append(msgs, at+".api_base_url: is required")
		}
	}
	for _, key := range slices.Sorted(maps.Keys(a.Blocks)) {
		if key != name {
			msgs = append(msgs, fmt.Sprintf("%s.%s: unknown field (the settings of a %s account go in %q)", at, key, a.Channel, name))
		}
	}
	path := at + "." + name
	decode := func(out any) error {
		node, ok := a.Blocks[name]
		if !ok {
			return fieldErrors{path + ": is required"}
		}
		if err := decodeStrict(&node, out, path); err != nil {
			return err
		}
		return check(v, out, path)
	}
	settings, err := drivers.Decode(a.Driver(), decode)
	var fe fieldErrors
	var se *channels.SettingError
	switch {
	case err == nil:
		a.Settings = settings
	case errors.As(err, &fe):
		msgs = append(msgs, fe...)
	case errors.As(err, &se):
		msgs = append(msgs, path+"."+se.Error())
	default:
		msgs = append(msgs, path+": "+err.Error())
	}
	return msgs
}

var (
	yamlLine     = regexp.MustCompile(`^line \d+: `)
	yamlNotFound = regexp.MustCompile(`^field (\S+) not found in type \S+$`)
)

// decodeStrict decodes a settings block into out, refusing unknown keys
// as the file's decoder does, with errors naming their path.
func decodeStrict(node *yaml.Node, out any, path string) error {
	raw, err := yaml.Marshal(node)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	err = dec.Decode(out)
	if err == nil || errors.Is(err, io.EOF) {
		return nil
	}
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return fieldErrors{path + ": " + err.Error()}
	}
	// Line numbers would be those of the block alone: leave them out.
	msgs := make(fieldErrors, 0, len(te.Errors))
	for _, e := range te.Errors {
		e = yamlLine.ReplaceAllString(e, "")
		if m := yamlNotFound.FindStringSubmatch(e); m != nil {
			msgs = append(msgs, path+"."+m[1]+": unknown field")
			continue
		}
		msgs = append(msgs, path+": "+e)
	}
	return msgs
}

// describe turns a validation error into "path: reason", with the path
// written as in the YAML file (channel_accounts[0].x.user_id) after prefix.
func describe(fe validator.FieldError, prefix string) string {
	ns := fe.Namespace()
	if i := strings.Index(ns, "."); i >= 0 {
		ns = ns[i+1:] // drop the root type name
	}
	if prefix != "" {
		ns = prefix + "." + ns
	}
	var reason string
	switch fe.Tag() {
	case "required", "required_if":
		reason = "is required"
	case "min":
		if fe.Kind() == reflect.Int {
			reason = fmt.Sprintf("%v is less than %s", fe.Value(), fe.Param())
		} else {
			reason = "needs at least " + fe.Param() + " entries"
		}
	case "max":
		reason = fmt.Sprintf("%v is more than %s", fe.Value(), fe.Param())
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
