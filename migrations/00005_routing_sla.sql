-- +goose Up

-- What routing decided for a case, and its service-level clocks. Deadlines
-- are computed in Go on the SLA policy's business calendar and stored, so
-- that queries, the queue and the breach monitor can sort and index them.
ALTER TABLE cases
    ADD COLUMN priority text NOT NULL DEFAULT 'normal'
        CHECK (priority IN ('low', 'normal', 'high', 'urgent')),
    -- An Open311-style service code from the configuration's catalogue.
    ADD COLUMN service_code text,
    ADD COLUMN tags text[] NOT NULL DEFAULT '{}',
    ADD COLUMN emergency boolean NOT NULL DEFAULT false,
    ADD COLUMN safeguarding boolean NOT NULL DEFAULT false,
    -- The escalation policy the breach monitor follows; '' for the SLA
    -- policy's own.
    ADD COLUMN escalation text NOT NULL DEFAULT '',
    -- Which rules fired and why: {"explanation": "...", "rules": [...]}.
    ADD COLUMN routing jsonb NOT NULL DEFAULT '{}',
    -- First response: the first reply an adviser sent that the network
    -- accepted (first_response_at); automatic replies never count.
    ADD COLUMN first_response_due timestamptz,
    ADD COLUMN first_response_warn_at timestamptz,
    -- Next response: the clock restarts at the first resident message after
    -- our last reply, and stops at our next reply.
    ADD COLUMN last_response_at timestamptz,
    ADD COLUMN next_response_started_at timestamptz,
    ADD COLUMN next_response_due timestamptz,
    ADD COLUMN next_response_warn_at timestamptz,
    -- Resolution: paused while the case awaits the resident; what was left
    -- at the pause (in the target's own time) and the whole time paused.
    ADD COLUMN resolution_started_at timestamptz,
    ADD COLUMN resolution_due timestamptz,
    ADD COLUMN resolution_warn_at timestamptz,
    ADD COLUMN resolution_paused_at timestamptz,
    ADD COLUMN resolution_remaining_ms bigint,
    ADD COLUMN paused_ms bigint NOT NULL DEFAULT 0,
    -- How far the breach monitor has got with each target's deadline:
    -- 0 nothing announced, 1 warned, 2 breached. A new deadline starts at 0.
    ADD COLUMN first_response_alerted smallint NOT NULL DEFAULT 0,
    ADD COLUMN next_response_alerted smallint NOT NULL DEFAULT 0,
    ADD COLUMN resolution_alerted smallint NOT NULL DEFAULT 0,
    -- Kept by the trigger below: the earliest deadline still running, for
    -- the queue's order, and when the breach monitor must next look at the
    -- case (the earliest warning or deadline not yet announced; NULL when
    -- none is left).
    ADD COLUMN sla_due_at timestamptz,
    ADD COLUMN sla_check_at timestamptz,
    -- The last automatic acknowledgement, for sending at most one per period.
    ADD COLUMN acknowledged_at timestamptz;

-- Which targets are running follows from the columns alone, so every
-- writer (the case service, the sender recording a reply as sent, the
-- breach monitor) leaves sla_due_at and sla_check_at right.
-- +goose StatementBegin
CREATE FUNCTION cases_sla_refresh() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    live boolean := NEW.status IN ('new', 'open', 'awaiting_resident');
    fr boolean;
    nr boolean;
    rs boolean;
BEGIN
    IF TG_OP = 'UPDATE' THEN
        IF NEW.first_response_due IS DISTINCT FROM OLD.first_response_due THEN
            NEW.first_response_alerted := 0;
        END IF;
        IF NEW.next_response_due IS DISTINCT FROM OLD.next_response_due THEN
            NEW.next_response_alerted := 0;
        END IF;
        IF NEW.resolution_due IS DISTINCT FROM OLD.resolution_due THEN
            NEW.resolution_alerted := 0;
        END IF;
    END IF;
    fr := live AND NEW.first_response_at IS NULL AND NEW.first_response_due IS NOT NULL;
    nr := live AND NEW.next_response_due IS NOT NULL
        AND (NEW.last_response_at IS NULL OR NEW.last_response_at < NEW.next_response_started_at);
    rs := live AND NEW.resolved_at IS NULL AND NEW.resolution_paused_at IS NULL AND NEW.resolution_due IS NOT NULL;
    NEW.sla_due_at := least(
        CASE WHEN fr THEN NEW.first_response_due END,
        CASE WHEN nr THEN NEW.next_response_due END,
        CASE WHEN rs THEN NEW.resolution_due END);
    NEW.sla_check_at := least(
        CASE WHEN fr AND NEW.first_response_alerted = 0 THEN least(NEW.first_response_warn_at, NEW.first_response_due)
             WHEN fr AND NEW.first_response_alerted = 1 THEN NEW.first_response_due END,
        CASE WHEN nr AND NEW.next_response_alerted = 0 THEN least(NEW.next_response_warn_at, NEW.next_response_due)
             WHEN nr AND NEW.next_response_alerted = 1 THEN NEW.next_response_due END,
        CASE WHEN rs AND NEW.resolution_alerted = 0 THEN least(NEW.resolution_warn_at, NEW.resolution_due)
             WHEN rs AND NEW.resolution_alerted = 1 THEN NEW.resolution_due END);
    RETURN NEW;
END
$$;
-- +goose StatementEnd
CREATE TRIGGER cases_sla_refresh BEFORE INSERT OR UPDATE ON cases
    FOR EACH ROW EXECUTE FUNCTION cases_sla_refresh();

CREATE INDEX cases_sla_check_idx ON cases (sla_check_at) WHERE sla_check_at IS NOT NULL;
CREATE INDEX cases_queue_idx ON cases (team_id, sla_due_at, id)
    WHERE status IN ('new', 'open', 'awaiting_resident');

-- Each pause of a case's resolution clock, kept so that a deadline
-- recomputed after a change of team, priority or policy still allows for it.
CREATE TABLE case_pauses (
    id          bigserial PRIMARY KEY,
    case_id     bigint NOT NULL REFERENCES cases (id),
    started_at  timestamptz NOT NULL,
    ended_at    timestamptz
);
CREATE INDEX case_pauses_case_idx ON case_pauses (case_id, id);

-- Warnings and breaches announced, one per case, target, kind and deadline:
-- the primary key makes each exactly once whichever process finds it.
CREATE TABLE sla_alerts (
    case_id     bigint NOT NULL REFERENCES cases (id),
    target      text NOT NULL CHECK (target IN ('first_response', 'next_response', 'resolution')),
    kind        text NOT NULL CHECK (kind IN ('warning', 'breach')),
    due_at      timestamptz NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (case_id, target, kind, due_at)
);

-- Replies the service sent by itself: acknowledgements and the emergency
-- reply. They are shown as automatic and never count as a response.
ALTER TABLE messages
    ADD COLUMN automatic text NOT NULL DEFAULT ''
        CHECK (automatic IN ('', 'acknowledgement', 'emergency'));

-- Tags on a resident (a vulnerable resident, a known vexatious sender), for
-- routing rules to match.
ALTER TABLE contacts ADD COLUMN tags text[] NOT NULL DEFAULT '{}';

-- Settings the processes agree on, such as the fingerprint of the SLA
-- policy the stored deadlines were computed with.
CREATE TABLE settings (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE settings;
ALTER TABLE contacts DROP COLUMN tags;
ALTER TABLE messages DROP COLUMN automatic;
DROP TABLE sla_alerts;
DROP TABLE case_pauses;
DROP INDEX cases_queue_idx;
DROP TRIGGER cases_sla_refresh ON cases;
DROP FUNCTION cases_sla_refresh();
DROP INDEX cases_sla_check_idx;
ALTER TABLE cases
    DROP COLUMN acknowledged_at, DROP COLUMN sla_check_at, DROP COLUMN sla_due_at,
    DROP COLUMN paused_ms, DROP COLUMN first_response_alerted,
    DROP COLUMN next_response_alerted, DROP COLUMN resolution_alerted, DROP COLUMN resolution_remaining_ms, DROP COLUMN resolution_paused_at,
    DROP COLUMN resolution_warn_at, DROP COLUMN resolution_due, DROP COLUMN resolution_started_at,
    DROP COLUMN next_response_warn_at, DROP COLUMN next_response_due, DROP COLUMN next_response_started_at,
    DROP COLUMN last_response_at, DROP COLUMN first_response_warn_at, DROP COLUMN first_response_due,
    DROP COLUMN routing, DROP COLUMN escalation, DROP COLUMN safeguarding, DROP COLUMN emergency,
    DROP COLUMN tags, DROP COLUMN service_code, DROP COLUMN priority;
