package meta_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/meta"
	"github.com/citizeninbox/inbox/internal/config"
)

// The example council's Meta app: one Page, one Instagram account and one
// WhatsApp number, as the configuration file writes them.
const accounts = `
teams:
  - slug: contact-centre
    name: Contact centre
channel_accounts:
  - slug: council-facebook
    channel: facebook
    name: Council on Facebook
    team: contact-centre
    api_base_url: ${META_API_BASE_URL}
    meta:
      app: council-meta
      app_secret: ${META_APP_SECRET}
      verify_token: ${META_VERIFY_TOKEN}
      access_token: ${META_ACCESS_TOKEN}
      page_id: "100000000000001"
  - slug: council-instagram
    channel: instagram
    name: Council on Instagram
    team: contact-centre
    api_base_url: ${META_API_BASE_URL}
    meta:
      app: council-meta
      app_secret: ${META_APP_SECRET}
      verify_token: ${META_VERIFY_TOKEN}
      access_token: ${META_ACCESS_TOKEN}
      instagram_id: "17841400000000001"
  - slug: council-whatsapp
    channel: whatsapp
    name: Council on WhatsApp
    team: contact-centre
    api_base_url: ${META_API_BASE_URL}
    meta:
      app: council-meta
      app_secret: ${META_APP_SECRET}
      verify_token: ${META_VERIFY_TOKEN}
      access_token: ${META_ACCESS_TOKEN}
      phone_number_id: "106000000000001"
`

var env = map[string]string{"META_API_BASE_URL": "http://127.0.0.1:1", "META_APP_SECRET": "app-secret",
	"META_VERIFY_TOKEN": "verify", "META_ACCESS_TOKEN": "token"}

func open(t *testing.T, yaml string) (*channels.Accounts, *config.File) {
	t.Helper()
	reg, err := channels.NewRegistry(meta.Driver{})
	if err != nil {
		t.Fatal(err)
	}
	f, err := config.Parse([]byte(yaml), func(k string) string { return env[k] }, reg)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := reg.Open(f.AccountConfigs(), channels.Deps{HTTP: http.DefaultClient})
	if err != nil {
		t.Fatal(err)
	}
	return accts, f
}

// One app, one endpoint: /webhooks/meta/council-meta routes each update to
// its account by the id it names.
func TestOneEndpointServesTheApp(t *testing.T) {
	accts, _ := open(t, accounts)
	eps := accts.Endpoints()
	if len(eps) != 1 {
		t.Fatalf("%d endpoints, want 1", len(eps))
	}
	ep := eps[0]
	if ep.Driver != "meta" || ep.Slug != "council-meta" {
		t.Errorf("endpoint %+v", ep)
	}
	body := []byte(`{"object":"whatsapp_business_account","entry":[{"id":"WABA","changes":[{"field":"messages","value":{
		"metadata":{"phone_number_id":"106000000000001"},"messages":[{"from":"447700900123","id":"wamid.1","timestamp":"1764669600","type":"text","text":{"body":"hi"}}]}}]}]}`)
	r := httptest.NewRequest(http.MethodPost, "/webhooks/meta/council-meta", nil)
	r.Header.Set(meta.SignatureHeader, meta.Sign("app-secret", body))
	if err := ep.Webhook.Verify(r, body); err != nil {
		t.Fatal(err)
	}
	msgs, err := ep.Webhook.Parse(body, time.Now())
	if err != nil || len(msgs) != 1 || msgs[0].Account != "council-whatsapp" {
		t.Fatalf("%+v, %v", msgs, err)
	}
	if _, body, err := ep.Webhook.Challenge(httptest.NewRequest(http.MethodGet,
		"/webhooks/meta/council-meta?hub.mode=subscribe&hub.verify_token=verify&hub.challenge=42", nil)); err != nil || string(body) != "42" {
		t.Errorf("handshake %q, %v", body, err)
	}
	for _, slug := range []string{"council-facebook", "council-instagram", "council-whatsapp"} {
		if accts.Senders()[slug] == nil {
			t.Errorf("no sender for %s", slug)
		}
	}
	if accts.ExternalID("council-instagram") != "17841400000000001" {
		t.Errorf("instagram account id %q", accts.ExternalID("council-instagram"))
	}
	// WhatsApp has no public replies; Messenger messages split in parts.
	if vis := accts.ReplyVisibilities("council-whatsapp"); len(vis) != 1 || vis[0] != channels.Private {
		t.Errorf("whatsapp replies %v", vis)
	}
	m, err := accts.MeasureReply("council-facebook", channels.Private, strings.Repeat("Bins tomorrow. ", 200))
	if err != nil || m.Parts != 2 || !m.Fits {
		t.Errorf("measure %+v, %v", m, err)
	}
}

// Mistakes in the block are refused at load, naming the field.
func TestSettingsRefused(t *testing.T) {
	reg, err := channels.NewRegistry(meta.Driver{})
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ yaml, want string }{
		"no page id": {strings.Replace(accounts, `      page_id: "100000000000001"`+"\n", "", 1), "page_id: is required for a facebook account"},
		"the wrong id": {strings.Replace(accounts, `      page_id: "100000000000001"`, `      phone_number_id: "1"`, 1),
			"phone_number_id: is for whatsapp accounts, not facebook"},
		"no secret": {strings.Replace(accounts, "      app_secret: ${META_APP_SECRET}\n      verify_token: ${META_VERIFY_TOKEN}\n      access_token: ${META_ACCESS_TOKEN}\n      page_id",
			"      verify_token: ${META_VERIFY_TOKEN}\n      access_token: ${META_ACCESS_TOKEN}\n      page_id", 1), "app_secret"},
	} {
		_, err := config.Parse([]byte(tc.yaml), func(k string) string { return env[k] }, reg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %q", name, err, tc.want)
		}
	}
	// Two accounts of one app with different secrets cannot share its endpoint.
	f, err := config.Parse([]byte(strings.Replace(accounts, "verify_token: ${META_VERIFY_TOKEN}\n      access_token: ${META_ACCESS_TOKEN}\n      instagram_id",
		"verify_token: other\n      access_token: ${META_ACCESS_TOKEN}\n      instagram_id", 1)), func(k string) string { return env[k] }, reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Open(f.AccountConfigs(), channels.Deps{}); err == nil || !strings.Contains(err.Error(), "verify_token") {
		t.Errorf("accounts of one app with two verify tokens: %v", err)
	}
}
