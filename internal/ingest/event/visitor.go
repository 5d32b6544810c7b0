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
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"net/netip"
)

// SaltSize is the size in bytes of a tenant's daily salt.
const SaltSize = 32

// VisitorID is the cookieless visitor id: HMAC-SHA256, keyed with the
// day's salt, of (address, User-Agent, domain), its first 8 bytes as a
// big-endian int64. It counts one visitor once a day without storing
// anything that identifies them: the address and User-Agent cannot be
// recovered from it, and once the day's salt is deleted nobody, us
// included, can link the id to the next day's.
//
// Each part is length-prefixed, so no two different triples hash the same
// bytes ("a","bc" vs "ab","c"). The address is hashed in its 16-byte form
// after Unmap, so an IPv4 visitor seen through a dual-stack socket
// (::ffff:192.0.2.1) is the same visitor as 192.0.2.1; a zone is ignored.
// domain is hashed as given; Reduce passes the event's first domain in
// lower case.
func VisitorID(salt []byte, addr netip.Addr, userAgent, domain string) int64 {
	mac := hmac.New(sha256.New, salt)
	a := addr.Unmap().As16()
	writePart(mac, a[:])
	writePart(mac, []byte(userAgent))
	writePart(mac, []byte(domain))
	sum := mac.Sum(nil)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// writePart writes p with its length in front.
func writePart(h hash.Hash, p []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(p)))
	h.Write(n[:])
	h.Write(p)
}
