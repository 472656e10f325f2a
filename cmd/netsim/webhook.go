package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/citizeninbox/inbox/internal/netsim"
)

// maxShownBody caps how much of an answer's body is printed.
const maxShownBody = 300

// webhook delivers signed events to the inbox's webhook, as the network
// does.
type webhook struct {
	url     string
	network netsim.Network
	http    *http.Client
	// tries is how many times a delivery is attempted when the inbox cannot
	// be reached; backoff is the wait before the first retry, doubled after
	// each.
	tries   int
	backoff time.Duration
}

// delivery is the outcome of one webhook delivery.
type delivery struct {
	status int
	body   []byte
	err    error
	// polled says the delivery waits in the fake for the inbox's next
	// poll (netsim.Polled).
	polled bool
}

// String shows the outcome the way netsim prints it: "[200]", the status
// and the body of any other answer, or the error.
func (d delivery) String() string {
	switch {
	case d.err != nil:
		return "[failed: " + d.err.Error() + "]"
	case d.polled:
		return "[waiting for the inbox's poll]"
	case d.status == http.StatusOK:
		return "[200]"
	}
	return fmt.Sprintf("[%d] %s", d.status, shorten(oneLine(string(d.body)), maxShownBody))
}

// post signs body and delivers it (or, for a network the inbox polls,
// hands it to the fake). Network errors are retried with
// backoff; any answer, whatever its status, ends the delivery.
func (w *webhook) post(ctx context.Context, body []byte) delivery {
	if p, ok := w.network.(netsim.Polled); ok {
		if err := p.Deliver(body); err != nil {
			return delivery{err: err}
		}
		return delivery{polled: true}
	}
	wait := w.backoff
	for attempt := 1; ; attempt++ {
		d := w.postOnce(ctx, body)
		if d.err == nil || attempt >= w.tries || ctx.Err() != nil {
			return d
		}
		if err := sleep(ctx, wait); err != nil {
			return d
		}
		wait *= 2
	}
}

func (w *webhook) postOnce(ctx context.Context, body []byte) delivery {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return delivery{err: err}
	}
	w.network.Sign(req, body)
	resp, err := w.http.Do(req)
	if err != nil {
		return delivery{err: err}
	}
	answer, err := readBody(resp, 64<<10)
	if err != nil {
		return delivery{err: fmt.Errorf("reading the answer: %w", err)}
	}
	return delivery{status: resp.StatusCode, body: answer}
}

// waitReady polls readyURL until it answers 200, for at most wait.
func waitReady(ctx context.Context, client *http.Client, readyURL string, wait time.Duration, stdout io.Writer) error {
	const poll = 500 * time.Millisecond
	deadline := time.Now().Add(wait)
	for said := false; ; said = true {
		err := probe(ctx, client, readyURL)
		switch {
		case err == nil:
			if said {
				printf(stdout, "the inbox is ready\n")
			}
			return nil
		case ctx.Err() != nil:
			return ctx.Err()
		case time.Now().After(deadline):
			return fmt.Errorf("the inbox was not ready after %s: %w", wait, err)
		}
		if !said {
			printf(stdout, "waiting for the inbox at %s (up to %s)…\n", readyURL, wait)
		}
		if err := sleep(ctx, min(poll, time.Until(deadline))); err != nil {
			return err
		}
	}
}

// probe asks readyURL once.
func probe(ctx context.Context, client *http.Client, readyURL string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, readyURL, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	body, _ := readBody(resp, 4<<10)
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered %d: %s", readyURL, resp.StatusCode, shorten(oneLine(string(body)), maxShownBody))
	}
	return nil
}

// readBody reads at most limit bytes of resp's body and closes it.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit))
	_ = resp.Body.Close() // nothing is lost if closing fails once the body is read
	return body, err
}

// printf writes netsim's output. A terminal that cannot be written to is
// no reason to stop the simulation, so write errors are ignored.
func printf(w io.Writer, format string, args ...any) {
	_, _ = fmt.Fprintf(w, format, args...)
}

// sleep waits for d or until ctx ends, whichever comes first.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// oneLine folds line breaks so that one event prints as one line.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// shorten cuts s to at most n bytes, on a rune boundary.
func shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
