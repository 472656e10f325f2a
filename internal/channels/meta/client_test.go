package meta

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/channels"
)

// graph is a fake Graph API: it records each call and answers from fail,
// in order, then with success.
type graph struct {
	mu    sync.Mutex
	calls []call
	fail  []string // error documents to answer first, as "status body"
}

type call struct {
	Path string
	Auth string
	Body map[string]any
}

func (g *graph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	defer g.mu.Unlock()
	raw, _ := io.ReadAll(r.Body)
	var body map[string]any
	_ = json.Unmarshal(raw, &body)
	g.calls = append(g.calls, call{Path: r.URL.Path, Auth: r.Header.Get("Authorization"), Body: body})
	if len(g.fail) > 0 {
		f := g.fail[0]
		g.fail = g.fail[1:]
		code, doc, _ := strings.Cut(f, " ")
		status, err := strconv.Atoi(code)
		if err != nil {
			panic("a fake answer starts with its status: " + f)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, doc)
		return
	}
	n := len(g.calls)
	switch {
	case strings.HasSuffix(r.URL.Path, "/comments"), strings.HasSuffix(r.URL.Path, "/replies"):
		fmt.Fprintf(w, `{"id":"reply_%d"}`, n)
	case body["messaging_product"] == "whatsapp":
		fmt.Fprintf(w, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.out%d"}]}`, n)
	default:
		fmt.Fprintf(w, `{"recipient_id":"r","message_id":"m_out%d"}`, n)
	}
}

func client(t *testing.T, channel, id string, g *graph) *Client {
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return &Client{BaseURL: srv.URL, Channel: channel, AccountID: id, Token: "tok"}
}

func TestSendMessengerInPartsAndAfterTheWindow(t *testing.T) {
	g := &graph{fail: []string{`400 {"error":{"message":"outside the allowed window","type":"OAuthException","code":10,"error_subcode":2018278}}`}}
	c := client(t, Facebook, page, g)
	long := strings.Repeat("The bin crew will come back tomorrow morning. ", 60) // about 2,760 characters
	var recorded []string
	ids, err := c.Send(context.Background(), channels.Outbound{Visibility: channels.Private, Recipient: "7001", Text: long},
		func(_ int, id string) error { recorded = append(recorded, id); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != 2 || len(recorded) != 2 {
		t.Fatalf("ids %v, recorded %v; want two parts", ids, recorded)
	}
	// The first try was refused for the window; it went again tagged.
	if len(g.calls) != 3 || g.calls[0].Body["messaging_type"] != "RESPONSE" || g.calls[1].Body["tag"] != "HUMAN_AGENT" {
		t.Fatalf("calls %+v", g.calls)
	}
	for _, cl := range g.calls {
		if cl.Path != "/"+DefaultVersion+"/"+page+"/messages" || cl.Auth != "Bearer tok" {
			t.Errorf("call %s with %q", cl.Path, cl.Auth)
		}
		rec := cl.Body["recipient"].(map[string]any)
		text := cl.Body["message"].(map[string]any)["text"].(string)
		if rec["id"] != "7001" || utf8.RuneCountInString(text) > 2000 {
			t.Errorf("recipient %v, part of %d characters", rec, utf8.RuneCountInString(text))
		}
	}
	if text := g.calls[2].Body["message"].(map[string]any)["text"].(string); !strings.HasSuffix(text, "(2/2)") {
		t.Errorf("second part %q is not numbered", text[len(text)-10:])
	}
	// A retry after the first part continues with the second.
	g.calls = nil
	if _, err := c.Send(context.Background(), channels.Outbound{Visibility: channels.Private, Recipient: "7001", Text: long, SentParts: []string{"m_done"}}, nil); err != nil || len(g.calls) != 1 {
		t.Errorf("a retry sent %d parts (%v), want 1", len(g.calls), err)
	}
}

func TestSendCommentRepliesAndWhatsApp(t *testing.T) {
	g := &graph{}
	fb := client(t, Facebook, page, g)
	ig := &Client{BaseURL: fb.BaseURL, Channel: Instagram, AccountID: igID, Token: "tok"}
	wa := &Client{BaseURL: fb.BaseURL, Channel: WhatsApp, AccountID: number, Token: "tok"}
	ctx := context.Background()
	if ids, err := fb.Send(ctx, channels.Outbound{Visibility: channels.Public, InReplyTo: "p1_c1", Text: "Reported"}, nil); err != nil || len(ids) != 1 {
		t.Fatal(ids, err)
	}
	if _, err := ig.Send(ctx, channels.Outbound{Visibility: channels.Public, InReplyTo: "ig_c1", Text: "Reported"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := wa.Send(ctx, channels.Outbound{Visibility: channels.Private, Recipient: "447700900123", InReplyTo: "wamid.1", Text: "On our way"}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := wa.Send(ctx, channels.Outbound{Visibility: channels.Public, InReplyTo: "x", Text: "no"}, nil); err == nil {
		t.Error("a public WhatsApp reply was sent")
	}
	want := []string{"/" + DefaultVersion + "/p1_c1/comments", "/" + DefaultVersion + "/ig_c1/replies", "/" + DefaultVersion + "/" + number + "/messages"}
	for i, w := range want {
		if g.calls[i].Path != w {
			t.Errorf("call %d to %s, want %s", i, g.calls[i].Path, w)
		}
	}
	if g.calls[0].Body["message"] != "Reported" {
		t.Errorf("comment body %v", g.calls[0].Body)
	}
	body := g.calls[2].Body
	if body["to"] != "447700900123" || body["type"] != "text" || body["context"].(map[string]any)["message_id"] != "wamid.1" ||
		body["text"].(map[string]any)["body"] != "On our way" {
		t.Errorf("WhatsApp body %v", body)
	}
}

// Errors are decided on Meta's code, not the HTTP status.
func TestSendErrorsByCode(t *testing.T) {
	for name, tc := range map[string]struct {
		answer     string
		kind       channels.SendErrorKind
		credential bool
	}{
		"throttled as 400":         {`400 {"error":{"message":"too many calls","code":4}}`, channels.RateLimited, false},
		"page throttled":           {`400 {"error":{"message":"limit","code":32}}`, channels.RateLimited, false},
		"613 as 429":               {`429 {"error":{"message":"limit","code":613}}`, channels.RateLimited, false},
		"whatsapp throughput":      {`400 {"error":{"message":"rate","code":130429}}`, channels.RateLimited, false},
		"expired token as 400":     {`400 {"error":{"message":"Session has expired","type":"OAuthException","code":190}}`, channels.Unauthorised, true},
		"revoked as 401":           {`401 {"error":{"message":"x","code":131005}}`, channels.Unauthorised, true},
		"whatsapp window":          {`400 {"error":{"message":"Re-engagement message","code":131047}}`, channels.Permanent, false},
		"person unavailable":       {`400 {"error":{"message":"unavailable","code":551}}`, channels.Permanent, false},
		"server error":             {`500 {"error":{"message":"unknown","code":2}}`, channels.Retryable, false},
		"not a Graph error as 502": {`502 <html>`, channels.Retryable, false},
	} {
		t.Run(name, func(t *testing.T) {
			g := &graph{fail: []string{tc.answer}}
			c := client(t, WhatsApp, number, g)
			_, err := c.Send(context.Background(), channels.Outbound{Visibility: channels.Private, Recipient: "1", Text: "hi"}, nil)
			se := channels.AsSendError(err)
			if se.Kind != tc.kind || errors.Is(err, ErrCredential) != tc.credential {
				t.Errorf("%v: kind %s, credential %v; want %s, %v", err, se.Kind, errors.Is(err, ErrCredential), tc.kind, tc.credential)
			}
			if tc.kind == channels.RateLimited && se.RetryAt.IsZero() {
				t.Error("no time to retry at")
			}
		})
	}
}

// A private reply to a comment names the comment, not the resident, and
// goes in one message; a template goes by name and language with its
// parameters. Each only where the network has it.
func TestSendPrivateReplyAndTemplate(t *testing.T) {
	g := &graph{}
	fb := client(t, Facebook, page, g)
	ids, err := fb.Send(context.Background(), channels.Outbound{Visibility: channels.Private, Recipient: "8001",
		InReplyTo: "p1_c1", ToPublicPost: true, Text: "Could you send us the house number?"}, nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("private reply: %v %v", ids, err)
	}
	got, _ := json.Marshal(g.calls[0].Body)
	if want := `{"message":{"text":"Could you send us the house number?"},"messaging_type":"RESPONSE","recipient":{"comment_id":"p1_c1"}}`; string(got) != want {
		t.Errorf("private reply body %s, want %s", got, want)
	}
	wa := client(t, WhatsApp, number, g)
	tmpl := &channels.TemplateReply{Name: "case_update", Language: "en_GB", Parameters: []string{"Erin", "HSG-1"}}
	if _, err := wa.Send(context.Background(), channels.Outbound{Visibility: channels.Private, Recipient: "447700900777",
		Text: "rendered for the record", Template: tmpl}, nil); err != nil {
		t.Fatal(err)
	}
	got, _ = json.Marshal(g.calls[1].Body)
	want := `{"messaging_product":"whatsapp","recipient_type":"individual","template":{"components":[{"parameters":[{"text":"Erin","type":"text"},{"text":"HSG-1","type":"text"}],"type":"body"}],"language":{"code":"en_GB"},"name":"case_update"},"to":"447700900777","type":"template"}`
	if string(got) != want {
		t.Errorf("template body %s, want %s", got, want)
	}
	// Neither goes where the network has no such thing.
	for name, out := range map[string]struct {
		c   *Client
		out channels.Outbound
	}{
		"template on Messenger": {fb, channels.Outbound{Visibility: channels.Private, Recipient: "8001", Template: tmpl}},
		"private reply on WhatsApp": {wa, channels.Outbound{Visibility: channels.Private, Recipient: "447700900777",
			InReplyTo: "wamid.x", ToPublicPost: true, Text: "hi"}},
	} {
		_, err := out.c.Send(context.Background(), out.out, nil)
		if se := channels.AsSendError(err); se == nil || se.Kind != channels.Permanent {
			t.Errorf("%s: %v, want a permanent failure", name, err)
		}
	}
	if len(g.calls) != 2 {
		t.Errorf("%d calls, want 2: a refused send reached the network", len(g.calls))
	}
}
