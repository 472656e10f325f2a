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

-- Which side met a refused credential: 'send' (a reply refused; only a
-- reply that goes through, after a reload, clears it) or 'poll' (a poll
-- refused; the next poll that goes through clears it). A refused send
-- takes over a poll's mark, never the other way round.
ALTER TABLE channel_accounts ADD COLUMN credential_refused_by text NOT NULL DEFAULT ''
    CHECK (credential_refused_by IN ('', 'send', 'poll'));

-- +goose Down
ALTER TABLE channel_accounts DROP COLUMN credential_refused_by;
DROP TABLE poll_cursors;
