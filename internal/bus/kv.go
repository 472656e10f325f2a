package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Key-value buckets, before the namespace. They hold state every replica
// must see the same way.
const (
	// RateLimits holds, per channel account, until when the network has
	// asked us to stop sending.
	RateLimits = "RATE_LIMITS"
	// Presence holds who is viewing or replying to which case; an entry
	// lasts PresenceTTL after its last refresh.
	Presence = "PRESENCE"
)

// PresenceTTL is how long a presence entry lasts unless refreshed.
const PresenceTTL = 45 * time.Second

// buckets lists every bucket, for clean-up.
var buckets = []string{RateLimits, Presence}

// Bucket returns the name of a key-value bucket in this namespace.
func (n Names) Bucket(name string) string { return n.Stream(name) }

// RateLimitBucket creates, or opens, the bucket of rate limits shared
// between replicas. It is safe to run at every start, on any replica.
func (b *Bus) RateLimitBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Bucket(RateLimits),
		Description: "Until when each channel account's network asked us to wait",
		History:     1,
		Storage:     jetstream.FileStorage,
		Replicas:    max(b.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", b.Bucket(RateLimits), err)
	}
	return kv, nil
}

// deleteBuckets removes this namespace's key-value buckets.
func (b *Bus) deleteBuckets(ctx context.Context) {
	for _, name := range buckets {
		_ = b.JS.DeleteKeyValue(ctx, b.Bucket(name))
	}
}

// PresenceBucket creates, or opens, the bucket of advisers' presence on
// cases. It is kept in memory: presence is worth nothing after a restart.
func (b *Bus) PresenceBucket(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := b.JS.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      b.Bucket(Presence),
		Description: "Which adviser is viewing or replying to which case",
		History:     1,
		TTL:         PresenceTTL,
		Storage:     jetstream.MemoryStorage,
		Replicas:    max(b.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("key-value bucket %s: %w", b.Bucket(Presence), err)
	}
	return kv, nil
}
