// Package adapters will hold the dispatcher and, one package each, the
// channel adapters (webhook, email, sms, slack, dingtalk, wecom, webpush,
// inapp). They record every attempt and outcome through commands, never by
// writing events or views directly. Nothing here yet: delivery is issue 4.
package adapters
