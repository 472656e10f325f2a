-- +goose Up

-- A resident's identities on channels whose identities are phone numbers
-- (WhatsApp, SMS) are suggested as one contact when their digits match.
-- Which channels those are is the drivers' to say, not the schema's, so
-- the index covers every identity: by digits, then channel, which is how
-- the suggestion query looks them up.
CREATE INDEX contact_identities_phone_digits_idx
    ON contact_identities ((regexp_replace(external_id, '\D', '', 'g')), channel);

-- +goose Down
DROP INDEX contact_identities_phone_digits_idx;
