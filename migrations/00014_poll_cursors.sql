-- +goose Up

-- Where the next poll of each polled channel account starts (Telegram's
-- getUpdates offset, a Mastodon notification id, an IMAP UIDVALIDITY and
-- UID): written only once JetStream has stored the messages the poll
-- before it brought, and only from the revision that poll read, so two
-- replicas can never both move it on. The cursor names network positions,
-- never what a resident wrote.
CREATE TABLE poll_cursors (
    account     text PRIMARY KEY,
    cursor      text NOT NULL,
    revision    bigint NOT NULL DEFAULT 1,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE poll_cursors;
