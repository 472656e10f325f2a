package xfake

import (
	"encoding/json"
	"strconv"
	"time"
)

// User is an X account as webhook deliveries describe it.
type User struct {
	ID, Handle, Name string
}

// Webhook deliveries, in the shapes X sends them to the account's webhook,
// for tests, benchmarks and the network simulator.

// Mention is an Account Activity tweet_create_events delivery to council:
// a post from a resident that mentions the council, or answers inReplyTo
// when it is set.
func Mention(council User, id string, from User, text, inReplyTo string, at time.Time) []byte {
	ev := map[string]any{
		"id_str":     id,
		"created_at": at.UTC().Format(time.RubyDate),
		"text":       text,
		"truncated":  false,
		"user":       map[string]any{"id_str": from.ID, "screen_name": from.Handle, "name": from.Name},
		"entities": map[string]any{"user_mentions": []any{
			map[string]any{"id_str": council.ID, "screen_name": council.Handle, "name": council.Name},
		}},
	}
	if inReplyTo != "" {
		ev["in_reply_to_status_id_str"] = inReplyTo
		ev["in_reply_to_user_id_str"] = council.ID
	}
	return marshal(map[string]any{"for_user_id": council.ID, "tweet_create_events": []any{ev}})
}

// DirectMessage is an Account Activity direct_message_events delivery of a
// resident's direct message to council.
func DirectMessage(council User, id string, from User, text string, at time.Time) []byte {
	return marshal(map[string]any{
		"for_user_id": council.ID,
		"direct_message_events": []any{map[string]any{
			"type":              "message_create",
			"id":                id,
			"created_timestamp": strconv.FormatInt(at.UnixMilli(), 10),
			"message_create": map[string]any{
				"target":       map[string]any{"recipient_id": council.ID},
				"sender_id":    from.ID,
				"message_data": map[string]any{"text": text},
			},
		}},
		"users": map[string]any{
			from.ID:    map[string]any{"id": from.ID, "name": from.Name, "screen_name": from.Handle},
			council.ID: map[string]any{"id": council.ID, "name": council.Name, "screen_name": council.Handle},
		},
	})
}

// ActivityMention is an X Activity API post.mention.create delivery of a
// resident's post that starts a conversation.
func ActivityMention(council User, eventID, id string, from User, text string, at time.Time) []byte {
	return marshal(map[string]any{"data": map[string]any{
		"event_uuid": eventID,
		"event_type": "post.mention.create",
		"tag":        "mentions",
		"filter":     map[string]any{"user_id": council.ID},
		"payload": map[string]any{
			"id":                     id,
			"text":                   text,
			"author_id":              from.ID,
			"conversation_id":        id,
			"created_at":             at.UTC().Format("2006-01-02T15:04:05.000Z"),
			"lang":                   "en",
			"edit_history_tweet_ids": []string{id},
		},
		"includes": map[string]any{"users": []any{
			map[string]any{"id": from.ID, "name": from.Name, "username": from.Handle},
		}},
	}})
}

// marshal encodes a delivery built from maps, strings and slices, which
// cannot fail.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("xfake: encoding a delivery: " + err.Error())
	}
	return b
}
