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
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRawUnmarshalJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want Raw
	}{
		{
			name: "long keys are read",
			body: `{"name":"pageview","url":"https://acme.com/","domain":"acme.com","referrer":"https://g.com/","props":{"plan":"pro"}}`,
			want: Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com", Referrer: "https://g.com/", Props: json.RawMessage(`{"plan":"pro"}`)},
		},
		{
			name: "Plausible's tracker's short keys are read, with props as a JSON-encoded string",
			body: `{"n":"pageview","u":"https://acme.com/","d":"acme.com","r":null,"p":"{\"plan\":\"pro\"}","h":1,"m":"{}","sw":1440,"i":true,"revenue":{"amount":1}}`,
			want: Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com", HashRouting: true, Props: json.RawMessage(`{"plan":"pro"}`)},
		},
		{
			name: "the SDK's body is read: title, anonymous id and props as an object",
			body: `{"n":"Signup","u":"https://acme.com/","d":"acme.com","r":null,"t":"Acme","aid":"q0uV-d6Xh3xS_2kPz9Lm4A","p":{"plan":"pro"}}`,
			want: Raw{Name: "Signup", URL: "https://acme.com/", Domain: "acme.com", Title: "Acme", AnonymousID: "q0uV-d6Xh3xS_2kPz9Lm4A", Props: json.RawMessage(`{"plan":"pro"}`)},
		},
		{
			name: "long keys title and anonymous_id are read",
			body: `{"name":"pageview","title":"Acme","anonymous_id":"0f8fad5b-d9cb-469f-a165-70867728950e","h":true}`,
			want: Raw{Name: "pageview", Title: "Acme", AnonymousID: "0f8fad5b-d9cb-469f-a165-70867728950e", HashRouting: true},
		},
		{
			name: "h other than 1 or true is off",
			body: `{"n":"pageview","h":0}`,
			want: Raw{Name: "pageview"},
		},
		{
			name: "the long key wins when both are sent",
			body: `{"name":"long","n":"short","url":"https://long/","u":"https://short/","domain":"long.com","d":"short.com","referrer":"https://l/","r":"https://s/","props":{"a":1},"p":{"b":2}}`,
			want: Raw{Name: "long", URL: "https://long/", Domain: "long.com", Referrer: "https://l/", Props: json.RawMessage(`{"a":1}`)},
		},
		{
			name: "a null long key gives way to the short one",
			body: `{"name":null,"n":"short","props":null,"p":{"b":2}}`,
			want: Raw{Name: "short", Props: json.RawMessage(`{"b":2}`)},
		},
		{
			name: "null props are none",
			body: `{"n":"pageview","p":null}`,
			want: Raw{Name: "pageview"},
		},
		{
			name: "props as an empty string are none",
			body: `{"n":"pageview","p":""}`,
			want: Raw{Name: "pageview"},
		},
		{
			name: "props as a string that is not an object are passed on for Reduce to refuse",
			body: `{"n":"pageview","p":"not json"}`,
			want: Raw{Name: "pageview", Props: json.RawMessage(`not json`)},
		},
		{
			name: "props that are not an object are passed on for Reduce to refuse",
			body: `{"n":"pageview","props":[1,2]}`,
			want: Raw{Name: "pageview", Props: json.RawMessage(`[1,2]`)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Raw
			if err := json.Unmarshal([]byte(tt.body), &got); err != nil {
				t.Fatalf("Unmarshal: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Raw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRawUnmarshalJSONErrors(t *testing.T) {
	tests := []struct {
		name string
		body string
		want string
	}{
		{name: "a body that is not an object is an error", body: `["pageview"]`, want: "must be a JSON object, not array"},
		{name: "a name that is neither a string nor an integer is an error", body: `{"n":12.5}`, want: `"n" must be a JSON string or integer`},
		{name: "a name that is a list is an error, as in Plausible", body: `{"name":["list","of","things"]}`, want: `"name" must be a JSON string or integer`},
		{name: "a name that is true is an error", body: `{"n":true}`, want: `"n" must be a JSON string or integer`},
		{name: "a url that is not a string is an error", body: `{"u":{"href":"x"}}`, want: `"u" must be a JSON string, not object`},
		{name: "a body that is not JSON is an error", body: `{"n":`, want: "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got Raw
			err := json.Unmarshal([]byte(tt.body), &got)
			if err == nil {
				t.Fatalf("Unmarshal(%s) = %+v, want an error", tt.body, got)
			}
			if !strings.Contains(err.Error(), tt.want) || strings.Contains(err.Error(), "rawWire") {
				t.Errorf("Unmarshal(%s) error = %q, want it to say %q in the body's terms", tt.body, err, tt.want)
			}
		})
	}
}

// TestPlausibleTrackerBody runs a body exactly as Plausible's script sends
// it through decoding and Reduce.
func TestPlausibleTrackerBody(t *testing.T) {
	body := `{"n":"pageview","u":"https://acme.com/blog?utm_source=x&secret=1#h","d":"acme.com","r":"https://news.ycombinator.com/","p":"{\"author\":\"ann\"}"}`
	var raw Raw
	if err := json.Unmarshal([]byte(body), &raw); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	kept, r := reduce(t, raw, browserRequest(), acme)
	if r != nil {
		t.Fatalf("refused: %v", r)
	}
	if kept.Path != "/blog?utm_source=x" || kept.Referrer != "news.ycombinator.com" || string(kept.Props) != `{"author":"ann"}` {
		t.Errorf("kept %+v", kept)
	}
}
