package server

import (
	"context"
	"log/slog"
	"net/http"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/channels"
	"github.com/citizeninbox/inbox/internal/config"
	"github.com/citizeninbox/inbox/internal/store"
)

// SyncConfig writes the configured teams and channel accounts to the
// database as the server does when it starts, for commands that fill the
// database before it serves (inbox demo-data). It returns the accounts as
// their drivers opened them (publicURL is the server's INBOX_PUBLIC_URL),
// for what they can send; nothing is sent.
func SyncConfig(ctx context.Context, db *gorm.DB, f *config.File, drivers *channels.Registry, publicURL string) (*channels.Accounts, error) {
	accts, err := openChannels(drivers, f, channels.Deps{HTTP: http.DefaultClient, Log: slog.New(slog.DiscardHandler), PublicURL: publicURL})
	if err != nil {
		return nil, err
	}
	return accts, syncConfig(ctx, db, f, accts)
}

// syncConfig writes the configured teams and channel accounts to the
// database, so cases can refer to them. The file is the source of truth;
// rows are never deleted, because cases refer to them. An account's
// external id is the one its driver gives.
func syncConfig(ctx context.Context, db *gorm.DB, f *config.File, accts *channels.Accounts) error {
	return store.Write(ctx, db, func(tx *gorm.DB) error {
		for _, t := range f.Teams {
			if err := tx.Exec(`INSERT INTO teams (slug, name, max_open_per_adviser) VALUES (?, ?, ?)
				ON CONFLICT (slug) DO UPDATE SET name = EXCLUDED.name,
					max_open_per_adviser = EXCLUDED.max_open_per_adviser, updated_at = now()
				WHERE teams.name IS DISTINCT FROM EXCLUDED.name
					OR teams.max_open_per_adviser IS DISTINCT FROM EXCLUDED.max_open_per_adviser`, t.Slug, t.Name, t.MaxOpenPerAdviser).Error; err != nil {
				return err
			}
		}
		for _, a := range f.ChannelAccounts {
			externalID := accts.ExternalID(a.Slug)
			if err := tx.Exec(`INSERT INTO channel_accounts (slug, channel, name, external_id, team_id)
				VALUES (?, ?, ?, ?, (SELECT id FROM teams WHERE slug = ?))
				ON CONFLICT (slug) DO UPDATE SET channel = EXCLUDED.channel, name = EXCLUDED.name,
					external_id = EXCLUDED.external_id, team_id = EXCLUDED.team_id, updated_at = now()`,
				a.Slug, a.Channel, a.Name, externalID, a.Team).Error; err != nil {
				return err
			}
		}
		return nil
	})
}
