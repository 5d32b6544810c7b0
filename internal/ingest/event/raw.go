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
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Raw is the request body as the Millimetric SDK sends it, which is the body
// Plausible's tracker and Events API send plus two fields, so that existing
// snippets and server-side integrations work unchanged.
//
// Both long and short keys are accepted: name/n, url/u, domain/d,
// referrer/r, props/p, title/t, anonymous_id/aid, hashMode/h. When both
// are present the long one wins; null counts as absent (the tracker sends
// "r": null when there is no referrer). Plausible's legacy meta/m are
// props too, when props/p are absent. The name may be a JSON integer, as
// Plausible's 404 tracking sends it in some versions ("n": 404 is the
// name "404"). "h" (hash routing) is read as a flag. "sd" and "e" are
// the scroll depth and engaged time of Plausible's engagement events.
// Other keys, such as "v" (the tracker's version), "sw" (screen width),
// "i" (interactive) and "revenue", are ignored: nothing is kept that
// Reduce does not know to be safe.
type Raw struct {
	// Name is the event name: "pageview", "engagement" or a custom
	// event's name.
	Name string
	// URL is the page's absolute URL, as location.href gives it.
	URL string
	// Domain is the site's domain as configured in the snippet; it may
	// list several, comma-separated ("a.com,b.com"), or be "" (the page's
	// host then stands for it).
	Domain string
	// Referrer is document.referrer, or "".
	Referrer string
	// Title is document.title, or "". Only the SDK sends it.
	Title string
	// AnonymousID is the browser's mm_aid from the SDK, or an id a
	// server-side caller keeps for its visitor; "" when there is none
	// (Plausible's tracker, localStorage unavailable). Reduce checks its
	// shape and keeps only its keyed hash (VisitorID).
	AnonymousID string
	// HashRouting is the "h" flag: the site routes by the URL's fragment
	// ("/#/pricing"), so the fragment's path is part of the page.
	HashRouting bool
	// Props is the custom properties object as sent, or nil. Plausible's
	// tracker sends it JSON-encoded in a string; UnmarshalJSON unwraps
	// that, so Props is the object's own JSON text (or whatever else was
	// sent, for Reduce to drop).
	Props json.RawMessage
	// ScrollDepth is an engagement event's "sd" as sent (a JSON number,
	// or a string of one), or nil. Reduce reads it.
	ScrollDepth json.RawMessage
	// EngagementTime is an engagement event's "e" as sent, in
	// milliseconds, or nil. Reduce reads it.
	EngagementTime json.RawMessage
}

// rawWire is Raw's wire form. Pointers and raw messages tell an absent or
// null key from an empty one, which "the long key wins" needs.
type rawWire struct {
	Name     json.RawMessage `json:"name"`
	N        json.RawMessage `json:"n"`
	URL      *string         `json:"url"`
	U        *string         `json:"u"`
	Domain   *string         `json:"domain"`
	D        *string         `json:"d"`
	Referrer *string         `json:"referrer"`
	R        *string         `json:"r"`
	Title    *string         `json:"title"`
	T        *string         `json:"t"`
	AnonID   *string         `json:"anonymous_id"`
	AID      *string         `json:"aid"`
	HashMode json.RawMessage `json:"hashMode"`
	H        json.RawMessage `json:"h"`
	Props    json.RawMessage `json:"props"`
	P        json.RawMessage `json:"p"`
	Meta     json.RawMessage `json:"meta"`
	M        json.RawMessage `json:"m"`
	SD       json.RawMessage `json:"sd"`
	E        json.RawMessage `json:"e"`
}

// UnmarshalJSON decodes Plausible's event body, long or short keys. It
// fails only when the body is not a JSON object or a known key has the
// wrong type; what the values mean is Reduce's to judge, so that every
// refusal carries a Reason.
func (r *Raw) UnmarshalJSON(data []byte) error {
	var w rawWire
	if err := json.Unmarshal(data, &w); err != nil {
		// The decoder's message names our wire struct; say it in the
		// body's own terms, for the 400 the client gets.
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			// Every typed field is a string; the name, props, h, sd and
			// e take any JSON value.
			return fmt.Errorf("event body: %q must be a JSON string, not %s", typeErr.Field, typeErr.Value)
		}
		if errors.As(err, &typeErr) {
			return fmt.Errorf("event body must be a JSON object, not %s", typeErr.Value)
		}
		return fmt.Errorf("event body: %w", err)
	}
	name, err := eventName(w.Name, w.N)
	if err != nil {
		return err
	}
	props, err := unwrapProps(first(first(w.Props, w.P), first(w.Meta, w.M)))
	if err != nil {
		return err
	}
	*r = Raw{
		Name:           name,
		URL:            either(w.URL, w.U),
		Domain:         either(w.Domain, w.D),
		Referrer:       either(w.Referrer, w.R),
		Title:          either(w.Title, w.T),
		AnonymousID:    either(w.AnonID, w.AID),
		HashRouting:    flag(first(w.HashMode, w.H)),
		Props:          props,
		ScrollDepth:    valueOf(w.SD),
		EngagementTime: valueOf(w.E),
	}
	return nil
}

// eventName is the name sent under "name", else "n": a string, or an
// integer written out in decimal (Plausible's 404 tracking sends
// "n": 404). Any other value is an error, as it is in Plausible.
func eventName(long, short json.RawMessage) (string, error) {
	key, m := "name", long
	if !present(long) {
		key, m = "n", short
	}
	if !present(m) {
		return "", nil
	}
	m = bytes.TrimSpace(m)
	if m[0] == '"' {
		var s string
		err := json.Unmarshal(m, &s)
		return s, err
	}
	if isInteger(m) {
		return string(m), nil
	}
	return "", fmt.Errorf("event body: %q must be a JSON string or integer", key)
}

// isInteger says whether a JSON number is written as an integer: digits,
// with an optional minus, and no fraction or exponent.
func isInteger(m []byte) bool {
	digits := bytes.TrimPrefix(m, []byte("-"))
	if len(digits) == 0 {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// valueOf is a raw value that was sent and is not null, else nil; a copy,
// because json.Unmarshal's buffer belongs to the caller.
func valueOf(m json.RawMessage) json.RawMessage {
	if !present(m) {
		return nil
	}
	return bytes.Clone(bytes.TrimSpace(m))
}

// flag reads Plausible's "h": 1 (or true) turns it on; anything else,
// absent included, leaves it off.
func flag(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return bytes.Equal(m, []byte("1")) || bytes.Equal(m, []byte("true"))
}

// either is the long key's value when it was sent, else the short key's.
func either(long, short *string) string {
	switch {
	case long != nil:
		return *long
	case short != nil:
		return *short
	}
	return ""
}

// first is the long key's raw value when it was sent, else the short key's.
func first(long, short json.RawMessage) json.RawMessage {
	if present(long) {
		return long
	}
	return short
}

// present says whether a raw value was sent and is not null.
func present(m json.RawMessage) bool {
	m = bytes.TrimSpace(m)
	return len(m) > 0 && !bytes.Equal(m, []byte("null"))
}

// unwrapProps returns the props object's JSON text. Plausible's tracker
// sends props as a JSON-encoded string ("p": "{\"plan\":\"pro\"}"), the
// Events API as an object; both become the object's text. A copy is made
// because json.Unmarshal's buffer belongs to the caller.
func unwrapProps(m json.RawMessage) (json.RawMessage, error) {
	if !present(m) {
		return nil, nil
	}
	m = bytes.TrimSpace(m)
	if m[0] != '"' {
		return bytes.Clone(m), nil
	}
	var s string
	if err := json.Unmarshal(m, &s); err != nil {
		return nil, err
	}
	if s == "" {
		return nil, nil
	}
	return json.RawMessage(s), nil
}
