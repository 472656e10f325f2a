package cases

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"gorm.io/gorm"

	"github.com/citizeninbox/inbox/internal/reports"
	"github.com/citizeninbox/inbox/internal/store"
)

// Export kinds.
const (
	ExportCases    = "cases"
	ExportMessages = "messages"
)

// ExportRequest is one export of the rows behind the supervisors'
// figures: its kind, format and filter, teams and channel accounts named
// by slug.
type ExportRequest struct {
	Kind     string
	Format   string
	Filter   reports.Filter
	Teams    []string
	Accounts []string
	// WithText includes what each message says (ActExportText).
	WithText bool
}

// ErrUnknownAccountSlug is an export naming a channel account that does
// not exist.
var ErrUnknownAccountSlug = errors.New("no channel account has that slug")

// Export checks that the actor may make the export, records it in the
// audit trail as a disclosure to the actor, and streams its rows to w
// straight from the database. A supervisor exports only their teams'
// cases: without a team named, all of them.
func (s *Service) Export(ctx context.Context, actor Actor, req ExportRequest, w io.Writer) (int64, error) {
	if !actor.Can(ActExport) {
		return 0, ErrForbidden
	}
	if req.WithText && !actor.Can(ActExportText) {
		return 0, fmt.Errorf("%w: exporting what messages say is for admins", ErrForbidden)
	}
	if req.Kind != ExportCases && req.Kind != ExportMessages {
		return 0, fmt.Errorf("cases: export %q is not %s or %s", req.Kind, ExportCases, ExportMessages)
	}
	f := req.Filter
	db := s.db.WithContext(ctx)
	for _, slug := range req.Teams {
		id, err := s.teamID(db, slug)
		if err != nil {
			return 0, err
		}
		if !actor.Sees(id) {
			return 0, fmt.Errorf("%w: you may export only your teams' cases (not %s)", ErrForbidden, slug)
		}
		f.Teams = append(f.Teams, id)
	}
	if len(f.Teams) == 0 && !EveryTeam(actor.Role) {
		f.Teams = append([]int64{0}, actor.TeamIDs...) // 0: no team, so none when they have none
	}
	for _, slug := range req.Accounts {
		var id int64
		if err := db.Raw(`SELECT id FROM channel_accounts WHERE slug = ?`, slug).Scan(&id).Error; err != nil {
			return 0, err
		}
		if id == 0 {
			return 0, fmt.Errorf("%w: %q", ErrUnknownAccountSlug, slug)
		}
		f.Accounts = append(f.Accounts, id)
	}
	if err := f.Validate(); err != nil {
		return 0, err
	}
	slices.Sort(f.Teams)
	detail := map[string]any{
		"format": req.Format, "from": f.From.UTC(), "to": f.To.UTC(), "team_ids": f.Teams, "channels": f.Channels,
		"account_ids": f.Accounts, "services": f.Services, "priorities": f.Priorities, "adviser_ids": f.Advisers,
		"with_text": req.WithText,
	}
	if err := store.Write(ctx, s.db, func(tx *gorm.DB) error {
		return audit(tx, actor, "export."+req.Kind, 0, detail)
	}); err != nil {
		return 0, err
	}
	if req.Kind == ExportMessages {
		return reports.ExportMessages(ctx, s.db, f, req.Format, req.WithText, w)
	}
	return reports.ExportCases(ctx, s.db, f, req.Format, time.Now(), w)
}
