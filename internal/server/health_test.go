package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels/x"
	"github.com/citizeninbox/inbox/internal/config"
)

type accountHealthJSON struct {
	Slug           string     `json:"slug"`
	Healthy        bool       `json:"healthy"`
	UnhealthySince *time.Time `json:"unhealthy_since"`
	Reason         string     `json:"reason"`
	RepliesWaiting int        `json:"replies_waiting"`
}

func (h *harness) accountHealth(slug string) accountHealthJSON {
	h.t.Helper()
	code, raw := h.api(http.MethodGet, "/channel-accounts", nil)
	if code != http.StatusOK {
		h.t.Fatalf("channel accounts: %d %s", code, raw)
	}
	var doc struct {
		ChannelAccounts []accountHealthJSON `json:"channel_accounts"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		h.t.Fatal(err)
	}
	for _, a := range doc.ChannelAccounts {
		if a.Slug == slug {
			return a
		}
	}
	h.t.Fatalf("channel account %s not listed: %s", slug, raw)
	return accountHealthJSON{}
}

// A revoked credential makes the account unhealthy, once: its replies wait,
// none failed and none tried again, until a reload gives it a new
// credential; then they go out and the account is healthy again.
func TestRevokedCredentialHoldsRepliesUntilReload(t *testing.T) {
	var logs lockedBuffer
	h := newHarness(t, withLogWriter(&logs))
	if a := h.accountHealth(accountSlug); !a.Healthy || a.UnhealthySince != nil || a.RepliesWaiting != 0 {
		t.Fatalf("before: %+v, want healthy with nothing waiting", a)
	}
	healthy := `inbox_channel_account_healthy{account="council-x",channel="x"}`
	if v := metricValue(t, h, healthy); v != 1 {
		t.Fatalf("%s = %v before, want 1", healthy, v)
	}

	h.fake.Revoke(accessToken)
	_, caseA := h.dmCase(alice, "My bin was not collected")
	_, caseB := h.dmCase(bob, "Streetlight out on Elm Road")
	first := h.reply(caseA, "private", "Sorry about that, a crew is on its way.")
	h.eventually("the account marked unhealthy", func() bool { return !h.accountHealth(accountSlug).Healthy })
	second := h.reply(caseB, "private", "Thanks, we have reported it.")

	a := h.accountHealth(accountSlug)
	if a.UnhealthySince == nil || !strings.Contains(a.Reason, "Unauthorized") || a.RepliesWaiting != 2 {
		t.Errorf("unhealthy account: %+v, want a time, X's reason and two replies waiting", a)
	}
	if v := metricValue(t, h, healthy); v != 0 {
		t.Errorf("%s = %v while refused, want 0", healthy, v)
	}
	if v := metricValue(t, h, `inbox_channel_account_replies_waiting{account="council-x",channel="x"}`); v != 2 {
		t.Errorf("replies waiting metric = %v, want 2", v)
	}
	// Nothing more is tried while the credential is refused.
	time.Sleep(500 * time.Millisecond) // ten of the harness's retry backoffs
	if n := len(h.fake.Requests()); n != 1 {
		t.Errorf("%d requests reached X with the revoked token, want only the first", n)
	}
	for _, m := range []int64{first.ID, second.ID} {
		var status string
		h.direct.Raw(`SELECT delivery_status FROM messages WHERE id = ?`, m).Scan(&status)
		if status != "queued" {
			t.Errorf("reply %d is %q while the credential is refused, want queued", m, status)
		}
	}
	if n := strings.Count(logs.String(), "channel account unhealthy"); n != 1 {
		t.Errorf("the refusal was logged %d times, want once", n)
	}

	// The administrator puts a new token in the configuration and reloads.
	f := *h.opts.File
	f.ChannelAccounts = append([]config.ChannelAccount(nil), f.ChannelAccounts...)
	s := f.ChannelAccounts[0].Settings.(x.Settings)
	s.AccessToken = "replacement-access-token"
	f.ChannelAccounts[0].Settings = s
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.srv.Reload(ctx, &f); err != nil {
		t.Fatal(err)
	}
	if m := h.waitDelivery(caseA, first.ID); m.DeliveryStatus != "sent" {
		t.Errorf("first reply after the reload: %+v, want sent", m)
	}
	if m := h.waitDelivery(caseB, second.ID); m.DeliveryStatus != "sent" {
		t.Errorf("second reply after the reload: %+v, want sent", m)
	}
	h.eventually("the account healthy again", func() bool { return h.accountHealth(accountSlug).Healthy })
	if a := h.accountHealth(accountSlug); a.Reason != "" || a.RepliesWaiting != 0 {
		t.Errorf("after the reload: %+v, want no reason and nothing waiting", a)
	}
	if v := metricValue(t, h, healthy); v != 1 {
		t.Errorf("%s = %v after the reload, want 1", healthy, v)
	}
	if n := strings.Count(logs.String(), "healthy again"); n != 1 {
		t.Errorf("the recovery was logged %d times, want once", n)
	}
}

// A case whose channel account this replica's configuration does not have
// (removed by a reload, or not yet rolled out to it) cannot be measured
// here: a clear 422 rather than a server error. (A reply is still queued,
// for a replica that has the account to send.)
func TestMeasuringOnAnAccountNotConfiguredIsRefused(t *testing.T) {
	h := newHarness(t)
	_, caseID := h.dmCase(alice, "My bin was not collected")
	f := *h.opts.File
	f.ChannelAccounts = nil
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := h.srv.Reload(ctx, &f); err != nil {
		t.Fatal(err)
	}
	code, body := h.api(http.MethodPost, fmt.Sprintf("/cases/%d/replies/measure", caseID), map[string]any{"text": "On its way.", "visibility": "private"})
	if code != http.StatusUnprocessableEntity || !strings.Contains(string(body), "not configured") {
		t.Errorf("measure: %d %s, want 422 saying the account is not configured", code, body)
	}
}
