// Package bluesky is the driver of Bluesky (AT Protocol) accounts. Bluesky
// has no webhooks: the council's account is polled, with
// app.bsky.notification.listNotifications, for the mentions of it and the
// replies to its posts, from a cursor the poll runner commits once the
// messages are stored. Each becomes a public message whose network id is
// the post's at:// URI; its conversation is the thread's root post and it
// answers its parent post.
//
// Replies are posts made with com.atproto.repo.createRecord, answering
// the resident's post with the strong references (uri and cid) of the
// thread's root and of the post answered, both read with
// app.bsky.feed.getPosts when the reply goes out. A post holds 300
// graphemes; a longer reply is a numbered thread, each part answering the
// one before under the same root. The account signs in with an app
// password (com.atproto.server.createSession) and refreshes its session
// when Bluesky says the access token expired; a refused password marks
// the account unhealthy, and a 429's ratelimit-reset is honoured.
//
// Direct messages come from Bluesky's chat service, through the account's
// service with the atproto-proxy header: chat.bsky.convo.getLog from its
// own cursor, kept in the same stored cursor. Each is a private message
// whose network id is the message id and whose conversation is the
// convoId; the account's own messages are skipped. A private reply is
// chat.bsky.convo.sendMessage in the resident's conversation
// (getConvoForMembers), 1,000 graphemes a message, longer ones as
// numbered messages. Direct messages need an app password made with
// "Allow access to your direct messages": without it the chat service
// refuses, mentions and replies are polled all the same, the poller logs
// it once, and private replies fail with that reason; the account stays
// healthy, since its posts go out.
//
// Mention facets are not added to replies. blueskyfake is its fake API
// and simulation.
package bluesky

// Channel is the channel the driver serves.
const Channel = "bluesky"

// MaxPostLength is the most graphemes one post holds.
const MaxPostLength = 300

// DefaultMaxParts caps the posts one reply is split into, unless the
// account's max_parts says otherwise.
const DefaultMaxParts = 10

// DefaultBaseURL is the service accounts on Bluesky's own hosting sign in
// at.
const DefaultBaseURL = "https://bsky.social"

// PostCollection is the collection of posts in a repository.
const PostCollection = "app.bsky.feed.post"
