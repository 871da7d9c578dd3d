// Package email delivers notifications by SMTP submission: one MIME message
// per attempt, to one recipient, through one relay configured by Config.
//
// What it does:
//
//   - Builds a proper message: From, To, Subject (RFC 2047 encoded words
//     when not ASCII), Date, Message-ID, MIME-Version, Auto-Submitted and
//     the X-Herald-Notification / X-Herald-Delivery headers; a
//     multipart/alternative body with a text/plain and a text/html part when
//     the message has HTML, a single text/plain part otherwise (a single
//     text/html part when there is HTML but no text). Every part is UTF-8 in
//     quoted-printable, so the message is 7-bit clean whatever the relay
//     supports.
//   - Makes the Message-ID a function of the delivery only:
//     "<" + IdempotencyKey + "@" + MessageIDDomain + ">". A retried attempt
//     carries the same id, so a receiver (or the relay) can drop the
//     duplicate of an at-least-once send, and a bounce or receipt can be
//     matched back. Characters of the key that may not stand in a Message-ID
//     are written as "=XX" (hex), which keeps the mapping one-to-one.
//   - Reports that Message-ID, angle brackets included, as the
//     ProviderMessageID, with Confirmed false: the relay taking the message
//     is "sent", a later receipt makes it "delivered". The relay's final 250
//     reply (which often names a queue id) is not parsed: its form differs
//     between servers, and bounces carry the Message-ID, not the queue id.
//   - Classifies failures for the dispatcher: a 4xx reply (421, 450, 451,
//     452 ...), a connection error, a timeout or a cancelled context is
//     retryable; a 5xx reply (550 unknown mailbox, 552, 554 ...) is
//     permanent, and so are conditions no retry can change: a relay that
//     does not offer STARTTLS when TLS is required, one that does not offer
//     AUTH PLAIN when credentials are configured, a certificate that does not
//     verify, rejected credentials (535), an address that does not parse.
//
// What it must not do:
//
//   - Send in clear when TLS is required: in "starttls" mode a relay that
//     does not offer STARTTLS gets no MAIL command; credentials are only ever
//     sent over TLS (Validate refuses a username in "none" mode, which is
//     itself limited to loopback relays, for tests and local sinks).
//   - Put credentials anywhere: a Failure's Reason and error text are
//     scrubbed of the password (and of the AUTH PLAIN blob that carries it),
//     even when a relay echoes them back.
//   - Outlive its context: the whole exchange runs under one deadline (the
//     earlier of ctx's and Config.Timeout), and cancelling ctx closes the
//     connection at once.
//
// Connections: each Send opens its own connection and closes it with QUIT.
// There is no pool: a submission relay is cheap to reach, one connection per
// message keeps a broken session from poisoning the next message, and Send
// is safe for concurrent use because it shares nothing mutable.
//
// Library choice: the client is the standard library's net/smtp, not
// github.com/emersion/go-smtp's client (go-smtp serves as the real SMTP
// server in the tests). net/smtp exports StartTLS, so the configured HELO
// name is used both before and after TLS, where go-smtp's client greets as
// "localhost" before STARTTLS; and net/smtp never touches the connection's
// deadline, so one deadline set from ctx bounds every command, where go-smtp
// resets it after each command. Replies arrive as *textproto.Error with the
// numeric code the classification needs; the PLAIN mechanism of net/smtp
// refuses by itself to send credentials over a clear connection to anything
// but localhost, a second guard behind this package's own.
//
// At least once: when the connection breaks after the message's final dot
// but before the relay's 250, the attempt is reported retryable and the
// next one may deliver a second copy; it carries the same Message-ID.
package email
