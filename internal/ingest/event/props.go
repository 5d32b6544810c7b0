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
	"io"
	"strconv"
	"strings"
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

// propsNotObject is what every malformed props value is refused with: the
// decoder's own message would quote the body.
func propsNotObject() *Refusal {
	return refuse(ReasonInvalid, "props must be a JSON object")
}

// reduceProps checks the custom properties against the limits and returns
// them as a compact JSON object with sorted keys, or nil when there are
// none. A property whose value is null is dropped, as Plausible does,
// because trackers send null for "no value" (plan: user.plan ?? null) and
// refusing the whole event for it would lose the page view.
//
// It reads token by token, so an oversized or nested object is refused at
// the first key past the limit rather than after decoding all of it.
func reduceProps(raw json.RawMessage) ([]byte, *Refusal) {
	if !present(raw) {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return nil, propsNotObject()
	}
	props := map[string]any{}
	for n := 1; dec.More(); n++ {
		tok, err := dec.Token()
		if err != nil {
			return nil, propsNotObject()
		}
		key, _ := tok.(string) // an object's key is always a string token
		if n > MaxPropsKeys {
			return nil, refuse(ReasonInvalid, fmt.Sprintf("props has more than %d keys", MaxPropsKeys))
		}
		if r := checkPropKey(key); r != nil {
			return nil, r
		}
		if tok, err = dec.Token(); err != nil {
			return nil, propsNotObject()
		}
		switch v := tok.(type) {
		case nil:
			delete(props, key)
		case bool:
			props[key] = v
		case string:
			if r := checkPropString(v); r != nil {
				return nil, r
			}
			props[key] = v
		case json.Number:
			if r := checkPropNumber(v); r != nil {
				return nil, r
			}
			props[key] = v
		default: // json.Delim: an object or array
			return nil, refuse(ReasonInvalid, "props values must be strings, numbers or booleans, not objects or arrays")
		}
	}
	if tok, err := dec.Token(); err != nil || tok != json.Delim('}') {
		return nil, propsNotObject()
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, refuse(ReasonInvalid, "props must be a single JSON object")
	}
	if len(props) == 0 {
		return nil, nil
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false) // jsonb is not HTML; keep "<" as it was sent
	if err := enc.Encode(props); err != nil {
		// Unreachable: the map holds only strings, bools and numbers the
		// decoder accepted.
		return nil, propsNotObject()
	}
	return bytes.TrimSuffix(out.Bytes(), []byte("\n")), nil
}

// checkPropKey refuses an empty, oversized or unstorable property name.
func checkPropKey(key string) *Refusal {
	switch {
	case key == "":
		return refuse(ReasonInvalid, "props keys must not be empty")
	case len(key) > MaxPropKeyBytes:
		return refuse(ReasonInvalid, fmt.Sprintf("props keys must be at most %d bytes", MaxPropKeyBytes))
	case !cleanText(key):
		return refuse(ReasonInvalid, "props keys must be UTF-8 text without NUL characters")
	}
	return nil
}

// checkPropString refuses an oversized or unstorable string value. NUL is
// refused because jsonb cannot hold \u0000.
func checkPropString(v string) *Refusal {
	switch {
	case len(v) > MaxPropValueBytes:
		return refuse(ReasonInvalid, fmt.Sprintf("props string values must be at most %d bytes", MaxPropValueBytes))
	case !cleanText(v):
		return refuse(ReasonInvalid, "props string values must be UTF-8 text without NUL characters")
	}
	return nil
}

// checkPropNumber refuses a number too long, or too large or small for
// PostgreSQL's numeric.
func checkPropNumber(v json.Number) *Refusal {
	s := string(v)
	if len(s) > MaxPropValueBytes {
		return refuse(ReasonInvalid, fmt.Sprintf("props numbers must be at most %d bytes written out", MaxPropValueBytes))
	}
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		exp, err := strconv.Atoi(strings.TrimPrefix(s[i+1:], "+"))
		if err != nil || exp > maxPropExponent || exp < -maxPropExponent {
			return refuse(ReasonInvalid, fmt.Sprintf("props numbers must have an exponent between -%d and %d", maxPropExponent, maxPropExponent))
		}
	}
	return nil
}
