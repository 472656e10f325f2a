package outbound

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// rateLimits knows until when each channel account must not send, because
// its network said so (X's 429 with x-rate-limit-reset). The state lives in
// a JetStream key-value bucket, so a limit one replica runs into holds
// every replica back; each sender also keeps the limits it met itself, so
// it still honours them while NATS is away.
type rateLimits struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu    sync.Mutex
	local map[string]time.Time
}

func newRateLimits(kv jetstream.KeyValue, log *slog.Logger) *rateLimits {
	return &rateLimits{kv: kv, log: log, local: map[string]time.Time{}}
}

// rateLimit is a bucket entry: the network's own reset time.
type rateLimit struct {
	Until time.Time `json:"until"`
}

// maxCASTries bounds how often block retries against concurrent writers.
const maxCASTries = 5

// wait returns how long account must still wait before sending, 0 when
// it may send now. The shared bucket is read at every call: an entry another
// replica wrote just before counts.
func (r *rateLimits) wait(ctx context.Context, account string) time.Duration {
	r.mu.Lock()
	until := r.local[account]
	r.mu.Unlock()
	if shared, _, err := r.get(ctx, account); err != nil {
		r.log.Warn("outbound: shared rate limits unreadable, using this replica's", "account", account, "err", err)
	} else if shared.After(until) {
		until = shared
	}
	return max(time.Until(until), 0)
}

// block records that account may not send before until, here and in the
// shared bucket. An entry already later is kept.
func (r *rateLimits) block(ctx context.Context, account string, until time.Time) {
	r.mu.Lock()
	if until.After(r.local[account]) {
		r.local[account] = until
	}
	r.mu.Unlock()

	value, _ := json.Marshal(rateLimit{Until: until.UTC()})
	for range maxCASTries {
		current, rev, err := r.get(ctx, account)
		switch {
		case err != nil:
		case !current.Before(until):
			return
		case rev == 0:
			_, err = r.kv.Create(ctx, account, value)
		default:
			_, err = r.kv.Update(ctx, account, value, rev)
		}
		if err == nil {
			return
		}
		if !errors.Is(err, jetstream.ErrKeyExists) && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			r.log.Warn("outbound: rate limit not shared with other replicas", "account", account, "err", err)
			return
		}
		// Another replica wrote in between: read again.
	}
}

// get reads account's shared entry and its revision; no entry is the zero
// time and revision 0.
func (r *rateLimits) get(ctx context.Context, account string) (time.Time, uint64, error) {
	e, err := r.kv.Get(ctx, account)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return time.Time{}, 0, nil
	}
	if err != nil {
		return time.Time{}, 0, err
	}
	var rl rateLimit
	if err := json.Unmarshal(e.Value(), &rl); err != nil {
		// Not ours to read: overwrite it with the next limit met.
		return time.Time{}, e.Revision(), nil
	}
	return rl.Until, e.Revision(), nil
}
