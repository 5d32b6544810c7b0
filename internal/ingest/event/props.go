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
	"io"
	"strconv"
	"strings"
	"unicode"
)

// Limits on custom properties: Plausible's, so that an event its API takes
// is one ours takes too.
const (
	// MaxPropsKeys is the most properties one event may carry.
	MaxPropsKeys = 30
	// MaxPropKeyBytes is the longest property name.
	MaxPropKeyBytes = 300
	// MaxPropValueBytes is the longest string value (and the longest
	// number, written out).
	MaxPropValueBytes = 2000
	// maxPropExponent bounds a number's decimal exponent. props is stored
	// as jsonb, whose numbers are PostgreSQL numerics; a short number such
	// as 1e999999 does not fit one, and one row PostgreSQL rejects fails
	// the COPY of its whole batch.
	maxPropExponent = 1000
)

// reduceProps filters the custom properties as Plausible does, dropping
// the properties it cannot keep rather than the event, and returns them as
// a compact JSON object with sorted keys (nil when none is left), with
// what it dropped noted in dropped:
//   - props that are not a JSON object (a string that is not one, an
//     array, malformed JSON): all of them (DroppedProps);
//   - a property whose value is an object or an array (DroppedPropNested);
//   - a property with an empty or blank key (DroppedPropEmptyKey);
//   - a property whose key is over MaxPropKeyBytes or whose value is over
//     MaxPropValueBytes (DroppedPropTooLong; Plausible refuses the event);
//   - a property PostgreSQL cannot store: a NUL, a number beyond numeric
//     (DroppedPropUnstorable);
//   - the properties after the MaxPropsKeys-th kept one
//     (DroppedPropOverLimit).
//
// A property whose value is null, empty or blank is dropped without a
// note, as Plausible does: trackers send those for "no value"
// (plan: user.plan ?? null). A key sent twice keeps the last value that can be kept.
//
// What is kept is scrubbed of personal data: a string value that is an
// absolute http(s) URL is reduced as the page URL is (reduceURLValue),
// and e-mail addresses, IP addresses and tokens are replaced by markers in
// every other string value and in keys (scrub).
func reduceProps(raw json.RawMessage, p Policy, dropped *droppedSet) []byte {
	if !present(raw) {
		return nil
	}
	props, ok := readProps(raw)
	if !ok {
		dropped.add(DroppedProps)
		return nil
	}
	kept := map[string]any{}
	for _, prop := range props {
		v, part, ok := propValue(prop)
		switch {
		case !ok:
			dropped.add(part)
			continue
		case v == nil:
			delete(kept, scrub(prop.key))
			continue
		}
		if part, ok := checkPropKey(prop.key); !ok {
			dropped.add(part)
			continue
		}
		key := scrub(prop.key)
		if _, replaces := kept[key]; !replaces && len(kept) == MaxPropsKeys {
			dropped.add(DroppedPropOverLimit)
			continue
		}
		if s, isString := v.(string); isString {
			if u, ok := reduceURLValue(s, p); ok {
				v = u
			} else {
				v = scrub(s)
			}
		}
		kept[key] = v
	}
	if len(kept) == 0 {
		return nil
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // jsonb is not HTML; keep "<" as it was sent
	if err := enc.Encode(kept); err != nil {
		// Unreachable: the map holds only strings, bools and numbers the
		// decoder accepted.
		dropped.add(DroppedProps)
		return nil
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n"))
}

// prop is one property as sent: its key, and its value's JSON text.
type prop struct {
	key   string
	value json.RawMessage
}

// readProps reads a JSON object's properties in the order sent, or says
// it is not one object.
func readProps(raw json.RawMessage) ([]prop, bool) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, false
	}
	var props []prop
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, false
		}
		key, _ := tok.(string) // an object's key is always a string token
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, false
		}
		props = append(props, prop{key: key, value: v})
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, false
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, false // more after the object
	}
	return props, true
}

// propValue is a property's value as a string, bool or json.Number, or
// nil for null and for an empty or blank string ("no value"); ok is false,
// with the part dropped, when it cannot be kept.
func propValue(pr prop) (value any, dropped DroppedPart, ok bool) {
	v := bytes.TrimSpace(pr.value)
	switch v[0] {
	case '{', '[':
		return nil, DroppedPropNested, false
	case 'n':
		return nil, 0, true
	case 't', 'f':
		return v[0] == 't', 0, true
	case '"':
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return nil, DroppedPropUnstorable, false // unreachable: the decoder read it
		}
		switch {
		case strings.TrimLeftFunc(s, unicode.IsSpace) == "":
			return nil, 0, true
		case len(s) > MaxPropValueBytes:
			return nil, DroppedPropTooLong, false
		case !cleanText(s):
			return nil, DroppedPropUnstorable, false // jsonb cannot hold \u0000
		}
		return s, 0, true
	}
	n := json.Number(v)
	if len(n) > MaxPropValueBytes {
		return nil, DroppedPropTooLong, false
	}
	if !storableNumber(n) {
		return nil, DroppedPropUnstorable, false
	}
	return n, 0, true
}

// checkPropKey says why a property's name cannot be kept.
func checkPropKey(key string) (dropped DroppedPart, ok bool) {
	switch {
	case strings.TrimLeftFunc(key, unicode.IsSpace) == "":
		return DroppedPropEmptyKey, false
	case len(key) > MaxPropKeyBytes:
		return DroppedPropTooLong, false
	case !cleanText(key):
		return DroppedPropUnstorable, false
	}
	return 0, true
}

// storableNumber says whether PostgreSQL's numeric can hold n: its
// decimal exponent is within maxPropExponent.
func storableNumber(n json.Number) bool {
	s := string(n)
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || exp > maxPropExponent || exp < -maxPropExponent {
			return false
		}
	}
	return true
}
