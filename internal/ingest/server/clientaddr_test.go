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

func TestTheClientAddressIsThePeerUnlessThePeerIsATrustedProxy(t *testing.T) {
	edge := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("fd00::/8")}
	tests := []struct {
		name    string
		peer    string
		xff     []string
		trusted []netip.Prefix
		want    string
	}{
		{"a direct client is the peer", "198.51.100.1:4242", nil, edge, "198.51.100.1"},
		{"an untrusted peer's X-Forwarded-For is ignored", "198.51.100.1:4242", []string{"203.0.113.9"}, edge, "198.51.100.1"},
		{"with no trusted proxies, X-Forwarded-For is ignored", "10.1.2.3:80", []string{"203.0.113.9"}, nil, "10.1.2.3"},
		{"a trusted proxy's X-Forwarded-For names the client", "10.1.2.3:80", []string{"203.0.113.9"}, edge, "203.0.113.9"},
		{"the right-most untrusted hop is the client, not what the client wrote", "10.1.2.3:80", []string{"1.1.1.1, 203.0.113.9, 10.9.9.9"}, edge, "203.0.113.9"},
		{"several X-Forwarded-For headers are one list", "10.1.2.3:80", []string{"1.1.1.1", "203.0.113.9"}, edge, "203.0.113.9"},
		{"an IPv6 peer works", "[2001:db8::1]:443", nil, edge, "2001:db8::1"},
		{"a trusted IPv6 proxy forwards an IPv6 client", "[fd00::5]:443", []string{"2001:db8::77"}, edge, "2001:db8::77"},
		{"an IPv4-mapped peer is its IPv4 address", "[::ffff:198.51.100.1]:4242", nil, edge, "198.51.100.1"},
		{"a malformed hop stops the walk at the last good one", "10.1.2.3:80", []string{"garbage, 10.2.2.2"}, edge, "10.2.2.2"},
		{"only proxies in the list: the left-most is the client", "10.1.2.3:80", []string{"10.7.7.7"}, edge, "10.7.7.7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &http.Request{RemoteAddr: tc.peer, Header: http.Header{}}
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tc.trusted); got.String() != tc.want {
				t.Errorf("clientAddr = %s, want %s", got, tc.want)
			}
		})
	}
}
