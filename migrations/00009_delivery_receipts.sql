-- +goose Up

-- Networks that report delivery (WhatsApp's statuses) take a reply on from
-- sent to delivered and read.
ALTER TABLE messages DROP CONSTRAINT messages_delivery_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_delivery_status_check
    CHECK (delivery_status IN ('received', 'queued', 'sending', 'sent', 'delivered', 'read', 'failed'));

-- +goose Down
UPDATE messages SET delivery_status = 'sent' WHERE delivery_status IN ('delivered', 'read');
ALTER TABLE messages DROP CONSTRAINT messages_delivery_status_check;
ALTER TABLE messages ADD CONSTRAINT messages_delivery_status_check
    CHECK (delivery_status IN ('received', 'queued', 'sending', 'sent', 'failed'));
