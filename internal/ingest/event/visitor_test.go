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
	"fmt"
	"strings"
	"testing"
)

func TestVisitorID(t *testing.T) {
	id := VisitorID(testKey, testAID)
	tests := []struct {
		name string
		got  int64
		same bool
	}{
		{name: "the same id under the same key is the same visitor", got: VisitorID(testKey, testAID), same: true},
		{name: "the same id under another tenant's key cannot be joined with it", got: VisitorID(keyB, testAID)},
		{name: "another id is another visitor", got: VisitorID(testKey, "Zz0uV-d6Xh3xS_2kPz9Lm4A")},
		{name: "ids differing only in case are different visitors", got: VisitorID(testKey, strings.ToUpper(testAID))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if (tt.got == id) != tt.same {
				t.Errorf("VisitorID = %d, reference %d, want same: %v", tt.got, id, tt.same)
			}
		})
	}
}

// TestVisitorIDIsAKeyedHash pins the construction, so that a change to it
// (which would count every returning visitor as new) is a deliberate one.
// The expected value was computed independently, in Python:
//
//	m = hmac.new(bytes(32), b"q0uV-d6Xh3xS_2kPz9Lm4A", hashlib.sha256).digest()
//	struct.unpack(">q", m[:8])[0]
func TestVisitorIDIsAKeyedHash(t *testing.T) {
	got := VisitorID(make([]byte, VisitorKeySize), testAID)
	if want := int64(4791379980153761330); got != want {
		t.Errorf("VisitorID = %d, want %d", got, want)
	}
}

func TestValidAnonymousID(t *testing.T) {
	tests := []struct {
		id   string
		want bool
	}{
		{id: testAID, want: true},
		{id: "0f8fad5b-d9cb-469f-a165-70867728950e", want: true},
		{id: strings.Repeat("a", MaxAnonymousIDBytes), want: true},
		{id: strings.Repeat("a", MinAnonymousIDBytes-1)},
		{id: strings.Repeat("a", MaxAnonymousIDBytes+1)},
		{id: "q0uV+d6Xh3xS/2kPz9Lm4A"},
		{id: "q0uV d6Xh3xS 2kPz9Lm4A"},
		{id: ""},
	}
	for _, tt := range tests {
		if got := ValidAnonymousID(tt.id); got != tt.want {
			t.Errorf("ValidAnonymousID(%q) = %v, want %v", tt.id, got, tt.want)
		}
	}
}

// TestReduceNeverKeepsTheAnonymousID: the row holds the keyed hash, never
// the browser's own value, in any field.
func TestReduceNeverKeepsTheAnonymousID(t *testing.T) {
	raw := pageview("https://acme.com/?ref=" + testAID)
	raw.AnonymousID = testAID
	raw.Title = "Welcome"
	kept, r := reduce(t, raw, browserRequest(), acme)
	if r != nil {
		t.Fatalf("refused: %v", r)
	}
	kept.Path = "" // the customer allowlisted ref and put the id there: theirs to answer for
	if out := fmt.Sprintf("%+v %s", kept, kept.Props); strings.Contains(out, testAID) {
		t.Errorf("the anonymous id is in the row: %s", out)
	}
	if !kept.HasVisitorID || kept.VisitorID != VisitorID(testKey, testAID) {
		t.Errorf("VisitorID = %d (%v), want the keyed hash %d", kept.VisitorID, kept.HasVisitorID, VisitorID(testKey, testAID))
	}
}
