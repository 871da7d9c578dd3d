// Package sms delivers notifications as text messages through a
// Twilio-compatible REST API, and reads that provider's delivery receipts.
//
// Sending: one POST per attempt to
// {BaseURL}/2010-04-01/Accounts/{AccountSID}/Messages.json, form-encoded
// (To, From or MessagingServiceSid, Body, StatusCallback), authenticated with
// HTTP basic auth AccountSID:AuthToken. Body is the subject, a line break and
// the body (either alone when the other is empty); HTML is never sent. The
// JSON answer's "sid" becomes the ProviderMessageID, with Confirmed false:
// the provider taking the message is "sent", its status callback makes it
// "delivered" or "failed".
//
// Idempotency: the delivery's IdempotencyKey goes out in a header
// (Config.IdempotencyHeader, "Idempotency-Key" by default). Twilio-compatible
// providers differ here: some dedupe on such a header, Twilio's own Messages
// API ignores unknown headers, so against Twilio a retry after a lost answer
// can send a second SMS. The key is also carried in the StatusCallback URL
// (query parameter "delivery", the key "<notificationID>/<deliveryID>"
// escaped), so every receipt names its delivery even when the provider's sid
// was never recorded.
//
// Classification: the recipient must be an E.164 number ("+" and 2 to 15
// digits, no leading zero) or the attempt fails permanently without a
// request. 429 is retryable and Throttled, with the provider's Retry-After;
// 5xx and 408 are retryable (with Retry-After when given); connection errors
// and timeouts are retryable; 401 and 403 (credentials), 400 (Twilio error
// codes such as 21211 invalid number, 21614 not a mobile number, 21610
// unsubscribed recipient) and every other 4xx, and any 3xx (the client never
// follows redirects), are permanent. The reason quotes Twilio's JSON error
// (status, code, message) when there is one.
//
// Receipts: ParseStatusCallback verifies X-Twilio-Signature and maps the
// callback's MessageStatus to a domain.ReceiptOutcome: delivered is
// delivered, read is opened, undelivered, failed and canceled are failed;
// every other status (accepted, scheduled, queued, sending, sent, ...) is
// reported as not Final so the caller can acknowledge it and record nothing.
//
// What it must not do: put the auth token in any reason or error text (they
// are scrubbed even when the provider echoes it), follow redirects with the
// credentials, or outlive ctx: every request carries ctx, and Config.Timeout
// bounds it further. The provider's host (from BaseURL) is trusted
// configuration, so it is exempt from the outbound address guard of
// channel.NewHTTPClient; everything else about that client applies.
package sms
