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

// Package ratelimit limits how many events one client address may send per
// minute, with a token bucket per address.
//
// The addresses themselves are not kept, even in memory: a bucket is found
// by a keyed hash of the address (hash/maphash with a seed made at start
// and never shown), which cannot be turned back into the address, is
// unrelated to the visitor id, and is gone when the process ends. Idle
// buckets are swept, so memory follows the number of addresses seen in the
// last minute or so.
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

// Limiter is a per-address token bucket: each address may send Burst
// events at once and PerMinute events per minute over time.
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

// New makes a limiter allowing perMinute events per minute per address,
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

// Allow takes one token from addr's bucket. When there is none it returns
// false and how long until there is one, for Retry-After.
func (l *Limiter) Allow(addr netip.Addr) (bool, time.Duration) {
	if l.perMinute <= 0 {
		return true, 0
	}
	key := maphash.Comparable(l.seed, addr.Unmap())
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

// sweep forgets the buckets that have refilled: they are as good as new.
func (s *shard) sweep(now time.Time, capacity, perSecond float64) {
	for k, b := range s.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*perSecond >= capacity {
			delete(s.buckets, k)
		}
	}
	s.swept = now
}

// Len is how many addresses have a bucket, for tests.
func (l *Limiter) Len() int {
	n := 0
	for i := range l.shards {
		l.shards[i].mu.Lock()
		n += len(l.shards[i].buckets)
		l.shards[i].mu.Unlock()
	}
	return n
}
