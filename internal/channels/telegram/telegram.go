// Package telegram is the driver of Telegram bots. A council's bot
// receives residents' messages either by webhook, POST
// /webhooks/telegram/<account> with the secret token set by setWebhook in
// X-Telegram-Bot-Api-Secret-Token, or, for installs without a public
// address, by long polling getUpdates from the offset the poll runner
// commits with the messages it produced.
//
// A message in a private chat with the bot is a private message; a group
// message that mentions the bot or replies to one of its messages is a
// public one, and other group messages are ignored. Telegram numbers
// messages per chat, so a message's network id is "<chat id>:<message
// id>" and its dedupe key is made of both. An edited message updates the
// stored one. Replies go out with sendMessage, answering the resident's
// message with reply_parameters, in numbered parts of 4,096 characters;
// a 429's retry_after is honoured, a refused bot token (401) marks the
// account unhealthy, and a block by the resident (403) is permanent.
// telegramfake is its fake Bot API and simulation.
package telegram

// Channel is the channel the driver serves.
const Channel = "telegram"

// MaxMessageLength is the most characters (code points) one message
// holds.
const MaxMessageLength = 4096
