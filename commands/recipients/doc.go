// Package recipients is the write side and the HTTP surface of recipients:
// their profiles (addresses per channel, locale, time zone), their
// notification preferences (opt-outs, quiet hours, frequency caps, critical
// categories), their web push subscriptions, and the signed unsubscribe
// links that work without an API key. It also gives the send path and the
// scheduler what planning needs: Service.Profile, to feed
// domain.PlanForRecipient, and SendCounter, to count recent sends for
// frequency caps.
//
// A recipient is the event-sourced domain.RecipientProfile aggregate in the
// stream "recipient-<id>". Commands load the stream, decide with
// domain.DecideRecipient and append with the version they decided on,
// retrying on a conflict, like the template commands do. Reads load the
// stream directly, so they always see the latest append.
//
// The package must not: write anything but recipient streams, read
// configuration or the environment, import the notification commands or
// the adapters (both may come to depend on this one), or keep state other
// than SendCounter's window of recent sends.
package recipients
