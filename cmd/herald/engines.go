package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"herald/adapters/dispatcher"
	"herald/adapters/scheduler"
	"herald/infra/config"
	"herald/infra/eventstore"
	"herald/infra/eventstore/esdb"
	"herald/infra/eventstore/sqlite"
	"herald/infra/viewstore/cassandra"
	viewsqlite "herald/infra/viewstore/sqlite"
	"herald/projections"
)

// viewEngine is what every role needs of a view store: the projections'
// write side and the read API's views.
type viewEngine interface {
	projections.Store
	projections.NotificationView
	projections.Search
	projections.Inbox
	projections.Analytics
}

// openEventStore opens the event log cfg names.
func openEventStore(ctx context.Context, cfg config.Serve, log *slog.Logger) (eventstore.Store, error) {
	if path, ok := strings.CutPrefix(cfg.EventStore, "sqlite:"); ok {
		s, err := sqlite.Open(ctx, path, sqlite.Options{})
		if err != nil {
			return nil, err
		}
		log.Info("event log open", "engine", "sqlite", "path", path)
		return s, nil
	}
	s, err := esdb.Open(ctx, cfg.EventStore)
	if err != nil {
		return nil, err
	}
	log.Info("event log open", "engine", "eventstoredb")
	return s, nil
}

// openViews opens the view store cfg names, folding the states it does not
// hold from history (the event log); close releases it.
func openViews(ctx context.Context, cfg config.Serve, history projections.History, log *slog.Logger) (views viewEngine, close func() error, err error) {
	if path, ok := strings.CutPrefix(cfg.Views, "sqlite:"); ok {
		v, err := viewsqlite.Open(ctx, path, viewsqlite.Options{History: history})
		if err != nil {
			return nil, nil, err
		}
		log.Info("view store open", "engine", "sqlite", "path", path)
		return v, v.Close, nil
	}
	hosts, keyspace, err := config.ParseCassandraURL(cfg.Views)
	if err != nil {
		return nil, nil, err
	}
	cluster := cassandra.NewCluster(hosts...)
	cluster.ConnectTimeout = 10 * time.Second
	session, err := cluster.CreateSession()
	if err != nil {
		return nil, nil, fmt.Errorf("connect to cassandra %s: %w", strings.Join(hosts, ","), err)
	}
	if cfg.Migrate {
		if err := cassandra.Migrate(ctx, session, cassandra.MigrateOptions{Keyspace: keyspace}); err != nil {
			session.Close()
			return nil, nil, err
		}
	}
	v, err := cassandra.Open(ctx, session, cassandra.Options{Keyspace: keyspace, History: history})
	if err != nil {
		session.Close()
		return nil, nil, err
	}
	log.Info("view store open", "engine", "cassandra", "hosts", strings.Join(hosts, ","), "keyspace", keyspace)
	return v, func() error { session.Close(); return nil }, nil
}

// deliveryBacklog and scheduledBacklog are the extra views the deliver and
// schedule roles recover from; not every engine has them yet.
func deliveryBacklog(v viewEngine) (dispatcher.Backlog, error) {
	b, ok := v.(dispatcher.Backlog)
	if !ok {
		return nil, errors.New("this view store has no delivery backlog view (the deliver role needs sqlite views for now)")
	}
	return b, nil
}

func scheduledBacklog(v viewEngine) (scheduler.Backlog, error) {
	b, ok := v.(scheduler.Backlog)
	if !ok {
		return nil, errors.New("this view store has no scheduled-notifications view (the schedule role needs sqlite views for now)")
	}
	return b, nil
}

// migrateOnly is the History of a view store opened to migrate its schema,
// which applies no events.
type migrateOnly struct{}

func (migrateOnly) ReadStream(context.Context, string, uint64, int) ([]eventstore.RecordedEvent, error) {
	return nil, errors.New("herald migrate applies no events")
}

// migrate creates or updates the configured view store's schema and exits.
func migrate(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	cfg, err := config.ParseServe(args, getenv)
	if err != nil {
		return err
	}
	cfg.Migrate = true
	log := newLogger(stderr, cfg.LogLevel)
	_, closeViews, err := openViews(ctx, cfg, migrateOnly{}, log)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, "view store schema is current:", cfg.Views)
	return closeViews()
}
