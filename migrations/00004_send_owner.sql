-- +goose Up

-- The token of the claim a sender holds on a reply it is sending, new at
-- every claim. Every write the sender makes after claiming names it, so a
-- sender whose lease lapsed can never overwrite what the reply's new
-- holder recorded. Only a reply being sent has one.
ALTER TABLE messages ADD COLUMN send_owner uuid;

-- +goose Down
ALTER TABLE messages DROP COLUMN send_owner;
