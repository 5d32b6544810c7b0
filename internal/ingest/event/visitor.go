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
	"fmt"
)

// VisitorKeySize is the size in bytes of a tenant's visitor key, the HMAC
// key of VisitorID. The operator makes one per tenant, at random, and keeps
// it only in the tenant's ingest Secret.
const VisitorKeySize = 32

// The shape of an anonymous id (the SDK's mm_aid, or what a server-side
// caller sends in its place): MinAnonymousIDBytes to MaxAnonymousIDBytes
// characters of the URL-safe base64 alphabet. The SDK makes 22 of them
// from 16 random bytes (128 bits); a UUID (36 characters, with dashes) fits
// too. The lower bound keeps out short values that are more likely names or
// counters than random ids.
const (
	MinAnonymousIDBytes = 22
	MaxAnonymousIDBytes = 64
)

// ValidAnonymousID says whether id has the shape of an anonymous id.
func ValidAnonymousID(id string) bool {
	if len(id) < MinAnonymousIDBytes || len(id) > MaxAnonymousIDBytes {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// VisitorID is what is stored of a visitor's anonymous id: HMAC-SHA256
// of the id under the tenant's visitor key, its first 8 bytes as a
// big-endian int64. The same browser (one mm_aid, one origin) has the same
// visitor id for as long as the tenant keeps its key. The database never
// holds the browser's own value, and because every tenant has its own key,
// two tenants' visitor ids cannot be joined. No address, User-Agent or
// other property of the request takes part: the id is the browser's own
// random value and nothing else.
func VisitorID(key []byte, anonymousID string) int64 {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(anonymousID))
	sum := mac.Sum(nil)
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// CheckVisitorKey says why key cannot be a visitor key, or nil.
func CheckVisitorKey(key []byte) error {
	if len(key) != VisitorKeySize {
		return fmt.Errorf("the visitor key is %d bytes, want %d", len(key), VisitorKeySize)
	}
	return nil
}
