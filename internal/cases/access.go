package cases

import (
	"context"
	"errors"
	"slices"
)

// Roles a user can have.
const (
	RoleAdviser    = "adviser"
	RoleSupervisor = "supervisor"
	RoleAdmin      = "admin"
)

// An Action is something a user does to cases.
type Action string

// Actions.
const (
	ActRead   Action = "read"   // list cases and see a case with its conversation
	ActReply  Action = "reply"  // answer the resident
	ActNote   Action = "note"   // add an internal note
	ActStatus Action = "status" // change a case's status
	// ActAssignSelf is taking an unassigned case, or giving back one's own.
	ActAssignSelf Action = "assign_self"
	// ActAssignTeam is assigning or unassigning anyone who belongs to the
	// case's team, including taking a case from a colleague.
	ActAssignTeam Action = "assign_team"
	ActMove       Action = "move" // move a case to another team
	// ActPrioritise is changing a case's priority, which moves its SLA
	// deadlines: a supervisor's call, not an adviser's.
	ActPrioritise Action = "prioritise"
	// ActReadRules is reading the routing rules, SLA policies and
	// calendars in force.
	ActReadRules Action = "read_rules"
	// ActLinkContacts is linking a resident's identities into one contact,
	// and unlinking one again, on contacts the user sees.
	ActLinkContacts Action = "link_contacts"
	// ActReport is reading the supervisors' figures (the live dashboard)
	// of the teams in the user's scope.
	ActReport Action = "report"
	// ActExport is exporting the rows behind the supervisors' figures: a
	// row per case and a row per message, without message text.
	ActExport Action = "export"
	// ActExportText is exporting messages with what was written in them.
	ActExportText Action = "export_text"
)

// grants is what each role may do. Advisers and supervisors may do it only
// to the cases of the teams they belong to; admins to every case.
var grants = map[string][]Action{
	RoleAdviser: {ActRead, ActReply, ActNote, ActStatus, ActAssignSelf, ActLinkContacts},
	RoleSupervisor: {ActRead, ActReply, ActNote, ActStatus, ActAssignSelf, ActAssignTeam, ActMove, ActPrioritise, ActReadRules, ActLinkContacts,
		ActReport, ActExport},
	RoleAdmin: {ActRead, ActReply, ActNote, ActStatus, ActAssignSelf, ActAssignTeam, ActMove, ActPrioritise, ActReadRules, ActLinkContacts,
		ActReport, ActExport, ActExportText},
}

// Allowed says whether role may do act (to cases in its scope).
func Allowed(role string, act Action) bool { return slices.Contains(grants[role], act) }

// EveryTeam says whether role works every team's cases, not only those of
// the teams the user belongs to.
func EveryTeam(role string) bool { return role == RoleAdmin }

// Can says whether the actor's role allows act.
func (a Actor) Can(act Action) bool { return Allowed(a.Role, act) }

// Sees says whether the actor works the cases of the team.
func (a Actor) Sees(teamID int64) bool {
	return EveryTeam(a.Role) || slices.Contains(a.TeamIDs, teamID)
}

// ErrForbidden is an action the actor's role does not allow on a case they
// can see.
var ErrForbidden = errors.New("your role may not do this")

// denied is a refused attempt on a case: another team's case, answered as
// if it did not exist (ErrNotFound), or an action the role does not allow
// (ErrForbidden). Every one is audited.
type denied struct {
	err    error
	caseID int64
	action Action
}

func (d *denied) Error() string { return d.err.Error() }
func (d *denied) Unwrap() error { return d.err }

// check refuses act on a case of teamID unless the actor may do it there.
func check(actor Actor, caseID, teamID int64, act Action) error {
	if !actor.Sees(teamID) {
		return &denied{err: ErrNotFound, caseID: caseID, action: act}
	}
	if !actor.Can(act) {
		return &denied{err: ErrForbidden, caseID: caseID, action: act}
	}
	return nil
}

// auditDenied records a refused attempt, outside the transaction that
// refused it (which rolled back), and returns err unchanged.
func (s *Service) auditDenied(ctx context.Context, actor Actor, err error) error {
	var d *denied
	if !errors.As(err, &d) {
		return err
	}
	reason := "role"
	if errors.Is(d.err, ErrNotFound) {
		reason = "other_team"
	}
	if aerr := audit(s.ctxDB(ctx), actor, "case.access_denied", d.caseID, map[string]any{
		"action": d.action, "reason": reason,
	}); aerr != nil {
		return aerr
	}
	return err
}
