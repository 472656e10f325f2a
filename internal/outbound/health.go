package outbound

import (
	"context"
	"sync"
)

// refusal pauses one account's worker after the network refused the
// account's credential: every reply of the account would meet the same
// answer, so none is tried (or counted as failed) until the configuration
// gives the account a new credential.
type refusal struct {
	mu      sync.Mutex
	refused bool
	resume  chan struct{}
}

// refuse pauses the worker.
func (r *refusal) refuse() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.refused {
		r.refused, r.resume = true, make(chan struct{})
	}
}

// lift ends the pause, if any: a reload opened the account again.
func (r *refusal) lift() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.refused {
		r.refused = false
		close(r.resume)
	}
}

// waitLifted returns at once when the worker is not paused, and otherwise
// when the pause is lifted or ctx ends.
func (r *refusal) waitLifted(ctx context.Context) {
	r.mu.Lock()
	refused, resume := r.refused, r.resume
	r.mu.Unlock()
	if !refused {
		return
	}
	select {
	case <-resume:
	case <-ctx.Done():
	}
}

// markRefused records in the database that the network refused the
// account's credential, so the API, /metrics and every replica see it. It
// reports whether the account was healthy until now: the refusal is logged
// once, by whichever replica met it first, not once per reply.
func (s *Sender) markRefused(ctx context.Context, account, reason string) (bool, error) {
	res := s.db.WithContext(ctx).Exec(`UPDATE channel_accounts SET credential_refused_at = coalesce(credential_refused_at, now()),
			credential_reason = ?, credential_refused_by = 'send'
		WHERE slug = ? AND credential_refused_by <> 'send'`, reason, account)
	return res.RowsAffected > 0, res.Error
}

// markAccepted clears the account's refusal of a send after a send went
// through (a refused poll is the poller's to clear). It writes nothing
// while the account is healthy.
func (s *Sender) markAccepted(account string) {
	ctx, cancel := s.dbCtx()
	defer cancel()
	res := s.db.WithContext(ctx).Exec(`UPDATE channel_accounts SET credential_refused_at = NULL, credential_reason = '', credential_refused_by = ''
		WHERE slug = ? AND credential_refused_by = 'send'`, account)
	switch {
	case res.Error != nil:
		s.log.Warn("outbound: could not record the account healthy again", "account", account, "err", res.Error)
	case res.RowsAffected > 0:
		s.log.Info("channel account healthy again: the network took its credential", "account", account)
	}
}
