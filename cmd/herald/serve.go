package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"herald/infra/config"
	"herald/infra/eventstore/sqlite"
	"herald/infra/httpserver"
	"herald/web"
)

// serve runs every role in one process on the embedded engines until ctx
// ends (SIGINT/SIGTERM), then shuts down in order: stop intake, let requests
// in progress finish, close the event log. started, if not nil, gets the
// listening address.
func serve(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, started chan<- net.Addr) error {
	cfg, err := config.ParseServe(args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(stderr, cfg.LogLevel)

	events, err := sqlite.Open(ctx, filepath.Join(cfg.DataDir, "events.db"), sqlite.Options{})
	if err != nil {
		return err
	}
	log.Info("event log open", "path", filepath.Join(cfg.DataDir, "events.db"))

	srv := httpserver.New(log, httpserver.Check{
		Name: "eventstore",
		Probe: func(ctx context.Context) error {
			_, err := events.Head(ctx)
			return err
		},
	})
	srv.Router().Handle("/*", web.Handler())
	serveErr := srv.Serve(ctx, cfg.Addr, cfg.ShutdownTimeout, started)
	closeErr := events.Close()
	if err := errors.Join(serveErr, closeErr); err != nil {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		panic(fmt.Sprintf("log level %q passed validation: %v", level, err))
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}
