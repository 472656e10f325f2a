package store

import (
	"encoding/json"
	"time"
)

// Team is a group of advisers that cases are routed to.
type Team struct {
	ID        int64
	Slug      string
	Name      string
	CreatedAt time.Time
	UpdatedAt time.Time
}

// ChannelAccount is one configured presence on a network.
type ChannelAccount struct {
	ID         int64
	Slug       string
	Channel    string
	Name       string
	ExternalID string
	TeamID     int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// User is an adviser, supervisor or admin; the teams they belong to are
// rows of user_teams.
type User struct {
	ID         int64
	Email      string
	Name       string
	Role       string
	DisabledAt *time.Time
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// APIToken is a bearer token; only the SHA-256 of its secret is stored.
type APIToken struct {
	ID         int64
	UserID     int64
	Name       string
	Prefix     string
	SecretHash []byte
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
	RevokedAt  *time.Time
	CreatedAt  time.Time
}

// Contact is a resident.
type Contact struct {
	ID          int64
	DisplayName string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// ContactIdentity is how a contact appears on one network.
type ContactIdentity struct {
	ID          int64
	ContactID   int64
	Channel     string
	ExternalID  string
	Handle      string
	DisplayName string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// Case is the unit of work.
type Case struct {
	ID                int64
	Reference         string `gorm:"->"`
	Status            string
	Channel           string
	ChannelAccountID  int64
	ContactID         int64
	ContactIdentityID int64
	TeamID            int64
	AssigneeID        *int64
	Priority          string
	ServiceCode       *string
	Subject           string
	FirstMessageAt    time.Time
	LastMessageAt     time.Time
	FirstResponseAt   *time.Time
	ResolvedAt        *time.Time
	ClosedAt          *time.Time
	ReopenedCount     int
	CreatedAt         time.Time
	UpdatedAt         time.Time
}

// Message is an inbound message, an outbound reply or an internal note.
type Message struct {
	ID                int64
	CaseID            int64
	ChannelAccountID  int64
	Direction         string
	Visibility        string
	Body              string
	DedupeKey         *string
	ExternalID        string
	ExternalIDs       Strings `gorm:"type:text[]"`
	ConversationID    string
	InReplyTo         string
	ContactIdentityID *int64
	AuthorUserID      *int64
	IdempotencyKey    *string
	DeliveryStatus    string
	FailureReason     string
	SendAttempts      int
	SentAt            *time.Time
	NetworkSentAt     *time.Time
	ReceivedAt        *time.Time
	Raw               json.RawMessage `gorm:"type:jsonb"`
	CreatedAt         time.Time
	CommittedAt       time.Time `gorm:"->"`
}

// OutboxEntry is a message for the bus, written in the same transaction as
// the change it announces.
type OutboxEntry struct {
	ID        int64
	Subject   string
	MsgID     string
	Payload   json.RawMessage `gorm:"type:jsonb"`
	CreatedAt time.Time
}

// TableName keeps gorm from pluralising the outbox table.
func (OutboxEntry) TableName() string { return "outbox" }

// AuditEvent records one read or change made by a user.
type AuditEvent struct {
	ID        int64
	UserID    *int64
	TokenID   *int64
	Action    string
	CaseID    *int64
	Detail    json.RawMessage `gorm:"type:jsonb"`
	CreatedAt time.Time
}
