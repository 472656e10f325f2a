-- +goose Up

-- A case is one resident's. A resident who answers a post in another
-- resident's thread, or under the council's own post, gets a case of their
-- own that records the post they answered and, when there is one, the case
-- that post belongs to, so the adviser sees the context.
ALTER TABLE cases
    ADD COLUMN context_post_id text NOT NULL DEFAULT '',
    ADD COLUMN context_case_id bigint REFERENCES cases (id);

-- Threading looks up one resident's replies to a post and one resident's
-- messages in a conversation, and checks the case found is theirs.
CREATE INDEX cases_contact_identity_idx ON cases (contact_identity_id, id);
CREATE INDEX messages_in_reply_to_identity_idx
    ON messages (channel_account_id, in_reply_to, contact_identity_id, id DESC) WHERE in_reply_to <> '';
CREATE INDEX messages_conversation_identity_idx
    ON messages (channel_account_id, conversation_id, contact_identity_id, id DESC) WHERE conversation_id <> '';
DROP INDEX messages_in_reply_to_idx;
DROP INDEX messages_conversation_idx;

-- +goose Down
CREATE INDEX messages_in_reply_to_idx ON messages (channel_account_id, in_reply_to, id DESC) WHERE in_reply_to <> '';
CREATE INDEX messages_conversation_idx ON messages (channel_account_id, conversation_id, id DESC) WHERE conversation_id <> '';
DROP INDEX messages_conversation_identity_idx;
DROP INDEX messages_in_reply_to_identity_idx;
DROP INDEX cases_contact_identity_idx;
ALTER TABLE cases DROP COLUMN context_case_id, DROP COLUMN context_post_id;
