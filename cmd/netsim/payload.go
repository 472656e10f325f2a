package main

import (
	"encoding/json"
	"strconv"
	"time"
)

// idBase is added to the microseconds since the Unix epoch to make the first
// id of a run, so ids keep increasing from one run to the next and stay
// below the fake X API's own ids (19 digits starting 19…).
const idBase = 1800000000000000000

// ids hands out increasing post and direct message ids, like X's snowflakes.
type ids struct{ last uint64 }

func newIDs(now time.Time) *ids {
	return &ids{last: idBase + uint64(now.UnixMicro())}
}

func (s *ids) next() string {
	s.last++
	return strconv.FormatUint(s.last, 10)
}

// Payload builders, in the shapes X delivers to webhooks.

// mentionPayload is an Account Activity tweet_create_events delivery: a
// post that mentions the council, or answers inReplyTo when it is set.
func mentionPayload(councilID, id string, from resident, text, inReplyTo string, at time.Time) []byte {
	ev := map[string]any{
		"id_str":     id,
		"created_at": at.UTC().Format(time.RubyDate),
		"text":       text,
		"truncated":  false,
		"user":       map[string]any{"id_str": from.ID, "screen_name": from.Handle, "name": from.Name},
		"entities": map[string]any{"user_mentions": []any{
			map[string]any{"id_str": councilID, "screen_name": councilHandle, "name": councilName},
		}},
	}
	if inReplyTo != "" {
		ev["in_reply_to_status_id_str"] = inReplyTo
		ev["in_reply_to_user_id_str"] = councilID
	}
	return marshal(map[string]any{"for_user_id": councilID, "tweet_create_events": []any{ev}})
}

// dmPayload is an Account Activity direct_message_events delivery.
func dmPayload(councilID, id string, from resident, text string, at time.Time) []byte {
	return marshal(map[string]any{
		"for_user_id": councilID,
		"direct_message_events": []any{map[string]any{
			"type":              "message_create",
			"id":                id,
			"created_timestamp": strconv.FormatInt(at.UnixMilli(), 10),
			"message_create": map[string]any{
				"target":       map[string]any{"recipient_id": councilID},
				"sender_id":    from.ID,
				"message_data": map[string]any{"text": text},
			},
		}},
		"users": map[string]any{
			from.ID:   map[string]any{"id": from.ID, "name": from.Name, "screen_name": from.Handle},
			councilID: map[string]any{"id": councilID, "name": councilName, "screen_name": councilHandle},
		},
	})
}

// activityMentionPayload is an X Activity API post.mention.create delivery
// of a post that starts a conversation.
func activityMentionPayload(councilID, eventID, id string, from resident, text string, at time.Time) []byte {
	return marshal(map[string]any{"data": map[string]any{
		"event_uuid": eventID,
		"event_type": "post.mention.create",
		"tag":        "mentions",
		"filter":     map[string]any{"user_id": councilID},
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

// marshal encodes a payload built from maps, strings and slices, which
// cannot fail.
func marshal(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("netsim: encoding a payload: " + err.Error())
	}
	return b
}
