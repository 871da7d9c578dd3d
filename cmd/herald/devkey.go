package main

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strings"

	"herald/infra/config"
)

// devKeyFile holds the development key under the data folder, so that it
// stays the same across restarts of `make run`.
const devKeyFile = "dev-api-key"

// developmentKey returns the key to use when none was configured: read from
// the data folder, or created there on first start. It is only offered on a
// loopback address; a server reachable from elsewhere must be given keys.
func developmentKey(cfg config.Serve) (config.APIKey, string, bool, error) {
	host, _, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		return config.APIKey{}, "", false, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return config.APIKey{}, "", false, fmt.Errorf("no API keys configured and %s is not a loopback address: give --api-key or HERALD_API_KEYS", cfg.Addr)
	}
	path := filepath.Join(cfg.DataDir, devKeyFile)
	created := false
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		var raw [24]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return config.APIKey{}, "", false, err
		}
		b = []byte("hrld_dev_" + hex.EncodeToString(raw[:]))
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return config.APIKey{}, "", false, err
		}
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return config.APIKey{}, "", false, err
		}
		created = true
	} else if err != nil {
		return config.APIKey{}, "", false, err
	}
	secret := strings.TrimSpace(string(b))
	k, err := config.ParseAPIKey("dev:" + secret + ":send+read+admin")
	if err != nil {
		return config.APIKey{}, "", false, fmt.Errorf("%s: %w", path, err)
	}
	return k, secret, created, nil
}
