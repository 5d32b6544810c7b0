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

// Package ratelimit limits how many events one client may send per minute,
// with a token bucket per client: an IPv4 address, or an IPv6 address's
// /64. A /64 is one IPv6 network, the smallest block a subscriber is given
// (a home's LAN, a phone), and a host picks addresses in it at will
// (temporary addresses, RFC 8981), so a bucket per IPv6 address would let
// one client multiply its limit by changing its address.
//
// The addresses themselves are not kept, even in memory: a bucket is found
// by a keyed hash of the IPv4 address or the /64 (hash/maphash with a seed
// made at start and never shown), which cannot be turned back into the
// address, is unrelated to the visitor id, and is gone when the process
// ends. Idle buckets are swept, so memory follows the number of clients
// seen in the last minute or so.
package ratelimit

import (
	"hash/maphash"
	"math"
	"net/netip"
	"sync"
	"time"
)

// shards spreads the buckets over this many locks, so requests from
// different addresses rarely wait on each other.
const shards = 64

// Limiter is a token bucket per client (clientKey): each may send
// perMinute events at once and perMinute events per minute over time.
type Limiter struct {
	perMinute float64
	now       func() time.Time
	seed      maphash.Seed
	shards    [shards]shard
}

type shard struct {
	mu      sync.Mutex
	buckets map[uint64]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// New makes a limiter allowing perMinute events per minute per client,
// with a burst of as many. perMinute <= 0 means no limit (Allow always
// says yes). now is the clock; nil means time.Now.
func New(perMinute int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	l := &Limiter{perMinute: float64(perMinute), now: now, seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].buckets = map[uint64]*bucket{}
	}
	return l
}

// Allow takes one token from the bucket of addr's client (clientKey).
// When there is none it returns false and how long until there is one,
// for Retry-After.
func (l *Limiter) Allow(addr netip.Addr) (bool, time.Duration) {
	if l.perMinute <= 0 {
		return true, 0
	}
	key := maphash.Comparable(l.seed, clientKey(addr))
	s := &l.shards[key%shards]
	now := l.now()
	perSecond := l.perMinute / 60

	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.swept) > time.Minute {
		s.sweep(now, l.perMinute, perSecond)
	}
	b, ok := s.buckets[key]
	if !ok {
		b = &bucket{tokens: l.perMinute, at: now}
		s.buckets[key] = b
	} else {
		b.tokens = math.Min(l.perMinute, b.tokens+now.Sub(b.at).Seconds()*perSecond)
		b.at = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / perSecond * float64(time.Second))
	return false, wait
}

// clientKey is the client a bucket belongs to: an IPv4 address (IPv4-mapped
// IPv6 included) itself, an IPv6 address's /64 as its first address.
func clientKey(addr netip.Addr) netip.Addr {
	addr = addr.Unmap()
	if !addr.Is6() {
		return addr
	}
	// An IPv6 address with a zone has no prefix; its zone tells nothing
	// about the client either.
	p, _ := addr.WithZone("").Prefix(ipv6ClientBits)
	return p.Addr()
}

// ipv6ClientBits is the prefix length of one IPv6 client.
const ipv6ClientBits = 64

// sweep forgets the buckets that have refilled: they are as good as new.
func (s *shard) sweep(now time.Time, capacity, perSecond float64) {
	for k, b := range s.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*perSecond >= capacity {
			delete(s.buckets, k)
		}
	}
	s.swept = now
}

// Len is how many clients (clientKey) have a bucket, for tests.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}
