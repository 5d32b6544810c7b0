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
	"net/http"
	"net/netip"
	"testing"
)

// edge is a Gateway's pod range (10.0.0.0/8, fd00::/8) and one of
// Cloudflare's published ranges (173.245.48.0/20).
var edge = []netip.Prefix{
	netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8"), netip.MustParsePrefix("173.245.48.0/20"),
}

// headers is a request's headers, as name and value pairs: a name given twice is
// two header lines.
func headers(pairs ...string) http.Header {
	header := http.Header{}
	for i := 0; i+1 < len(pairs); i += 2 {
		header.Add(pairs[i], pairs[i+1])
	}
	return header
}

const (
	xff = "X-Forwarded-For"
	fwd = "Forwarded"
	cf  = "CF-Connecting-IP"
)

func TestTheClientAddressIsThePeerUnlessThePeerIsATrustedProxy(t *testing.T) {
	tests := []struct {
		name    string
		peer    string
		header  http.Header
		trusted []netip.Prefix
		want    string
	}{
		{"a direct client is the peer", "198.51.100.1:4242", nil, edge, "198.51.100.1"},
		{"an untrusted peer's X-Forwarded-For is ignored", "198.51.100.1:4242", headers(xff, "203.0.113.9"), edge, "198.51.100.1"},
		{"with no trusted proxies, X-Forwarded-For is ignored", "10.1.2.3:80", headers(xff, "203.0.113.9"), nil, "10.1.2.3"},
		{"a trusted proxy's X-Forwarded-For names the client", "10.1.2.3:80", headers(xff, "203.0.113.9"), edge, "203.0.113.9"},
		{"the right-most untrusted hop is the client, not what the client wrote", "10.1.2.3:80", headers(xff, "1.1.1.1, 203.0.113.9, 10.9.9.9"), edge, "203.0.113.9"},
		{"several X-Forwarded-For headers are one list", "10.1.2.3:80", headers(xff, "1.1.1.1", xff, "203.0.113.9"), edge, "203.0.113.9"},
		{"an IPv6 peer works", "[2001:db8::1]:443", nil, edge, "2001:db8::1"},
		{"a trusted IPv6 proxy forwards an IPv6 client", "[fd00::5]:443", headers(xff, "2001:db8::77"), edge, "2001:db8::77"},
		{"an IPv4-mapped peer is its IPv4 address", "[::ffff:198.51.100.1]:4242", nil, edge, "198.51.100.1"},
		{"a malformed hop stops the walk at the last good one", "10.1.2.3:80", headers(xff, "garbage, 10.2.2.2"), edge, "10.2.2.2"},
		{"only proxies in the list: the left-most is the client", "10.1.2.3:80", headers(xff, "10.7.7.7"), edge, "10.7.7.7"},
		{"an X-Forwarded-For hop may carry a port", "10.1.2.3:80", headers(xff, "203.0.113.9:51234, 10.9.9.9:80"), edge, "203.0.113.9"},
		{"an X-Forwarded-For IPv6 hop may be bracketed, with a port", "10.1.2.3:80", headers(xff, "[2001:db8::77]:443"), edge, "2001:db8::77"},
		{"an unknown X-Forwarded-For hop stops the walk", "10.1.2.3:80", headers(xff, "203.0.113.9, unknown, 10.9.9.9"), edge, "10.9.9.9"},

		{"a trusted proxy's Forwarded names the client", "10.1.2.3:80", headers(fwd, "for=203.0.113.9"), edge, "203.0.113.9"},
		{"an untrusted peer's Forwarded is ignored", "198.51.100.1:4242", headers(fwd, "for=203.0.113.9"), edge, "198.51.100.1"},
		{"Forwarded is walked right to left past trusted proxies", "10.1.2.3:80",
			headers(fwd, `for=1.1.1.1, for=203.0.113.9;proto=https, for="10.9.9.9:8080";by=10.1.2.3`), edge, "203.0.113.9"},
		{"several Forwarded headers are one list", "10.1.2.3:80", headers(fwd, "for=1.1.1.1", fwd, "for=203.0.113.9", fwd, "for=173.245.48.7"), edge, "203.0.113.9"},
		{"a quoted bracketed IPv6 client with a port", "10.1.2.3:80", headers(fwd, `for="[2001:db8:cafe::17]:4711"`), edge, "2001:db8:cafe::17"},
		{"an unknown Forwarded hop stops the walk at the hop right of it", "10.1.2.3:80", headers(fwd, "for=203.0.113.9, for=unknown, for=10.9.9.9"), edge, "10.9.9.9"},
		{"an obfuscated Forwarded hop stops the walk", "10.1.2.3:80", headers(fwd, `for=203.0.113.9, for="_gazonk"`), edge, "10.1.2.3"},
		{"a Forwarded element without for= stops the walk", "10.1.2.3:80", headers(fwd, "for=203.0.113.9, proto=https;by=10.1.2.3"), edge, "10.1.2.3"},
		{"a comma inside a quoted value does not split elements", "10.1.2.3:80", headers(fwd, `for=203.0.113.9;host="a,for=198.51.100.66"`), edge, "203.0.113.9"},

		{"X-Forwarded-For and Forwarded that agree name the client", "10.1.2.3:80",
			headers(xff, "203.0.113.9, 10.9.9.9", fwd, `for=203.0.113.9, for="10.9.9.9:80"`), edge, "203.0.113.9"},
		{"a Forwarded the client wrote beside the proxies' X-Forwarded-For never wins: neither is believed", "10.1.2.3:80",
			headers(fwd, "for=198.51.100.66", xff, "203.0.113.9"), edge, "10.1.2.3"},
		{"an X-Forwarded-For the client wrote beside the proxies' Forwarded never wins: neither is believed", "10.1.2.3:80",
			headers(xff, "198.51.100.66", fwd, "for=203.0.113.9"), edge, "10.1.2.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: tc.header}
			if r.Header == nil {
				r.Header = http.Header{}
			}
			for _, cfConnectingIP := range []bool{false, true} {
				if got := clientAddr(r, tc.trusted, cfConnectingIP); got.String() != tc.want {
					t.Errorf("clientAddr (cfConnectingIP %t) = %s, want %s", cfConnectingIP, got, tc.want)
				}
			}
		})
	}
}

// Cloudflare's edge (173.245.48.0/20 here) sets CF-Connecting-IP and
// appends the visitor to X-Forwarded-For; the Gateway (10.0.0.0/8) appends
// the edge.
func TestCFConnectingIPNamesTheClientOnlyWhenItCameThroughTheEdge(t *testing.T) {
	tests := []struct {
		name      string
		peer      string
		header    http.Header
		want      string
		wantNoCFH string // without --cf-connecting-ip
	}{
		{"through the edge and the Gateway, CF-Connecting-IP is the client", "10.1.2.3:80",
			headers(cf, "203.0.113.9", xff, "203.0.113.9, 173.245.48.7"), "203.0.113.9", "203.0.113.9"},
		{"an X-Forwarded-For written left of Cloudflare's edge does not win over CF-Connecting-IP", "10.1.2.3:80",
			headers(cf, "203.0.113.9", xff, "198.51.100.66, 173.245.48.9, 173.245.48.7"), "203.0.113.9", "198.51.100.66"},
		{"through the edge with Forwarded, CF-Connecting-IP is the client", "10.1.2.3:80",
			headers(cf, "2001:db8::77", fwd, `for="[2001:db8::77]:443", for=173.245.48.7`), "2001:db8::77", "2001:db8::77"},
		{"past the edge, straight to the Gateway, the client's own CF-Connecting-IP is ignored", "10.1.2.3:80",
			headers(cf, "198.51.100.66", xff, "203.0.113.9"), "203.0.113.9", "203.0.113.9"},
		{"with no hop recorded, CF-Connecting-IP is ignored", "10.1.2.3:80",
			headers(cf, "198.51.100.66"), "10.1.2.3", "10.1.2.3"},
		{"from an untrusted peer, CF-Connecting-IP is ignored", "198.51.100.1:4242",
			headers(cf, "198.51.100.66", xff, "173.245.48.7"), "198.51.100.1", "198.51.100.1"},
		{"two CF-Connecting-IP headers are not believed", "10.1.2.3:80",
			headers(cf, "198.51.100.66", cf, "203.0.113.9", xff, "203.0.113.9, 173.245.48.7"), "203.0.113.9", "203.0.113.9"},
		{"a malformed CF-Connecting-IP is not believed", "10.1.2.3:80",
			headers(cf, "203.0.113.9:80", xff, "203.0.113.9, 173.245.48.7"), "203.0.113.9", "203.0.113.9"},
		{"headers that disagree are not believed, nor is CF-Connecting-IP", "10.1.2.3:80",
			headers(cf, "198.51.100.66", xff, "203.0.113.9", fwd, "for=173.245.48.7"), "10.1.2.3", "10.1.2.3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: tc.header}
			if got := clientAddr(r, edge, true); got.String() != tc.want {
				t.Errorf("with CF-Connecting-IP believed, clientAddr = %s, want %s", got, tc.want)
			}
			if got := clientAddr(r, edge, false); got.String() != tc.wantNoCFH {
				t.Errorf("without, clientAddr = %s, want %s", got, tc.wantNoCFH)
			}
		})
	}
}

func TestAForwardedElementsForIsParsedAsRFC7239WritesIt(t *testing.T) {
	tests := []struct {
		name, element, want string // want "": no address
	}{
		{"an IPv4 token", "for=192.0.2.60", "192.0.2.60"},
		{"an IPv4 address and port, quoted", `for="192.0.2.60:4711"`, "192.0.2.60"},
		{"an IPv4 address and port, unquoted as some proxies write it", "for=192.0.2.60:4711", "192.0.2.60"},
		{"a bracketed IPv6 address", `for="[2001:db8:cafe::17]"`, "2001:db8:cafe::17"},
		{"a bracketed IPv6 address and port", `For="[2001:db8:cafe::17]:4711"`, "2001:db8:cafe::17"},
		{"an obfuscated port", `for="[2001:db8:cafe::17]:_p1"`, "2001:db8:cafe::17"},
		{"an IPv4-mapped IPv6 address is IPv4", `for="[::ffff:192.0.2.60]"`, "192.0.2.60"},
		{"the parameter name in any case, among others, with spaces", ` proto=https ; FOR = 192.0.2.60 ;by=10.0.0.1`, "192.0.2.60"},
		{"a backslash-escaped character in a quoted value", `for="192.0.2.6\0"`, "192.0.2.60"},
		{"unknown", "for=unknown", ""},
		{"an obfuscated node", "for=_hidden", ""},
		{"an obfuscated node, quoted", `for="_SEVKISEK"`, ""},
		{"no for=", "by=192.0.2.60;proto=https", ""},
		{"for= twice", "for=192.0.2.60;for=198.51.100.1", ""},
		{"a pair without =", "for=192.0.2.60;secure", ""},
		{"an empty value", "for=", ""},
		{"an unterminated quote", `for="192.0.2.60`, ""},
		{"a quote inside a token", `for=192.0".2.60"`, ""},
		{"IPv4 in brackets", `for="[192.0.2.60]"`, ""},
		{"a bracket never closed", `for="[2001:db8::17"`, ""},
		{"junk after the bracket", `for="[2001:db8::17]x"`, ""},
		{"a port over 65535", `for="192.0.2.60:65536"`, ""},
		{"a port that is not a number", `for="192.0.2.60:http"`, ""},
		{"an empty port", `for="192.0.2.60:"`, ""},
		{"an obfuscated port with a bad character", `for="192.0.2.60:_a/b"`, ""},
		{"an address with a zone", `for="[fe80::1%eth0]"`, ""},
		{"a host name", "for=example.com", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, ok := forwardedFor(tc.element)
			got := ""
			if ok {
				got = a.String()
			}
			if got != tc.want {
				t.Errorf("forwardedFor(%q) = %q (%t), want %q", tc.element, got, ok, tc.want)
			}
		})
	}
}
