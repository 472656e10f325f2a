-- +goose Up

-- Advisers and supervisors work the cases of the teams they belong to, and
-- may belong to several; admins see every team whatever their membership.
CREATE TABLE user_teams (
    user_id     bigint NOT NULL REFERENCES users (id),
    team_id     bigint NOT NULL REFERENCES teams (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, team_id)
);
CREATE INDEX user_teams_team_idx ON user_teams (team_id);

-- The single team a user could have had is their first membership.
INSERT INTO user_teams (user_id, team_id) SELECT id, team_id FROM users WHERE team_id IS NOT NULL;
ALTER TABLE users DROP COLUMN team_id;

-- +goose Down
ALTER TABLE users ADD COLUMN team_id bigint REFERENCES teams (id);
UPDATE users SET team_id = (SELECT min(team_id) FROM user_teams WHERE user_id = users.id);
DROP TABLE user_teams;
