-- +goose Up

-- When each user last had a page of the inbox open (a page loaded, or the
-- live stream of an open page ticking), written at most every half minute:
-- the advisers online on the supervisors' dashboard and in /metrics, the
-- same on every replica.
ALTER TABLE users ADD COLUMN last_seen_at timestamptz;

-- +goose Down
ALTER TABLE users DROP COLUMN last_seen_at;
