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

package ratelimit

import (
	"net/netip"
	"testing"
	"time"
)

func TestAnAddressGetsItsBurstThenWaitsForTokens(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(60, func() time.Time { return now })
	a := netip.MustParseAddr("192.0.2.1")
	for i := range 60 {
		if ok, _ := l.Allow(a); !ok {
			t.Fatalf("event %d of the burst of 60 was refused", i+1)
		}
	}
	ok, wait := l.Allow(a)
	if ok {
		t.Fatal("the 61st event in the same instant was allowed")
	}
	if wait <= 0 || wait > time.Second {
		t.Errorf("Retry-After = %s, want about 1s at 60 per minute", wait)
	}
	if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.2")); !ok {
		t.Error("another address was refused")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("::ffff:192.0.2.1")); ok {
		t.Error("the IPv4-mapped form of a limited address escaped its limit")
	}
	now = now.Add(time.Second)
	if ok, _ := l.Allow(a); !ok {
		t.Error("a second later one token is back, but the event was refused")
	}
}

func TestRefilledBucketsAreSweptSoMemoryFollowsRecentAddresses(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(10, func() time.Time { return now })
	for i := range 1000 {
		l.Allow(netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}))
	}
	if l.Len() != 1000 {
		t.Fatalf("Len = %d, want 1000", l.Len())
	}
	// 5000 new addresses touch every shard (the chance one is missed is
	// about 64·e^-78), and each sweeps on its first use after a minute.
	now = now.Add(2 * time.Minute)
	for i := range 5000 {
		l.Allow(netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}))
	}
	if n := l.Len(); n != 5000 {
		t.Errorf("Len = %d after two idle minutes and 5000 new addresses, want 5000: refilled buckets were kept", n)
	}
}

func TestNoLimitAllowsEverything(t *testing.T) {
	l := New(0, nil)
	for range 10000 {
		if ok, _ := l.Allow(netip.MustParseAddr("192.0.2.1")); !ok {
			t.Fatal("refused with no limit")
		}
	}
	if l.Len() != 0 {
		t.Error("no limit still keeps buckets")
	}
}

func TestAnIPv6ClientIsItsSlash64AndAnIPv4ClientItsAddress(t *testing.T) {
	tests := []struct {
		name, a, b string
		same       bool
	}{
		{"two addresses in one IPv6 /64 are one client", "2001:db8:cafe:1::1", "2001:db8:cafe:1:ffff:ffff:ffff:ffff", true},
		{"a temporary address is the same client as the stable one", "2001:db8:cafe:1:2e0:4cff:fe68:1", "2001:db8:cafe:1:a1b2:c3d4:e5f6:7", true},
		{"neighbouring /64s are two clients", "2001:db8:cafe:1::1", "2001:db8:cafe:2::1", false},
		{"neighbouring IPv4 addresses are two clients", "192.0.2.1", "192.0.2.2", false},
		{"an IPv4-mapped address is its IPv4 address", "::ffff:192.0.2.1", "192.0.2.1", true},
		{"an IPv4-mapped address is not lumped into ::ffff:0:0/64", "::ffff:192.0.2.1", "::ffff:198.51.100.1", false},
		{"a zone does not make another client", "fe80::1%eth0", "fe80::2", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, b := clientKey(netip.MustParseAddr(tc.a)), clientKey(netip.MustParseAddr(tc.b))
			if (a == b) != tc.same {
				t.Errorf("clientKey(%s) = %s, clientKey(%s) = %s: same client %t, want %t", tc.a, a, tc.b, b, a == b, tc.same)
			}
		})
	}
}

func TestAnIPv6ClientCannotEscapeItsLimitByChangingAddressInItsSlash64(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	l := New(3, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := l.Allow(netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i + 1)})); !ok {
			t.Fatalf("event %d of the burst of 3 was refused", i+1)
		}
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8::beef")); ok {
		t.Error("a fourth address in the same /64 was allowed past the limit of 3")
	}
	if ok, _ := l.Allow(netip.MustParseAddr("2001:db8:0:1::1")); !ok {
		t.Error("the next /64 was refused")
	}
	if n := l.Len(); n != 2 {
		t.Errorf("Len = %d, want 2 buckets, one per /64", n)
	}
}
