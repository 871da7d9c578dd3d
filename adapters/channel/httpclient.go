package channel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// ErrAddressRefused is wrapped by the error of a dial that the SSRF guard
// refused: the host resolved to a loopback, private, link-local, shared or
// metadata address and is not on the allow-list.
var ErrAddressRefused = errors.New("address refused by the outbound guard")

// HTTPOptions configures NewHTTPClient.
type HTTPOptions struct {
	// Timeout bounds a whole request, body included. Default 10 s.
	Timeout time.Duration
	// AllowHosts lists hosts (names or IP literals, as they appear in URLs,
	// without port) to which the guard does not apply; tests list 127.0.0.1
	// for their local sinks.
	AllowHosts []string
	// MaxConnsPerHost bounds concurrent connections to one host. Default 64.
	MaxConnsPerHost int
}

// NewHTTPClient returns a client for calling addresses that recipients or
// requests supplied. It never follows redirects (a 3xx is returned as the
// response), uses no proxy, and, unless the URL's host is allow-listed,
// resolves the host itself and refuses to connect when any resolved address
// is loopback, private, link-local (cloud metadata included), shared,
// multicast or unspecified; it dials the checked address, so a DNS answer
// cannot change between the check and the connection.
func NewHTTPClient(o HTTPOptions) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.MaxConnsPerHost <= 0 {
		o.MaxConnsPerHost = 64
	}
	g := NewGuard(o.AllowHosts)
	tr := &http.Transport{
		Proxy:               nil,
		DialContext:         g.DialContext,
		ForceAttemptHTTP2:   true,
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: o.MaxConnsPerHost,
		MaxConnsPerHost:     o.MaxConnsPerHost,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Guard dials only public addresses, except for allow-listed hosts.
type Guard struct {
	allow  map[string]bool
	dialer net.Dialer
}

// NewGuard returns a Guard with the given allow-list.
func NewGuard(allowHosts []string) *Guard {
	g := &Guard{allow: make(map[string]bool, len(allowHosts))}
	for _, h := range allowHosts {
		g.allow[strings.ToLower(strings.Trim(h, "[]"))] = true
	}
	return g
}

// DialContext resolves addr's host, checks every address it resolves to, and
// connects to the first permitted one.
func (g *Guard) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if g.allow[strings.ToLower(host)] {
		return g.dialer.DialContext(ctx, network, addr)
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = net.DefaultResolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
	}
	if len(ips) == 0 {
		return nil, fmt.Errorf("dial %s: no addresses", host)
	}
	for _, ip := range ips {
		if !PublicAddr(ip) {
			return nil, fmt.Errorf("dial %s (%s): %w", host, ip, ErrAddressRefused)
		}
	}
	return g.dialer.DialContext(ctx, network, net.JoinHostPort(ips[0].String(), port))
}

var refusedPrefixes = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),     // "this network"
	netip.MustParsePrefix("100.64.0.0/10"), // shared address space (CGNAT)
	netip.MustParsePrefix("192.0.0.0/24"),  // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"), // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),   // reserved
	netip.MustParsePrefix("64:ff9b::/96"),  // NAT64, may reach private IPv4
}

// PublicAddr reports whether ip is an address the guard lets an outbound
// call reach: not loopback, private, link-local (169.254.169.254 and other
// metadata endpoints included), multicast, unspecified or reserved.
func PublicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() ||
		ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() || ip.IsMulticast() ||
		ip.IsInterfaceLocalMulticast() {
		return false
	}
	for _, p := range refusedPrefixes {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}
