-- +goose Up

-- The supervisors' read model: a row per response the council made and per
-- resolution, written in the transaction that made it, with its durations
-- worked out then, on the calendar of the SLA target that applied (working
-- time) and on the clock (calendar time). Figures read these rows and the
-- cases' own columns, never the messages. Each row keeps the case's team,
-- channel, account, service and priority as they were at that moment, so a
-- case moved later does not rewrite what was reported. The rows hold ids
-- and times only, nothing a resident wrote.

-- The first response to a case and each next response: the reply that
-- answered the resident's message at asked_at (the period a response
-- belongs to).
CREATE TABLE case_responses (
    id                  bigserial PRIMARY KEY,
    case_id             bigint NOT NULL REFERENCES cases (id),
    target              text NOT NULL CHECK (target IN ('first_response', 'next_response')),
    asked_at            timestamptz NOT NULL,
    responded_at        timestamptz NOT NULL,
    -- The deadline, and whether the response met it; 'none' when the
    -- policy set no target.
    due_at              timestamptz,
    outcome             text NOT NULL CHECK (outcome IN ('met', 'breached', 'none')),
    working_ms          bigint NOT NULL CHECK (working_ms >= 0),
    calendar_ms         bigint NOT NULL CHECK (calendar_ms >= 0),
    responder_id        bigint REFERENCES users (id),
    team_id             bigint NOT NULL REFERENCES teams (id),
    channel             text NOT NULL,
    channel_account_id  bigint NOT NULL REFERENCES channel_accounts (id),
    service_code        text,
    priority            text NOT NULL,
    UNIQUE (case_id, target, asked_at)
);
CREATE INDEX case_responses_asked_idx ON case_responses (asked_at);

-- Each resolution of a case (a case reopened and resolved again has two),
-- timed from when its resolution clock started; working time leaves out
-- the time the case awaited the resident (paused_ms, in the target's own
-- time).
CREATE TABLE case_resolutions (
    id                  bigserial PRIMARY KEY,
    case_id             bigint NOT NULL REFERENCES cases (id),
    started_at          timestamptz NOT NULL,
    resolved_at         timestamptz NOT NULL,
    due_at              timestamptz,
    outcome             text NOT NULL CHECK (outcome IN ('met', 'breached', 'none')),
    working_ms          bigint NOT NULL CHECK (working_ms >= 0),
    calendar_ms         bigint NOT NULL CHECK (calendar_ms >= 0),
    paused_ms           bigint NOT NULL DEFAULT 0,
    resolver_id         bigint REFERENCES users (id),
    team_id             bigint NOT NULL REFERENCES teams (id),
    channel             text NOT NULL,
    channel_account_id  bigint NOT NULL REFERENCES channel_accounts (id),
    service_code        text,
    priority            text NOT NULL,
    -- When the case was reopened after this resolution, for the reopen rate.
    reopened_at         timestamptz,
    UNIQUE (case_id, resolved_at)
);
CREATE INDEX case_resolutions_resolved_idx ON case_resolutions (resolved_at);
CREATE INDEX case_resolutions_open_idx ON case_resolutions (case_id) WHERE reopened_at IS NULL;

-- Whoever reopens a case (the resident writing again, an adviser), its last
-- resolution is marked reopened, in the same statement.
-- +goose StatementBegin
CREATE FUNCTION cases_mark_reopened() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE case_resolutions SET reopened_at = now()
    WHERE case_id = NEW.id AND reopened_at IS NULL;
    RETURN NULL;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER cases_mark_reopened AFTER UPDATE OF reopened_count ON cases
    FOR EACH ROW WHEN (NEW.reopened_count > OLD.reopened_count)
    EXECUTE FUNCTION cases_mark_reopened();

-- Cases by when the resident first wrote: the period of the volumes by hour
-- and day, and of first responses still awaited.
CREATE INDEX cases_first_message_idx ON cases (first_message_at);

-- +goose Down
DROP INDEX cases_first_message_idx;
DROP TRIGGER cases_mark_reopened ON cases;
DROP FUNCTION cases_mark_reopened();
DROP TABLE case_resolutions;
DROP TABLE case_responses;
