// Command herald is the notification ledger's one binary. Its subcommands
// choose the role: `serve` runs everything in one process (on the embedded
// engines unless told otherwise); `api`, `project`, `deliver` and
// `schedule` run one role each, so each can be scaled on its own; `migrate`
// prepares a view store; `bench` measures this machine.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
)

// defaultGCPercent trades memory for CPU: Herald's hot paths allocate many
// short-lived buffers, and on a two-core machine the collector otherwise
// takes a large share of one core. GOGC, when set, wins.
const defaultGCPercent = 400

// smallMachineProcs: below this many procs, Herald runs twice as many Ps
// as the runtime would. A goroutine whose socket became readable waits for
// a P with an empty run queue to poll the network, or for the runtime's
// monitor, which polls every 10 ms; with two Ps kept busy by projections
// and SQLite calls, a loopback webhook round trip took 27 ms on average in
// e2e_webhook (11 ms with four Ps). Measured on two cores, two runs each,
// four Ps against two: api_send 3,909 and 3,698 against 3,289 and 3,121
// requests/s, e2e_webhook 1,596 and 1,506 against 1,221 and 1,217
// deliveries/s, api_batch +6%, inapp_push 8% slower. GOMAXPROCS, when set,
// wins.
const smallMachineProcs = 8

func main() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if n := runtime.GOMAXPROCS(0); os.Getenv("GOMAXPROCS") == "" && n < smallMachineProcs {
		runtime.GOMAXPROCS(2 * n)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	if err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "herald:", err)
		}
		os.Exit(2)
	}
}

const usage = `usage: herald <command> [flags]

commands:
  serve     run every role in one process (embedded engines by default)
  api       the HTTP API and live feed only
  project   the projection runner only
  deliver   the dispatcher only
  schedule  releasing scheduled notifications only
  migrate   create or update the view store's schema, then exit
  bench     measure the embedded engines on this machine
  help      show this text

Every command but bench takes the same flags (--eventstore, --views, ...).

Run 'herald <command> -h' for a command's flags.
`

// run is main without the process: it returns instead of exiting, so tests
// can drive it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) error {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return errors.New("no command given")
	}
	switch args[0] {
	case "serve":
		return serve(ctx, args[1:], stdout, stderr, getenv, nil)
	case "api":
		return runRoles(ctx, roleAPI, args[1:], stdout, stderr, getenv, nil)
	case "project":
		return runRoles(ctx, roleProject, args[1:], stdout, stderr, getenv, nil)
	case "deliver":
		return runRoles(ctx, roleDeliver, args[1:], stdout, stderr, getenv, nil)
	case "schedule":
		return runRoles(ctx, roleSchedule, args[1:], stdout, stderr, getenv, nil)
	case "migrate":
		return migrate(ctx, args[1:], stdout, stderr, getenv)
	case "bench":
		return bench(ctx, args[1:], stdout, stderr)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	default:
		fmt.Fprint(stderr, usage)
		return fmt.Errorf("unknown command %q", args[0])
	}
}
