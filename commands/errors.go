package commands

import "errors"

var (
	// ErrTooManyItems means a batch holds more than MaxBatchItems items.
	ErrTooManyItems = errors.New("too many items in batch")
	// ErrContention means the stream kept changing under the command: every
	// retry met a newer version. The command changed nothing; the caller
	// may try again.
	ErrContention = errors.New("stream kept changing; gave up after retries")
	// ErrUnknownChannel means a receipt names a channel Herald does not
	// deliver over.
	ErrUnknownChannel = errors.New("unknown channel")
)
