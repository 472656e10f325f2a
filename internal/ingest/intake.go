package ingest

import (
	"errors"
	"io"
	"net/http"
	"time"
)

var (
	// errBusy: the bodies being read already hold the memory cap.
	errBusy = errors.New("unverified webhook bodies are at their memory cap")
	// errTooLarge: the body is over the size cap.
	errTooLarge = errors.New("webhook body is over the size cap")
)

// firstChunk is the buffer a body of unknown length starts with.
const firstChunk = 16 << 10

// readBody reads a webhook body before its signature is checked. It bounds
// the time the body may take to arrive (BodyTimeout from now), and charges
// the memory the body takes, as it arrives, to the budget of unverified
// bytes: a body that would take the budget over its cap gets errBusy, so a
// sender that trickles bytes holds only what it sent, and only until the
// deadline. The caller calls release once the signature is checked (and
// may call it again).
//
// A body that does not arrive in time returns an error matching
// os.ErrDeadlineExceeded.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request) (body []byte, release func(), err error) {
	var charged int64
	release = func() {
		if charged > 0 {
			h.held.Add(-charged)
			h.unverified.Release(charged)
			charged = 0
		}
	}
	charge := func(n int64) bool {
		if !h.unverified.TryAcquire(n) {
			return false
		}
		charged += n
		h.held.Add(n)
		return true
	}

	// A declared length that cannot fit now is refused before anything is
	// read, so the sender learns it at once (before a 100 Continue).
	if cl := r.ContentLength; cl > 0 {
		if !h.unverified.TryAcquire(cl) {
			return nil, release, errBusy
		}
		h.unverified.Release(cl)
	}

	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(h.now().Add(h.opts.BodyTimeout)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return nil, release, err
	}
	// Once the body is in, no deadline: the server's own read on the
	// connection would otherwise end the request's context mid-publish.
	defer func() { _ = rc.SetReadDeadline(time.Time{}) }()

	// limit is the most there is to read: the declared length, or one byte
	// over the cap to tell a body that is too large.
	limit := h.opts.MaxBody + 1
	if r.ContentLength >= 0 {
		limit = r.ContentLength
	}
	if limit == 0 {
		return []byte{}, release, nil
	}
	size := min(limit, firstChunk)
	if !charge(size) {
		return nil, release, errBusy
	}
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if int64(len(buf)) >= limit {
				if r.ContentLength < 0 {
					return nil, release, errTooLarge
				}
				return buf, release, nil
			}
			grow := min(int64(cap(buf)), limit-int64(cap(buf)))
			if !charge(grow) {
				return nil, release, errBusy
			}
			next := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(next, buf)
			buf = next
		}
		n, err := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case errors.Is(err, io.EOF):
			return buf, release, nil
		case err != nil:
			return buf, release, err
		}
	}
}
