package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/prometheus/client_golang/prometheus"

	"herald/adapters/channel"
	"herald/adapters/dingtalk"
	"herald/adapters/dispatcher"
	"herald/adapters/email"
	"herald/adapters/inapp"
	"herald/adapters/slack"
	"herald/adapters/sms"
	"herald/adapters/webhook"
	"herald/adapters/webpush"
	"herald/adapters/wecom"
	"herald/commands"
	"herald/commands/recipients"
	"herald/domain"
	"herald/infra/config"
	"herald/infra/eventstore"
	"herald/infra/logbus"
)

// dispatcherGroup labels the dispatcher's subscription of the log.
const dispatcherGroup = "dispatcher"

// newDispatcher builds the dispatcher with a sender for every channel whose
// provider is configured. Channels left out keep their deliveries planned,
// durably, until a process that has them runs; the log says which.
func newDispatcher(cfg config.Serve, events eventstore.Store, attempts *commands.AttemptHandler, backlog dispatcher.Backlog, renderer dispatcher.Renderer, people *recipients.Service, reg prometheus.Registerer, log *slog.Logger) (*dispatcher.Dispatcher, error) {
	senders, missing, err := channelSenders(cfg, people, log)
	if err != nil {
		return nil, err
	}
	if len(missing) > 0 {
		log.Warn("channels without a provider: their deliveries wait until one is configured", "channels", strings.Join(missing, ","))
	}
	chans := make(map[domain.Channel]dispatcher.ChannelConfig, len(senders))
	for ch, s := range senders {
		chans[ch] = dispatcher.ChannelConfig{Sender: s, Concurrency: channelConcurrency(cfg.Delivery, ch),
			AddressConcurrency: cfg.Delivery.EndpointConcurrency, Retry: dispatcher.RetryPolicy{
				MaxAttempts: cfg.Delivery.RetryAttempts, Initial: cfg.Delivery.RetryInitial, Max: cfg.Delivery.RetryMax,
			}}
	}
	return dispatcher.New(dispatcher.Config{
		Attempts: attempts,
		Backlog:  backlog,
		// Only what the intake reads: a message for each attempt and
		// outcome event was work for nothing.
		Follow:     followNotifications(events, dispatcherGroup, dispatcher.Types()...),
		Channels:   chans,
		Renderer:   renderer,
		Logger:     log,
		Registerer: reg,
	})
}

// Attempts at once per channel unless --delivery-concurrency sets them for
// all. An attempt spends most of its time waiting: on the log's group
// commit, twice (the attempt, then its outcome), and on the receiver. With
// 64 at once, e2e_webhook rate=max took 3.3 s from send to arrival at p50,
// the work queued behind those waits; with 256, 26 to 35 ms, at the same
// deliveries per second.
//
// Generic webhooks go to the customers' own receivers, many hosts, and
// in-app writes go nowhere, so they get more. Every other channel sends to
// one provider (an SMTP relay, an SMS account, hooks.slack.com, DingTalk's
// and WeCom's robot APIs, the few browser push services) and keeps under
// its limits on parallel sessions and requests.
//
// The HTTP client allows as many connections to one host as the busiest
// channel has attempts: an attempt that waited in the client for a free
// connection would spend its timeout there, unsent, and fail as a timeout
// (with 256 attempts over 64 connections and a 10 s timeout, a receiver
// answering in 2.5 s would see three attempts in four time out).
const (
	endpointConcurrency = 256
	providerConcurrency = 64
)

// channelConcurrency is how many attempts of channel ch run at once.
func channelConcurrency(d config.Delivery, ch domain.Channel) int {
	switch {
	case d.Concurrency > 0:
		return d.Concurrency
	case ch == domain.ChannelWebhook || ch == domain.ChannelInApp:
		return endpointConcurrency
	}
	return providerConcurrency
}

// followNotifications returns what the dispatcher and the scheduler follow
// the log with: a logbus subscription of the notification streams (of the
// given event types; none: all) after a position they recovered from a
// projection. The group only labels the subscription; they never resume
// from a saved cursor of their own.
func followNotifications(events eventstore.Store, group string, types ...string) func(context.Context, eventstore.Position) (message.Subscriber, error) {
	return func(ctx context.Context, after eventstore.Position) (message.Subscriber, error) {
		start := &logbus.MemoryCheckpoints{}
		if err := start.Save(ctx, group, "notification", after); err != nil {
			return nil, err
		}
		return logbus.NewSubscriber(events, logbus.SubscriberConfig{ConsumerGroup: group, Checkpoints: start, Types: types}, nil)
	}
}

// channelSenders builds the configured senders and names the channels left
// without one.
func channelSenders(cfg config.Serve, people *recipients.Service, log *slog.Logger) (map[domain.Channel]channel.Sender, []string, error) {
	d := cfg.Delivery
	// As many connections to a host as the busiest channel has attempts.
	conns := channelConcurrency(d, domain.ChannelWebhook)
	client := channel.NewHTTPClient(channel.HTTPOptions{AllowHosts: cfg.WebhookAllowHosts, MaxConnsPerHost: conns})
	out := map[domain.Channel]channel.Sender{domain.ChannelInApp: inapp.Sender{}}
	var errs []error
	add := func(ch domain.Channel, s channel.Sender, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", ch, err))
			return
		}
		out[ch] = s
	}
	wh, err := webhook.New(webhook.Config{Client: client, DefaultSecret: d.WebhookSecret})
	add(domain.ChannelWebhook, wh, err)
	sl, err := slack.New(slack.Config{Client: client})
	add(domain.ChannelSlack, sl, err)
	dt, err := dingtalk.New(dingtalk.Config{Client: client})
	add(domain.ChannelDingTalk, dt, err)
	wc, err := wecom.New(wecom.Config{Client: client})
	add(domain.ChannelWeCom, wc, err)

	if d.SMTPHost != "" {
		em, err := email.New(email.Config{
			Host: d.SMTPHost, Port: d.SMTPPort, TLS: email.TLSMode(d.SMTPTLS),
			Username: d.SMTPUser, Password: d.SMTPPassword, From: d.SMTPFrom,
		})
		add(domain.ChannelEmail, em, err)
	}
	if d.SMSAccountSID != "" {
		callback := ""
		if d.PublicURL != "" {
			callback = strings.TrimSuffix(d.PublicURL, "/") + "/v1/receipts/sms"
		}
		sm, err := sms.New(sms.Config{
			BaseURL: d.SMSBaseURL, AccountSID: d.SMSAccountSID, AuthToken: d.SMSAuthToken,
			From: d.SMSFrom, StatusCallbackURL: callback,
		})
		add(domain.ChannelSMS, sm, err)
	}
	pub, priv, err := vapidKeys(cfg.DataDir)
	if err != nil {
		errs = append(errs, fmt.Errorf("webpush: %w", err))
	} else {
		// Browsers' subscriptions are kept on the recipient's profile; a
		// push service's 404/410 records that one expired.
		wp, err := webpush.New(webpush.Config{
			Subscriptions: pushSubscriptions{people}, VAPIDPublicKey: pub, VAPIDPrivateKey: priv,
			Subject: d.VAPIDSubject, HTTPClient: client,
			OnExpired: func(ctx context.Context, recipient string, s webpush.Subscription) {
				if err := people.MarkSubscriptionExpired(ctx, recipient, s.Endpoint); err != nil {
					log.Warn("web push subscription expiry not recorded", "recipient", recipient, "err", err)
				}
			},
		})
		add(domain.ChannelWebPush, wp, err)
	}
	var missing []string
	for _, ch := range domain.AllChannels() {
		if out[ch] == nil {
			missing = append(missing, string(ch))
		}
	}
	return out, missing, errors.Join(errs...)
}

// pushSubscriptions reads web push subscriptions from recipient profiles.
type pushSubscriptions struct{ people *recipients.Service }

func (p pushSubscriptions) Subscriptions(ctx context.Context, recipientID string) ([]webpush.Subscription, error) {
	subs, err := p.people.WebPushSubscriptions(ctx, recipientID)
	if err != nil {
		return nil, err
	}
	out := make([]webpush.Subscription, len(subs))
	for i, s := range subs {
		out[i] = webpush.Subscription{Endpoint: s.Endpoint, P256dh: s.P256dh, Auth: s.Auth}
	}
	return out, nil
}

// unsubscribeSecret returns the key that signs unsubscribe links, created
// on first start and kept (mode 0600) in the data folder: the processes
// sharing it agree, and links keep working across restarts.
func unsubscribeSecret(dataDir string) ([]byte, error) {
	path := filepath.Join(dataDir, "unsubscribe.key")
	b, err := createOnce(path, func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	})
	if err != nil {
		return nil, err
	}
	if len(b) < recipients.MinUnsubscribeSecretLen {
		return nil, fmt.Errorf("read %s: shorter than %d bytes", path, recipients.MinUnsubscribeSecretLen)
	}
	return b, nil
}

// vapidKeys returns the server's web push key pair, created on first start
// and kept (mode 0600) in the data folder, so browsers' subscriptions stay
// valid across restarts and the processes sharing the folder agree: the api
// role hands the public key to browsers, the deliver role signs with the
// private one.
func vapidKeys(dataDir string) (public, private string, err error) {
	path := filepath.Join(dataDir, "vapid.json")
	var k struct{ Public, Private string }
	b, err := createOnce(path, func() ([]byte, error) {
		var err error
		if k.Public, k.Private, err = webpush.GenerateVAPIDKeys(); err != nil {
			return nil, err
		}
		return json.Marshal(k)
	})
	if err != nil {
		return "", "", err
	}
	if err := json.Unmarshal(b, &k); err != nil || k.Public == "" || k.Private == "" {
		return "", "", fmt.Errorf("read %s: not a key pair", path)
	}
	return k.Public, k.Private, nil
}

// createOnce returns the contents of the file at path, creating it first
// (mode 0600, and its folder) with what generate returns when there is
// none. Processes starting together on a fresh data folder all end up with
// the same contents: each writes its own whole under a temporary name and
// hard-links it into place, which succeeds for one only; the others read
// the winner's. No reader ever sees a partly written file.
func createOnce(path string, generate func() ([]byte, error)) ([]byte, error) {
	b, err := os.ReadFile(path)
	if !errors.Is(err, os.ErrNotExist) {
		return b, err
	}
	if b, err = generate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, os.ErrExist) {
		return os.ReadFile(path)
	} else if err != nil {
		return nil, err
	}
	return b, nil
}
