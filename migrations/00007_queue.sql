-- +goose Up

-- How many open cases of the team one adviser may hold when taking the
-- next case; NULL is no cap.
ALTER TABLE teams ADD COLUMN max_open_per_adviser integer CHECK (max_open_per_adviser >= 1);

-- The queue's default view and "Next case": cases waiting for the council,
-- in SLA order within a team.
CREATE INDEX cases_waiting_idx ON cases (team_id, sla_due_at, id)
    WHERE status IN ('new', 'open');
CREATE INDEX cases_unassigned_idx ON cases (team_id, sla_due_at, id)
    WHERE status IN ('new', 'open') AND assignee_id IS NULL;
-- An adviser's open cases per team, for the cap.
CREATE INDEX cases_assignee_open_idx ON cases (assignee_id, team_id)
    WHERE status IN ('new', 'open', 'awaiting_resident') AND assignee_id IS NOT NULL;

-- +goose Down
DROP INDEX cases_assignee_open_idx;
DROP INDEX cases_unassigned_idx;
DROP INDEX cases_waiting_idx;
ALTER TABLE teams DROP COLUMN max_open_per_adviser;
