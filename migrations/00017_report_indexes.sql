-- +goose Up

-- The supervisors' figures over a year of a million cases: what
-- reports.Compute reads is found by index, and mostly read from the index
-- alone (the fact tables are only ever added to, so their rows are
-- visible to index-only scans once vacuumed).

-- A period's responses and resolutions, with what their figures need:
-- for every team and channel, for one team, for one channel. The first
-- replace the plain time indexes of 00015.
CREATE INDEX case_responses_period_idx ON case_responses (asked_at)
    INCLUDE (target, outcome, working_ms, calendar_ms);
CREATE INDEX case_responses_team_idx ON case_responses (team_id, asked_at)
    INCLUDE (target, outcome, working_ms, calendar_ms);
CREATE INDEX case_responses_channel_idx ON case_responses (channel, asked_at)
    INCLUDE (target, outcome, working_ms, calendar_ms);
DROP INDEX case_responses_asked_idx;
CREATE INDEX case_resolutions_period_idx ON case_resolutions (resolved_at)
    INCLUDE (outcome, working_ms, calendar_ms, reopened_at);
CREATE INDEX case_resolutions_team_idx ON case_resolutions (team_id, resolved_at)
    INCLUDE (outcome, working_ms, calendar_ms, reopened_at);
CREATE INDEX case_resolutions_channel_idx ON case_resolutions (channel, resolved_at)
    INCLUDE (outcome, working_ms, calendar_ms, reopened_at);
DROP INDEX case_resolutions_resolved_idx;

-- First and next responses still awaited, counted on the period's
-- messages: partial indexes on the figures' own conditions, so the planner
-- can use them, with what the counts read.
CREATE INDEX cases_first_response_awaited_idx ON cases (first_message_at)
    INCLUDE (first_response_due, status, resolved_at, closed_at, team_id, channel)
    WHERE first_response_at IS NULL;
CREATE INDEX cases_next_response_awaited_idx ON cases (next_response_started_at)
    INCLUDE (next_response_due, status, resolved_at, closed_at, team_id, channel)
    WHERE last_response_at IS NULL OR last_response_at < next_response_started_at;

-- A team's or a channel's new cases of a period (volumes, resolutions
-- still running).
CREATE INDEX cases_team_first_message_idx ON cases (team_id, first_message_at);
CREATE INDEX cases_channel_first_message_idx ON cases (channel, first_message_at);

-- +goose Down
DROP INDEX cases_channel_first_message_idx;
DROP INDEX cases_team_first_message_idx;
DROP INDEX cases_next_response_awaited_idx;
DROP INDEX cases_first_response_awaited_idx;
CREATE INDEX case_resolutions_resolved_idx ON case_resolutions (resolved_at);
DROP INDEX case_resolutions_channel_idx;
DROP INDEX case_resolutions_team_idx;
DROP INDEX case_resolutions_period_idx;
CREATE INDEX case_responses_asked_idx ON case_responses (asked_at);
DROP INDEX case_responses_channel_idx;
DROP INDEX case_responses_team_idx;
DROP INDEX case_responses_period_idx;
