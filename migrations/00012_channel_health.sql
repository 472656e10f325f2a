-- +goose Up

-- An account whose network refused its credential (expired or revoked):
-- its replies wait until the configuration gives it a new one and a send
-- goes through. NULL while the account is healthy.
ALTER TABLE channel_accounts
    ADD COLUMN credential_refused_at timestamptz,
    ADD COLUMN credential_reason text NOT NULL DEFAULT '';

-- The replies waiting to go out on each account, counted for the
-- accounts' health: few rows at any time, so a small index.
CREATE INDEX messages_waiting_idx ON messages (channel_account_id)
    WHERE delivery_status IN ('queued', 'sending');

-- +goose Down
DROP INDEX messages_waiting_idx;
ALTER TABLE channel_accounts DROP COLUMN credential_refused_at, DROP COLUMN credential_reason;
