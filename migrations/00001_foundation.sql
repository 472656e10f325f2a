-- +goose Up

CREATE TABLE teams (
    id          bigserial PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- One configured presence on a network. Credentials are not stored here:
-- they live in the configuration file and the environment.
CREATE TABLE channel_accounts (
    id           bigserial PRIMARY KEY,
    slug         text NOT NULL UNIQUE,
    channel      text NOT NULL,
    name         text NOT NULL,
    external_id  text NOT NULL DEFAULT '',
    team_id      bigint NOT NULL REFERENCES teams (id),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE users (
    id          bigserial PRIMARY KEY,
    email       text NOT NULL,
    name        text NOT NULL,
    role        text NOT NULL CHECK (role IN ('adviser', 'supervisor', 'admin')),
    team_id     bigint REFERENCES teams (id),
    disabled_at timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- API tokens: only the SHA-256 of the secret is kept.
CREATE TABLE api_tokens (
    id            bigserial PRIMARY KEY,
    user_id       bigint NOT NULL REFERENCES users (id),
    name          text NOT NULL,
    prefix        text NOT NULL,
    secret_hash   bytea NOT NULL UNIQUE,
    last_used_at  timestamptz,
    expires_at    timestamptz,
    revoked_at    timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contacts (
    id            bigserial PRIMARY KEY,
    display_name  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE contact_identities (
    id            bigserial PRIMARY KEY,
    contact_id    bigint NOT NULL REFERENCES contacts (id),
    channel       text NOT NULL,
    external_id   text NOT NULL,
    handle        text NOT NULL DEFAULT '',
    display_name  text NOT NULL DEFAULT '',
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (channel, external_id)
);
CREATE INDEX contact_identities_contact_idx ON contact_identities (contact_id);

CREATE SEQUENCE case_reference_seq;

CREATE TABLE cases (
    id                   bigserial PRIMARY KEY,
    reference            text NOT NULL UNIQUE DEFAULT
        ('C-' || to_char(now() AT TIME ZONE 'Europe/London', 'YYYY') || '-' ||
         to_char(nextval('case_reference_seq'), 'FM999999999000000')),
    status               text NOT NULL DEFAULT 'new'
        CHECK (status IN ('new', 'open', 'awaiting_resident', 'resolved', 'closed')),
    channel              text NOT NULL,
    channel_account_id   bigint NOT NULL REFERENCES channel_accounts (id),
    contact_id           bigint NOT NULL REFERENCES contacts (id),
    contact_identity_id  bigint NOT NULL REFERENCES contact_identities (id),
    team_id              bigint NOT NULL REFERENCES teams (id),
    assignee_id          bigint REFERENCES users (id),
    subject              text NOT NULL DEFAULT '',
    first_message_at     timestamptz NOT NULL,
    last_message_at      timestamptz NOT NULL,
    first_response_at    timestamptz,
    resolved_at          timestamptz,
    closed_at            timestamptz,
    reopened_count       integer NOT NULL DEFAULT 0,
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);
-- The queue and the API list cases newest activity first, by id for paging.
CREATE INDEX cases_list_idx ON cases (id DESC);
CREATE INDEX cases_status_team_idx ON cases (status, team_id, id DESC);
CREATE INDEX cases_channel_idx ON cases (channel, id DESC);
-- A resident's open case on one account, for threading direct messages.
CREATE INDEX cases_open_by_identity_idx ON cases (contact_identity_id, channel_account_id, last_message_at DESC)
    WHERE status IN ('new', 'open', 'awaiting_resident');

CREATE TABLE messages (
    id                   bigserial PRIMARY KEY,
    case_id              bigint NOT NULL REFERENCES cases (id),
    channel_account_id   bigint NOT NULL REFERENCES channel_accounts (id),
    direction            text NOT NULL CHECK (direction IN ('inbound', 'outbound', 'note')),
    visibility           text NOT NULL CHECK (visibility IN ('public', 'private')),
    body                 text NOT NULL,
    -- Inbound: the network's dedupe key. Unique per account, so a redelivered
    -- webhook never stores a message twice.
    dedupe_key           text,
    external_id          text NOT NULL DEFAULT '',
    -- Network ids of every post of an outbound reply sent as a thread.
    external_ids         text[] NOT NULL DEFAULT '{}',
    conversation_id      text NOT NULL DEFAULT '',
    in_reply_to          text NOT NULL DEFAULT '',
    contact_identity_id  bigint REFERENCES contact_identities (id),
    author_user_id       bigint REFERENCES users (id),
    -- An API client's Idempotency-Key: a retried request returns the reply
    -- it made the first time instead of sending another.
    idempotency_key      text,
    delivery_status      text NOT NULL DEFAULT 'received'
        CHECK (delivery_status IN ('received', 'queued', 'sending', 'sent', 'failed')),
    failure_reason       text NOT NULL DEFAULT '',
    -- Calls made to the network for this reply, and how many of them failed
    -- in a way worth retrying (outages, timeouts); rate limits are neither.
    send_attempts        integer NOT NULL DEFAULT 0,
    send_failures        integer NOT NULL DEFAULT 0,
    -- A sender that claims a reply holds it until then; past it, another
    -- may take over.
    sending_until        timestamptz,
    sent_at              timestamptz,
    network_sent_at      timestamptz,
    received_at          timestamptz,
    raw                  jsonb,
    created_at           timestamptz NOT NULL DEFAULT now(),
    -- When the row was written, moments before its transaction committed;
    -- with received_at it gives the webhook-to-case latency.
    committed_at         timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (channel_account_id, dedupe_key)
);
CREATE INDEX messages_case_idx ON messages (case_id, id);
CREATE UNIQUE INDEX messages_idempotency_idx ON messages (author_user_id, idempotency_key)
    WHERE idempotency_key IS NOT NULL;

-- Every post and direct message id on a network, ours and residents', with
-- the case it belongs to: a reply to any of them threads onto that case.
CREATE TABLE message_posts (
    channel_account_id  bigint NOT NULL REFERENCES channel_accounts (id),
    external_id         text NOT NULL,
    message_id          bigint NOT NULL REFERENCES messages (id),
    case_id             bigint NOT NULL REFERENCES cases (id),
    PRIMARY KEY (channel_account_id, external_id)
);
-- Other replies to the same post, for threading a reply whose post's case
-- is closed onto the case an earlier such reply opened.
CREATE INDEX messages_in_reply_to_idx ON messages (channel_account_id, in_reply_to, id DESC) WHERE in_reply_to <> '';
CREATE INDEX messages_conversation_idx ON messages (channel_account_id, conversation_id, id DESC) WHERE conversation_id <> '';

-- Transactional outbox: rows written in the same transaction as the change
-- they announce, published to JetStream by the relay, then deleted.
CREATE TABLE outbox (
    id          bigserial PRIMARY KEY,
    subject     text NOT NULL,
    msg_id      text NOT NULL,
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Inbound messages the case service could not store, kept whole with the
-- reason so nothing a resident sent is lost; an operator can replay them.
CREATE TABLE inbound_rejected (
    id          bigserial PRIMARY KEY,
    subject     text NOT NULL,
    data        bytea NOT NULL,
    reason      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Every read and change made through the API or UI.
CREATE TABLE audit_events (
    id           bigserial PRIMARY KEY,
    user_id      bigint REFERENCES users (id),
    token_id     bigint REFERENCES api_tokens (id),
    action       text NOT NULL,
    case_id      bigint,
    detail       jsonb NOT NULL DEFAULT '{}',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX audit_events_case_idx ON audit_events (case_id, id) WHERE case_id IS NOT NULL;

-- +goose Down
DROP TABLE audit_events;
DROP TABLE inbound_rejected;
DROP TABLE outbox;
DROP TABLE message_posts;
DROP TABLE messages;
DROP TABLE cases;
DROP SEQUENCE case_reference_seq;
DROP TABLE contact_identities;
DROP TABLE contacts;
DROP TABLE api_tokens;
DROP TABLE users;
DROP TABLE channel_accounts;
DROP TABLE teams;
