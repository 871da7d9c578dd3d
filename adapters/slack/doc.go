// Package slack delivers notifications to Slack incoming webhooks: one JSON
// POST of {"text": ...} in Slack's mrkdwn per attempt, the subject in bold
// on the first line and the body below it.
//
// Slack answers 200 "ok" when the message is posted, which Herald counts as
// a confirmed delivery. The package only classifies answers into
// channel.Failure values: it does not retry or record events, it never
// follows redirects, and it calls out only through the SSRF-guarded client
// it is given. A Slack webhook URL is itself the credential (its path), so
// Reasons and errors name only the scheme and host.
package slack
