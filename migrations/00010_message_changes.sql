-- +goose Up

-- A resident's edit or removal of what they posted, as the network
-- reported it: the message keeps what it first said, and shows the edit
-- or that it was removed.
ALTER TABLE messages
    ADD COLUMN edited_body text,
    ADD COLUMN edited_at timestamptz,
    ADD COLUMN removed_at timestamptz;

-- +goose Down
ALTER TABLE messages DROP COLUMN edited_body, DROP COLUMN edited_at, DROP COLUMN removed_at;
