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

package event

import (
	"net/netip"
	"testing"
)

func TestVisitorID(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.1")
	mapped := netip.MustParseAddr("::ffff:192.0.2.1")
	v6 := netip.MustParseAddr("2001:db8::1")
	id := VisitorID(testSalt, v4, uaChromeWindows, "acme.com")

	tests := []struct {
		name string
		got  int64
		same bool
	}{
		{name: "the same address, User-Agent, domain and salt give the same id", got: VisitorID(testSalt, v4, uaChromeWindows, "acme.com"), same: true},
		{name: "an IPv4-mapped IPv6 address is the same visitor as its IPv4 address", got: VisitorID(testSalt, mapped, uaChromeWindows, "acme.com"), same: true},
		{name: "a zone does not change the visitor", got: VisitorID(testSalt, netip.MustParseAddr("::ffff:192.0.2.1%eth0"), uaChromeWindows, "acme.com"), same: true},
		{name: "a different salt, the next day's, gives an unrelated id", got: VisitorID(saltB, v4, uaChromeWindows, "acme.com")},
		{name: "a different address is a different visitor", got: VisitorID(testSalt, netip.MustParseAddr("192.0.2.2"), uaChromeWindows, "acme.com")},
		{name: "an IPv6 address is a different visitor", got: VisitorID(testSalt, v6, uaChromeWindows, "acme.com")},
		{name: "a different User-Agent is a different visitor", got: VisitorID(testSalt, v4, uaFirefoxLinux, "acme.com")},
		{name: "a different domain is a different visitor", got: VisitorID(testSalt, v4, uaChromeWindows, "shop.acme.com")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == id) != tt.same {
				t.Errorf("VisitorID = %d, reference %d, want same: %v", tt.got, id, tt.same)
			}
		})
	}
}

// TestVisitorIDPartsAreUnambiguous checks the length prefixes: moving bytes
// from the User-Agent to the domain must not give the same hash.
func TestVisitorIDPartsAreUnambiguous(t *testing.T) {
	a := netip.MustParseAddr("192.0.2.1")
	if VisitorID(testSalt, a, "Mozilla/5.0 x", "acme.com") == VisitorID(testSalt, a, "Mozilla/5.0 ", "xacme.com") {
		t.Error("moving a byte from the User-Agent to the domain gave the same id")
	}
}

// TestVisitorIDIsAKeyedHash pins the construction, so that a change to it
// (which would count every visitor of the day twice) is a deliberate one.
// The expected value was computed independently, in Python:
//
//	part = lambda b: struct.pack(">Q", len(b)) + b
//	m = hmac.new(bytes(32), part(ip_address("::ffff:192.0.2.1").packed) +
//	             part(b"UA") + part(b"acme.com"), hashlib.sha256).digest()
//	struct.unpack(">q", m[:8])[0]
func TestVisitorIDIsAKeyedHash(t *testing.T) {
	got := VisitorID(make([]byte, SaltSize), netip.MustParseAddr("192.0.2.1"), "UA", "acme.com")
	if want := int64(-2985305311263409628); got != want {
		t.Errorf("VisitorID = %d, want %d", got, want)
	}
}
