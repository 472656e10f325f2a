package metafake

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"io"
	"math/big"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/netsim"
)

// The environment variables the simulation's flags default to, and the
// demo's values when they are unset.
const (
	AppSecretEnv   = "META_APP_SECRET"
	VerifyTokenEnv = "META_VERIFY_TOKEN"
	AccessTokenEnv = "META_ACCESS_TOKEN"

	DemoAppSecret   = "demo-meta-app-secret"
	DemoVerifyToken = "demo-meta-verify-token"
	DemoAccessToken = "demo-meta-access-token"
)

// The council's accounts in the simulation, unless flags say otherwise.
const (
	DefaultPageID        = "100000000000001"
	DefaultInstagramID   = "17841400000000001"
	DefaultPhoneNumberID = "106000000000001"
)

// Where residents write privately: the DM networks, which residents take
// in turn, each keeping to theirs.
const (
	Messenger = "messenger"
	Instagram = meta.Instagram
	WhatsApp  = meta.WhatsApp
)

// dmNetworks are the private networks, in the order residents are given
// them.
var dmNetworks = []string{Messenger, Instagram, WhatsApp}

// Simulation is Meta for the network simulator: the fake Graph API, and
// residents' comments on the council's Facebook posts and Instagram media,
// and their messages on Messenger, Instagram and WhatsApp, delivered as
// Meta delivers them to the council's app.
type Simulation struct {
	appSecret, verifyToken, accessToken string
	pageID, igID, numberID              string
	dmVia, commentsOn                   string

	// What the simulation remembers of the conversations it plays, for
	// Post and Message (the player's goroutine) and the fake API's sends
	// (request goroutines).
	mu sync.Mutex
	// dm is each resident's private network, by resident id; turn is the
	// next network given.
	dm   map[string]string
	turn int
	// waIDs maps the wa_ids residents write from back to their ids.
	waIDs map[string]string
	// threads are the comments played (residents' and the council's), by
	// id; authors the residents who wrote them.
	threads map[string]thread
	authors map[string]string
}

// thread is where a comment is: its network and post or media.
type thread struct {
	network, post string
}

var _ netsim.Network = (*Simulation)(nil)

// NewSimulation returns Meta for cmd/netsim.
func NewSimulation() *Simulation {
	return &Simulation{dm: map[string]string{}, waIDs: map[string]string{},
		threads: map[string]thread{}, authors: map[string]string{}}
}

// Name is the Meta driver's name.
func (*Simulation) Name() string { return meta.Driver{}.Name() }

// Title names Meta's networks.
func (*Simulation) Title() string { return "Facebook, Instagram and WhatsApp" }

// DefaultListen is where the demo's configuration expects the fake Graph
// API.
func (*Simulation) DefaultListen() string { return "127.0.0.1:8082" }

// DefaultWebhook is the demo app's webhook.
func (*Simulation) DefaultWebhook() string { return "http://127.0.0.1:8080/webhooks/meta/council-meta" }

// Flags adds the app's secrets and the council's account ids.
func (s *Simulation) Flags(fs *flag.FlagSet) {
	fs.StringVar(&s.appSecret, "app-secret", envOr(AppSecretEnv, DemoAppSecret), "the Meta app secret that signs webhooks ($"+AppSecretEnv+")")
	fs.StringVar(&s.verifyToken, "verify-token", envOr(VerifyTokenEnv, DemoVerifyToken), "the app's webhook verify token ($"+VerifyTokenEnv+")")
	fs.StringVar(&s.accessToken, "access-token", envOr(AccessTokenEnv, DemoAccessToken), "the access token the fake Graph API accepts ($"+AccessTokenEnv+")")
	fs.StringVar(&s.pageID, "page-id", DefaultPageID, "the council's Facebook Page id")
	fs.StringVar(&s.igID, "instagram-id", DefaultInstagramID, "the council's Instagram account id")
	fs.StringVar(&s.numberID, "phone-number-id", DefaultPhoneNumberID, "the council's WhatsApp phone number id")
	fs.StringVar(&s.dmVia, "dm-via", "", "the network of every private message: messenger, instagram or whatsapp (default: residents take them in turn)")
	fs.StringVar(&s.commentsOn, "comments-on", meta.Facebook, "where a comment that starts a conversation goes when no style says: facebook or instagram")
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

// Check refuses empty secrets and ids, and networks Meta does not have.
func (s *Simulation) Check() error {
	for _, f := range []struct{ flag, value string }{
		{"-app-secret", s.appSecret}, {"-verify-token", s.verifyToken}, {"-access-token", s.accessToken},
		{"-page-id", s.pageID}, {"-instagram-id", s.igID}, {"-phone-number-id", s.numberID},
	} {
		if f.value == "" {
			return errors.New(f.flag + " is empty")
		}
	}
	switch s.dmVia {
	case "", Messenger, Instagram, WhatsApp:
	default:
		return fmt.Errorf("-dm-via %q is not messenger, instagram or whatsapp", s.dmVia)
	}
	if s.commentsOn != meta.Facebook && s.commentsOn != meta.Instagram {
		return fmt.Errorf("-comments-on %q is not facebook or instagram", s.commentsOn)
	}
	return nil
}

// API is the fake Graph API, accepting the access token. What the council
// sends reaches onSent with the resident it went to, as the simulator's
// residents know themselves.
func (s *Simulation) API(onSent func(netsim.Sent)) http.Handler {
	fake := New(s.accessToken)
	fake.OnSent(func(sent Sent) { onSent(s.sent(sent)) })
	return fake
}

// sent is what the council sent, as the simulator sees it: a comment
// reply joins its comment's thread, a message names the resident.
func (s *Simulation) sent(sent Sent) netsim.Sent {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := netsim.Sent{ID: sent.ID, Text: sent.Text, Visibility: channels.Private, Recipient: sent.Recipient}
	switch sent.Kind {
	case KindComment:
		out.Visibility, out.InReplyTo, out.Recipient = channels.Public, sent.InReplyTo, ""
		if th, ok := s.threads[sent.InReplyTo]; ok {
			s.threads[sent.ID] = th
		}
	case KindPrivateReply:
		out.Recipient = s.authors[sent.InReplyTo]
		if out.Recipient == "" {
			out.Recipient = sent.InReplyTo
		}
	case KindWhatsApp:
		if id, ok := s.waIDs[sent.Recipient]; ok {
			out.Recipient = id
		}
	}
	return out
}

// Address leaves text as it is: residents comment on the council's own
// posts, and message the council's accounts.
func (*Simulation) Address(text string) string { return text }

// Styles are the networks residents comment on: comments on the council's
// Facebook posts, and on its Instagram media.
func (*Simulation) Styles() []string { return []string{meta.Facebook, meta.Instagram} }

// Post is a resident's comment id: on a new post or media of the council
// in style's network (-comments-on when style is empty), or, answering
// inReplyTo, in that comment's thread on its network, with inReplyTo as
// its parent.
func (s *Simulation) Post(style, id string, from netsim.Resident, text, inReplyTo string, newID func() string) []byte {
	s.mu.Lock()
	network := style
	th, known := s.threads[inReplyTo]
	if inReplyTo != "" && known {
		network = th.network
	}
	if network == "" {
		network = s.commentsOn
	}
	post := th.post
	if !known {
		post = newID()
		if network == meta.Facebook {
			post = s.pageID + "_" + post
		}
	}
	s.threads[id] = thread{network: network, post: post}
	s.authors[id] = from.ID
	s.mu.Unlock()

	c := Comment{ID: id, From: User{ID: from.ID, Name: from.Name, Username: from.Handle}, Text: text,
		At: time.Now(), Post: post, Parent: inReplyTo}
	if network == meta.Instagram {
		return InstagramComment(s.igID, c)
	}
	return PageComment(s.pageID, c)
}

// Message is a resident's private message id, on the resident's network:
// Messenger, Instagram or WhatsApp (from a phone number made from their
// id), as -dm-via says or, by default, in turn the first time each
// resident writes.
func (s *Simulation) Message(id string, from netsim.Resident, text string) []byte {
	s.mu.Lock()
	network := s.dmVia
	if network == "" {
		network = s.dm[from.ID]
	}
	if network == "" {
		network = dmNetworks[s.turn%len(dmNetworks)]
		s.turn++
		s.dm[from.ID] = network
	}
	wa := waID(from.ID)
	if network == WhatsApp {
		s.waIDs[wa] = from.ID
	}
	s.mu.Unlock()

	m := Message{From: User{ID: from.ID, Name: from.Name, Username: from.Handle}, Text: text, At: time.Now()}
	switch network {
	case Instagram:
		m.ID = base64.RawURLEncoding.EncodeToString([]byte("ig_" + id))
		return InstagramMessage(s.igID, m)
	case WhatsApp:
		m.From.ID = wa
		m.ID = "wamid." + base64.StdEncoding.EncodeToString([]byte(wa+"_"+id))
		return WhatsAppMessage(s.numberID, m)
	}
	m.ID = "m_" + id
	return MessengerMessage(s.pageID, m)
}

// Via is the network the resident writes privately on: messenger,
// instagram or whatsapp; "" before they first write.
func (s *Simulation) Via(from netsim.Resident) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dmVia != "" {
		return s.dmVia
	}
	return s.dm[from.ID]
}

// waID is the UK mobile number a resident writes on WhatsApp from: the
// same for one resident in every run.
func waID(residentID string) string {
	h := fnv.New64a()
	h.Write([]byte(residentID))
	return fmt.Sprintf("447%09d", h.Sum64()%1e9)
}

// Sign sets the content type and Meta's signatures: X-Hub-Signature-256,
// which the inbox checks, and the older SHA-1 X-Hub-Signature Meta still
// sends beside it.
func (s *Simulation) Sign(req *http.Request, body []byte) {
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(meta.SignatureHeader, Sign(body, s.appSecret))
	m := hmac.New(sha1.New, []byte(s.appSecret))
	m.Write(body)
	req.Header.Set("X-Hub-Signature", "sha1="+hex.EncodeToString(m.Sum(nil)))
}

// Handshake subscribes the app's webhook as Meta does: GET
// ?hub.mode=subscribe&hub.verify_token=…&hub.challenge=C must answer C.
// A signed delivery with no updates then proves the inbox checks
// signatures with the same app secret.
func (s *Simulation) Handshake(ctx context.Context, client *http.Client, webhookURL string) (string, error) {
	n, _ := rand.Int(rand.Reader, big.NewInt(1e9))
	challenge := strconv.FormatInt(1e9+n.Int64(), 10)
	u, err := url.Parse(webhookURL)
	if err != nil {
		return "", err
	}
	q := u.Query()
	q.Set("hub.mode", "subscribe")
	q.Set("hub.verify_token", s.verifyToken)
	q.Set("hub.challenge", challenge)
	u.RawQuery = q.Encode()
	status, body, err := do(ctx, client, http.MethodGet, u.String(), nil, nil)
	if err != nil {
		return "", fmt.Errorf("webhook verification: %w", err)
	}
	switch {
	case status == http.StatusNotFound:
		return "", fmt.Errorf("webhook verification: GET %s answered 404: %s; the inbox serves no Meta app there (is the app configured?)",
			webhookURL, shorten(string(body), 300))
	case status != http.StatusOK:
		return "", fmt.Errorf("webhook verification: GET %s answered %d: %s; -verify-token (or %s) must be the app's verify_token",
			webhookURL, status, shorten(string(body), 300), VerifyTokenEnv)
	case strings.TrimSpace(string(body)) != challenge:
		return "", fmt.Errorf("webhook verification failed: the inbox answered %q, not the challenge %s", shorten(string(body), 100), challenge)
	}

	empty := delivery("page", map[string]any{"id": s.pageID, "time": time.Now().UnixMilli(), "messaging": []any{}})
	status, body, err = do(ctx, client, http.MethodPost, webhookURL, empty, s.Sign)
	if err != nil {
		return "", fmt.Errorf("signature check: %w", err)
	}
	if status != http.StatusOK {
		return "", fmt.Errorf("signature check failed: a signed delivery answered %d: %s; -app-secret (or %s) must be the app_secret configured for this app",
			status, shorten(string(body), 300), AppSecretEnv)
	}
	return "webhook verified: the inbox and netsim share the verify token and the app secret", nil
}

// do makes one request, signed by sign when it has a body, and reads the
// answer.
func do(ctx context.Context, client *http.Client, method, target string, body []byte, sign func(*http.Request, []byte)) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = strings.NewReader(string(body))
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return 0, nil, err
	}
	if sign != nil {
		sign(req, body)
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	return resp.StatusCode, answer, nil
}

// shorten folds s onto one line and cuts it to about n bytes.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
