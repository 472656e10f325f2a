// Package email is the email channel's driver: residents' mail is read
// from the council's mailbox over IMAP and the council's replies go out
// over SMTP, threaded in the residents' mail clients by In-Reply-To and
// References.
//
// Inbound, a poll opens the mailbox read-only, checks its UIDVALIDITY
// against the cursor ("UIDVALIDITY:UID:UNIXSECONDS", the last being the
// INTERNALDATE of the last mail taken) and fetches the messages after the
// cursor's UID, oldest first, at most PageSize of them and MaxPollBytes
// (always at least one), looking at the mailbox in bounded UID ranges,
// with BODY.PEEK[] so nothing is marked \Seen. When nothing is new and the
// server offers IDLE, the poll waits in IDLE (bounded by the poll's
// deadline and Settings.IdleFor) and fetches as soon as mail arrives. The
// first poll starts at the first message not \Seen that came in the last
// FirstPollWindow (the end of the mailbox when there is none). A changed
// UIDVALIDITY starts again from the first mail whose INTERNALDATE is at
// or after the cursor's: dedupe keys (the Message-ID with a hash of the
// sender, date and subject) keep the overlap from making anything twice.
//
// Auto-replies (RFC 3834 Auto-Submitted, X-Autoreply, Precedence bulk,
// list or auto_reply), delivery status notifications and mail from the
// council's own address are counted and skipped; they never make a case.
// Nothing a resident wrote (address, subject, text) is logged.
package email

import "time"

// Channel is the channel name, and the driver's.
const Channel = "email"

// MaxTextLength is the most characters one reply may hold: email has no
// real limit, so this only stops a reply nobody would read.
const MaxTextLength = 100_000

// PageSize is the most messages one poll takes, so a large mailbox
// drains over several polls (the runner polls again at once while polls
// bring messages).
const PageSize = 50

// MaxMessageSize is the most of one message that is read. A larger
// message still makes a case, saying it was too large to read, with its
// sender and subject, so the council can look at it in the mailbox.
const MaxMessageSize = 10 << 20

// DefaultPollEvery is the pause between two polls.
const DefaultPollEvery = 10 * time.Second

// DefaultIdleFor is the longest a poll waits in IDLE for new mail.
const DefaultIdleFor = 10 * time.Second
