-- +goose Up

-- Delivery receipts for ids the sender has not recorded yet: the network
-- may report delivery before the sender has written down the id it
-- answered with. The sender applies them when it records the id; those
-- for messages another system sent are dropped after a day.
CREATE TABLE pending_receipts (
    id                  bigserial PRIMARY KEY,
    channel_account_id  bigint NOT NULL REFERENCES channel_accounts (id),
    external_id         text NOT NULL,
    status              text NOT NULL,
    reason              text NOT NULL DEFAULT '',
    received_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pending_receipts_post_idx ON pending_receipts (channel_account_id, external_id);
CREATE INDEX pending_receipts_age_idx ON pending_receipts (received_at);

-- +goose Down
DROP TABLE pending_receipts;
