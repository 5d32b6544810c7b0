/*
Copyright 2026 Millimetric, Inc.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package server

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// The headers the client address may be read from, from a trusted peer.
const (
	headerXForwardedFor  = "X-Forwarded-For"
	headerForwarded      = "Forwarded" // RFC 7239
	headerCFConnectingIP = "Cf-Connecting-Ip"
)

// clientAddr is the visitor's address, used for the location and the rate
// limit only. It is the TCP peer unless the peer is a trusted proxy; then:
//
//  1. The hops the proxies recorded, in X-Forwarded-For and in RFC 7239
//     Forwarded (for=), are walked right to left past trusted proxies: the
//     first hop that is not one is the client. Each trusted proxy appends
//     its own peer, so only the hops right of the client were written by
//     proxies; anything left of it was written by the client. A hop that
//     is malformed, unknown or obfuscated ends the walk at the hop right of
//     it, since nothing left of it can be attributed.
//  2. When both headers are sent, they must name the same client. A proxy
//     chain usually writes one of them and passes the other through as the
//     client sent it, and which one is not known here; so when they
//     disagree neither is believed and the client is the peer. A header the
//     client made up can then lump its own requests in with the peer's, but
//     never names the client.
//  3. With cfConnectingIP, when the walk shows the request reached the peer
//     through another trusted proxy (the right-most recorded hop is
//     trusted: the Cloudflare edge the Gateway recorded), a single
//     CF-Connecting-IP names the client instead of the walk. Cloudflare's
//     edge sets it itself, whereas the hops left of the edge's address are
//     as the edge received them, and requests can reach the edge from
//     Cloudflare's own published ranges (a Worker's fetch), so a trusted
//     address among them does not vouch for what is left of it.
//     When the right-most recorded hop is not trusted, the request came
//     straight to the peer from the client, past the edge, and a
//     CF-Connecting-IP is the client's own invention: it is ignored.
func clientAddr(r *http.Request, trusted []netip.Prefix, cfConnectingIP bool) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !isTrusted(peer, trusted) {
		return peer
	}
	w := recordedClient(r.Header, peer, trusted)
	if cfConnectingIP && w.throughProxy {
		if a, ok := cfConnectingAddr(r.Header); ok {
			return a
		}
	}
	return w.addr
}

// walk is the result of walking recorded hops right to left.
type walk struct {
	// addr is the client: the first hop that is not a trusted proxy, or,
	// when the walk ended first, the last hop read (the peer when none).
	addr netip.Addr
	// throughProxy is whether a trusted proxy's address was read among
	// the recorded hops: the request reached the peer through another
	// trusted proxy, not straight from the client.
	throughProxy bool
}

// step reads the next hop to the left and reports whether the walk goes
// on past it.
func (w *walk) step(a netip.Addr, trusted []netip.Prefix) bool {
	w.addr = a
	if !isTrusted(a, trusted) {
		return false
	}
	w.throughProxy = true
	return true
}

// recordedClient is the client the trusted peer's X-Forwarded-For and
// Forwarded headers name (rules 1 and 2 of clientAddr).
func recordedClient(h http.Header, peer netip.Addr, trusted []netip.Prefix) walk {
	xff, fwd := h.Values(headerXForwardedFor), h.Values(headerForwarded)
	switch {
	case len(fwd) == 0:
		return walkXForwardedFor(xff, peer, trusted)
	case len(xff) == 0:
		return walkForwarded(fwd, peer, trusted)
	}
	byXFF, byForwarded := walkXForwardedFor(xff, peer, trusted), walkForwarded(fwd, peer, trusted)
	if byXFF != byForwarded {
		return walk{addr: peer}
	}
	return byXFF
}

// walkXForwardedFor walks X-Forwarded-For's lines, one comma-separated
// list, right to left.
func walkXForwardedFor(lines []string, peer netip.Addr, trusted []netip.Prefix) walk {
	w := walk{addr: peer}
	for i := len(lines) - 1; i >= 0; i-- {
		hops := strings.Split(lines[i], ",")
		for j := len(hops) - 1; j >= 0; j-- {
			a, ok := parseNode(strings.TrimSpace(hops[j]))
			if !ok || !w.step(a, trusted) {
				return w
			}
		}
	}
	return w
}

// walkForwarded walks Forwarded's lines, one comma-separated list of
// elements, right to left, by each element's for= parameter. Empty
// elements are skipped, as RFC 9110's list syntax has them.
func walkForwarded(lines []string, peer netip.Addr, trusted []netip.Prefix) walk {
	w := walk{addr: peer}
	for i := len(lines) - 1; i >= 0; i-- {
		elements := splitUnquoted(lines[i], ',')
		for j := len(elements) - 1; j >= 0; j-- {
			if strings.TrimSpace(elements[j]) == "" {
				continue
			}
			a, ok := forwardedFor(elements[j])
			if !ok || !w.step(a, trusted) {
				return w
			}
		}
	}
	return w
}

// forwardedFor is the address of one Forwarded element's for= parameter:
// for=192.0.2.60, for="192.0.2.60:4711", for="[2001:db8::17]",
// for="[2001:db8::17]:4711". An element without for=, with it twice, with
// a pair that is not name=value, or whose for= is "unknown" or an
// obfuscated identifier ("_hidden") has no address.
func forwardedFor(element string) (netip.Addr, bool) {
	var node string
	found := false
	for _, pair := range splitUnquoted(element, ';') {
		name, value, ok := strings.Cut(pair, "=")
		if !ok {
			return netip.Addr{}, false
		}
		if !strings.EqualFold(strings.TrimSpace(name), "for") {
			continue
		}
		if found {
			return netip.Addr{}, false
		}
		if node, ok = forwardedValue(strings.TrimSpace(value)); !ok {
			return netip.Addr{}, false
		}
		found = true
	}
	if !found {
		return netip.Addr{}, false
	}
	return parseNode(node)
}

// forwardedValue is a parameter's value: a token as it is, or a quoted
// string without its quotes and backslash escapes.
func forwardedValue(v string) (string, bool) {
	if !strings.HasPrefix(v, `"`) {
		return v, v != "" && !strings.ContainsAny(v, "\" \t")
	}
	if len(v) < 2 || !strings.HasSuffix(v, `"`) {
		return "", false
	}
	v = v[1 : len(v)-1]
	if !strings.Contains(v, `\`) {
		return v, !strings.Contains(v, `"`)
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
			if i == len(v) {
				return "", false
			}
		case '"':
			return "", false
		}
		b.WriteByte(v[i])
	}
	return b.String(), true
}

// splitUnquoted splits s at sep outside double-quoted strings (in which a
// backslash escapes the next character). An unterminated quote runs to the
// end of s.
func splitUnquoted(s string, sep byte) []string {
	var parts []string
	start, quoted := 0, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case quoted && c == '\\':
			i++
		case c == '"':
			quoted = !quoted
		case !quoted && c == sep:
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// parseNode is the address of a hop as proxies write it: an IPv4 or IPv6
// address, IPv4:port, [IPv6], or [IPv6]:port, where the port may be
// obfuscated ("_x") as RFC 7239 allows. "unknown", an obfuscated node
// ("_hidden"), an address with a zone and anything else have none.
// IPv4-mapped IPv6 addresses are their IPv4 address.
func parseNode(s string) (netip.Addr, bool) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.Unmap(), a.Zone() == ""
	}
	var host, port string
	hasPort, bracketed := false, false
	if rest, ok := strings.CutPrefix(s, "["); ok {
		var after string
		if host, after, ok = strings.Cut(rest, "]"); !ok {
			return netip.Addr{}, false
		}
		if after != "" {
			if port, hasPort = strings.CutPrefix(after, ":"); !hasPort {
				return netip.Addr{}, false
			}
		}
		bracketed = true
	} else if host, port, hasPort = strings.Cut(s, ":"); !hasPort {
		// Not an address, and no port: "unknown", "_hidden" or garbage.
		return netip.Addr{}, false
	}
	if hasPort && !validPort(port) {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(host)
	// Brackets hold IPv6 only, and an unbracketed address with a port is
	// IPv4 only.
	if err != nil || a.Zone() != "" || a.Is6() != bracketed {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

// validPort says whether port is RFC 7239's node-port: up to five digits
// of at most 65535, or an obfuscated port, "_" followed by letters,
// digits, ".", "_" or "-".
func validPort(port string) bool {
	if rest, ok := strings.CutPrefix(port, "_"); ok {
		if rest == "" {
			return false
		}
		return strings.Trim(rest, obfuscatedChars) == ""
	}
	if port == "" || len(port) > 5 {
		return false
	}
	n := 0
	for _, c := range port {
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}

// obfuscatedChars are the characters of RFC 7239's obfuscated identifiers
// after their leading "_".
const obfuscatedChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-"

// cfConnectingAddr is the address in CF-Connecting-IP, when the request
// has exactly one such header holding one address.
func cfConnectingAddr(h http.Header) (netip.Addr, bool) {
	values := h.Values(headerCFConnectingIP)
	if len(values) != 1 {
		return netip.Addr{}, false
	}
	a, err := netip.ParseAddr(strings.TrimSpace(values[0]))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, false
	}
	return a.Unmap(), true
}

func peerAddr(remote string) netip.Addr {
	if ap, err := netip.ParseAddrPort(remote); err == nil {
		return ap.Addr().Unmap()
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, _ := netip.ParseAddr(host)
	return a.Unmap()
}

func isTrusted(a netip.Addr, trusted []netip.Prefix) bool {
	for _, p := range trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
