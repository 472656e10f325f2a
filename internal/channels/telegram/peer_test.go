package telegram_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/channels/telegram"
)

// emulator is telegram-test-api, an independent emulator of the Bot API
// (testdata/peer), run with node, with its emulated user driven through
// its client API.
type emulator struct {
	t   *testing.T
	url string
	in  io.WriteCloser
	out *bufio.Scanner
}

func startEmulator(t *testing.T, token string) *emulator {
	t.Helper()
	dir := filepath.Join("testdata", "peer")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "telegram-test-api")); err != nil {
		t.Fatalf("the Telegram Bot API emulator is not installed in %s: run `make peers` (npm ci there)", dir)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Fatal("node is not installed; the Telegram peer test needs it (and `make peers`)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	cmd := exec.Command(node, "emulator.js", fmt.Sprint(port), token)
	cmd.Dir = dir
	cmd.Stderr = testWriter{t}
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = stdin.Close()
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	e := &emulator{t: t, in: stdin, out: bufio.NewScanner(stdout)}
	e.out.Buffer(make([]byte, 1<<20), 1<<20)
	ready := make(chan bool, 1)
	go func() { ready <- e.out.Scan() }()
	select {
	case ok := <-ready:
		line := e.out.Text()
		if !ok || !strings.HasPrefix(line, "ready ") {
			t.Fatalf("the emulator did not start: %q", line)
		}
		e.url = strings.TrimPrefix(line, "ready ")
	case <-time.After(20 * time.Second):
		t.Fatal("the emulator did not start within 20 s")
	}
	return e
}

// do sends one command and decodes its answer into out.
func (e *emulator) do(cmd map[string]any, out any) {
	e.t.Helper()
	line, _ := json.Marshal(cmd)
	if _, err := e.in.Write(append(line, '\n')); err != nil {
		e.t.Fatal(err)
	}
	if !e.out.Scan() {
		e.t.Fatalf("the emulator stopped: %v", e.out.Err())
	}
	raw := e.out.Bytes()
	var failed struct{ Error string }
	if json.Unmarshal(raw, &failed) == nil && failed.Error != "" {
		e.t.Fatalf("emulator: %s", failed.Error)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		e.t.Fatalf("emulator answer %s: %v", raw, err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// The driver against an independent Bot API: a resident's private
// message is polled into an Inbound, and the reply reaches the resident's
// client, answering their message.
func TestAgainstBotAPIEmulator(t *testing.T) {
	const token = "7000000001:peer-test-token"
	e := startEmulator(t, token)
	client := &telegram.Client{BaseURL: e.url, Token: token, HTTP: &http.Client{Timeout: 10 * time.Second}}
	poller := &telegram.Poller{Client: client, Account: bot}
	const residentID = 5100000001
	who := map[string]any{"userId": residentID, "chatId": residentID, "userName": "alice_resident", "firstName": "Alice", "chatType": "private"}

	say := map[string]any{"say": "My bin was not collected on Elm Road"}
	for k, v := range who {
		say[k] = v
	}
	var ok struct{ OK bool }
	e.do(say, &ok)
	if !ok.OK {
		t.Fatal("the emulator did not take the resident's message")
	}

	var msgs []channels.Inbound
	cursor := ""
	deadline := time.Now().Add(10 * time.Second)
	for len(msgs) == 0 && time.Now().Before(deadline) {
		got, next, err := poller.Poll(t.Context(), cursor)
		if err != nil {
			t.Fatal(err)
		}
		msgs, cursor = append(msgs, got...), next
	}
	if len(msgs) != 1 {
		t.Fatalf("polled %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if err := m.Validate(); err != nil {
		t.Fatal(err)
	}
	if m.Visibility != channels.Private || m.Text != "My bin was not collected on Elm Road" || m.Author.ExternalID != fmt.Sprint(residentID) ||
		m.Author.Handle != "alice_resident" || m.ConversationID != fmt.Sprint(residentID) || !strings.HasPrefix(m.ExternalID, fmt.Sprint(residentID)+":") || cursor == "" {
		t.Fatalf("polled %+v (cursor %q)", m, cursor)
	}

	ids, err := client.Send(t.Context(), channels.Outbound{Visibility: channels.Private, Text: "Sorry about that, a crew is on its way.",
		Recipient: m.Author.ExternalID, InReplyTo: m.ExternalID}, nil)
	if err != nil || len(ids) != 1 {
		t.Fatalf("send: %v %v", ids, err)
	}
	var inbox struct {
		OK     bool `json:"ok"`
		Result []struct {
			Message struct {
				ChatID          json.Number `json:"chat_id"`
				Text            string      `json:"text"`
				ReplyParameters struct {
					MessageID int64 `json:"message_id"`
				} `json:"reply_parameters"`
			} `json:"message"`
		} `json:"result"`
	}
	e.do(map[string]any{"inbox": who}, &inbox)
	_, replied, _ := telegram.SplitMessageID(m.ExternalID)
	if len(inbox.Result) != 1 || inbox.Result[0].Message.Text != "Sorry about that, a crew is on its way." ||
		inbox.Result[0].Message.ReplyParameters.MessageID != replied {
		t.Fatalf("the resident's client shows %+v", inbox)
	}
	// Nothing more to poll from the committed cursor.
	if got, _, err := poller.Poll(t.Context(), cursor); err != nil || len(got) != 0 {
		t.Errorf("after the cursor: %v %v", got, err)
	}
}
