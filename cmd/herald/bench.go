package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"herald/infra/benchmark"
	"herald/infra/eventstore/sqlite"
)

// bench measures the embedded event log on this machine and prints one line
// per case in the `bench NAME key=value ...` form. Each case runs --runs
// times on a fresh log; the line printed is the run with the median
// throughput, the others go to stderr.
func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("dir", "", "folder for the benchmark's files (default: a new temporary folder)")
	runs := fs.Int("runs", 3, "runs per case; the median is reported")
	events := fs.Int("events", 200000, "events appended per append case")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *runs < 1 || *events < 64 {
		return fmt.Errorf("bench: --runs must be >= 1 and --events >= 64")
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "herald-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*dir = d
	}
	for _, writers := range []int{16, 64} {
		var figs []benchmark.AppendFigures
		for r := 0; r < *runs; r++ {
			f, err := benchAppend(ctx, filepath.Join(*dir, fmt.Sprintf("append-%d-%d.db", writers, r)), writers, *events)
			if err != nil {
				return err
			}
			fmt.Fprintln(stderr, "run", r+1, f)
			figs = append(figs, f)
		}
		sort.Slice(figs, func(i, j int) bool { return figs[i].EventsPerSec < figs[j].EventsPerSec })
		fmt.Fprintln(stdout, figs[len(figs)/2])
	}
	var reads []benchmark.ReadFigures
	for r := 0; r < *runs; r++ {
		f, err := benchRead(ctx, filepath.Join(*dir, fmt.Sprintf("append-64-%d.db", r)))
		if err != nil {
			return err
		}
		fmt.Fprintln(stderr, "run", r+1, f, "events", f.Events)
		reads = append(reads, f)
	}
	sort.Slice(reads, func(i, j int) bool { return reads[i].EventsPerSec < reads[j].EventsPerSec })
	fmt.Fprintln(stdout, reads[len(reads)/2])
	return nil
}

func benchAppend(ctx context.Context, path string, writers, events int) (benchmark.AppendFigures, error) {
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return benchmark.AppendFigures{}, err
	}
	defer s.Close()
	return benchmark.Append(ctx, s, writers, 1, events)
}

func benchRead(ctx context.Context, path string) (benchmark.ReadFigures, error) {
	s, err := sqlite.Open(ctx, path, sqlite.Options{})
	if err != nil {
		return benchmark.ReadFigures{}, err
	}
	defer s.Close()
	return benchmark.ReadAll(ctx, s)
}
