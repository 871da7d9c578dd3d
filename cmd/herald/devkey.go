package main

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"path/filepath"
	"strings"

	"herald/infra/config"
)

// devKeyFile holds the development key under the data folder, so that it
// stays the same across restarts of `make run`.
const devKeyFile = "dev-api-key"

// developmentKey returns the key to use when none was configured: read from
// the data folder, or created there (mode 0600) on first start; created
// says whether this call wrote it. Processes starting together on a fresh
// folder all return the one key the file holds. It is only offered on a
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
	// Processes starting together on a fresh folder must serve the one key
	// the file ends up holding: createOnce lets one of them write it.
	var mine []byte
	b, err := createOnce(path, func() ([]byte, error) {
		var raw [24]byte
		if _, err := rand.Read(raw[:]); err != nil {
			return nil, err
		}
		mine = []byte("hrld_dev_" + hex.EncodeToString(raw[:]))
		return mine, nil
	})
	if err != nil {
		return config.APIKey{}, "", false, err
	}
	created := mine != nil && bytes.Equal(b, mine)
	secret := strings.TrimSpace(string(b))
	k, err := config.ParseAPIKey("dev:" + secret + ":send+read+admin")
	if err != nil {
		return config.APIKey{}, "", false, fmt.Errorf("%s: %w", path, err)
	}
	return k, secret, created, nil
}
