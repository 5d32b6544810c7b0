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
	"fmt"
	"slices"
	"strings"
	"testing"
)

// dummy is a tenant of the site Plausible's own tests use.
var dummy = Policy{
	Domains:             []string{"dummy.site"},
	QueryParamAllowlist: []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"},
	GeoPrecision:        PrecisionCity,
}

// TestPlausibleSemantics is Plausible's documented behaviour of
// POST /api/event, row by row, as this service has it: the Events API
// reference (plausible.io/docs/events-api) and the behaviour its own
// tests pin (plausible/analytics, lib/plausible/ingestion/request.ex and
// test/plausible/ingestion/request_test.exs). Each body goes through
// decoding (Raw) and Reduce, as the server runs them. Where this service
// differs on purpose, the row says so and why: it drops a part Plausible
// refuses the whole event for, or it keeps less, for the privacy policy.
func TestPlausibleSemantics(t *testing.T) {
	// props is a props object of n properties "1" ... "n", each "foo".
	props := func(n int) string {
		var kv []string
		for i := 1; i <= n; i++ {
			kv = append(kv, fmt.Sprintf(`"%d":"foo"`, i))
		}
		return "{" + strings.Join(kv, ",") + "}"
	}
	tests := []struct {
		name   string
		body   string
		policy *Policy
		// undecodable: the body is refused before Reduce (400
		// malformed_json); refused: Reduce's reason; else kept and
		// checked by check.
		undecodable bool
		refused     Reason
		dropped     []DroppedPart
		check       func(t *testing.T, k Kept)
	}{
		// The body.
		{name: "a body that is not JSON is refused", body: `defnotjson`, undecodable: true},
		{name: "a JSON string is not an event, as Plausible refuses \"<script>\"", body: `"<script>"`, undecodable: true},
		{name: "an empty object is refused: it has no name and no url", body: `{}`, refused: ReasonInvalid},
		{
			name: "the Events API's long keys are read",
			body: `{"name":"pageview","url":"http://dummy.site/index","domain":"dummy.site","referrer":"https://example.com"}`,
			check: func(t *testing.T, k Kept) {
				if k.Name != "pageview" || k.Path != "/index" || k.Referrer != "example.com" {
					t.Errorf("kept %q %q %q", k.Name, k.Path, k.Referrer)
				}
			},
		},
		{
			name: "keys this service does not read (v, i, sw, revenue) are ignored",
			body: `{"n":"pageview","u":"http://dummy.site/","d":"dummy.site","v":137,"i":false,"sw":1440,"revenue":{"amount":"12.3","currency":"USD"}}`,
		},

		// The name.
		{
			name: "a numeric event name, as 404 tracking sends it, is its decimal text",
			body: `{"n":404,"d":"dummy.site","u":"http://dummy.site/index"}`,
			check: func(t *testing.T, k Kept) {
				if k.Name != "404" {
					t.Errorf("Name = %q, want 404", k.Name)
				}
			},
		},
		{name: "a missing name is refused", body: `{"d":"dummy.site","u":"https://dummy.site/"}`, refused: ReasonInvalid},
		{name: "a null name is refused", body: `{"name":null,"d":"dummy.site","u":"https://dummy.site/"}`, refused: ReasonInvalid},
		{name: "a name that cannot be a string (a list) is refused", body: `{"name":["list","of","things"],"d":"dummy.site","u":"https://dummy.site/"}`, undecodable: true},
		{name: "a name over 120 characters is refused", body: `{"name":"` + strings.Repeat("a", 121) + `","d":"dummy.site","u":"https://dummy.site/"}`, refused: ReasonInvalid},
		{name: "a name of 120 characters is kept, however many bytes they take", body: `{"name":"` + strings.Repeat("ü", 120) + `","d":"dummy.site","u":"https://dummy.site/"}`},

		// The URL.
		{name: "a url is required", body: `{"n":"pageview","d":"dummy.site"}`, refused: ReasonInvalid},
		{name: "a data: url is refused", body: `{"n":"pageview","d":"dummy.site","u":"data:text/html,%3Cscript%3Ealert%28%27hi%27%29%3B%3C%2Fscript%3E"}`, refused: ReasonInvalid},
		{name: "a url over 2000 bytes is refused", body: `{"n":"pageview","d":"dummy.site","u":"https://dummy.site/` + strings.Repeat("a", 5000) + `"}`, refused: ReasonInvalid},
		{
			// Plausible records it with the host "(none)"; a URL without a
			// host names no page (about:, data:, a bare path) and nothing
			// is made of it here.
			name: "a url without a host is refused, where Plausible records the host (none)",
			body: `{"n":"pageview","d":"dummy.site","u":"about:config"}`, refused: ReasonInvalid,
		},
		{
			name: "an app url keeps its host and path, as Plausible's docs suggest for mobile apps",
			body: `{"n":"pageview","d":"dummy.site","u":"app://localhost/login?utm_source=push"}`,
			check: func(t *testing.T, k Kept) {
				if k.Hostname != "localhost" || k.Path != "/login?utm_source=push" || k.Source != "push" {
					t.Errorf("kept %q %q source %q; want localhost, /login?utm_source=push, push", k.Hostname, k.Path, k.Source)
				}
			},
		},
		{
			name:  "the path is the url's path without the fragment",
			body:  `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/pictures/index.html#foo"}`,
			check: wantPath("/pictures/index.html"),
		},
		{
			name:  "query parameters are read: the allowlisted ones are kept",
			body:  `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/pictures/index.html?foo=bar&utm_source=bam"}`,
			check: wantPath("/pictures/index.html?utm_source=bam"),
		},

		// Hash mode.
		{
			name:  "in hash mode (h: 1) a route fragment is part of the path",
			body:  `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/app#/pricing","h":1}`,
			check: wantPath("/app#/pricing"),
		},
		{
			name:  "hashMode is the long key of h",
			body:  `{"name":"pageview","domain":"dummy.site","url":"http://dummy.site/app#/pricing","hashMode":1}`,
			check: wantPath("/app#/pricing"),
		},
		{
			// Plausible appends any fragment in hash mode ("#foo"). Only a
			// route ("#/", "#!/") is kept here, without its own query:
			// an anchor says nothing of the page and a fragment can carry
			// an OAuth token (#access_token=...).
			name:  "in hash mode a fragment that is not a route is dropped, where Plausible keeps it",
			body:  `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/pictures/index.html#foo","h":1}`,
			check: wantPath("/pictures/index.html"),
		},

		// The domain.
		{
			name: "an event can be built from its url alone: the domain is the url's host",
			body: `{"name":"pageview","url":"http://dummy.site"}`,
			check: func(t *testing.T, k Kept) {
				if k.Hostname != "dummy.site" || k.Path != "/" {
					t.Errorf("kept %q %q", k.Hostname, k.Path)
				}
			},
		},
		{name: "an empty domain is the url's host too", body: `{"n":"pageview","d":"","u":"http://dummy.site/"}`},
		{name: "a url alone of another site is refused as foreign", body: `{"n":"pageview","u":"http://crash.site/"}`, refused: ReasonForeignDomain},
		{
			// Plausible records the event for each listed site it has.
			// A tenant is one site whatever its domains: it keeps the
			// event once when any listed domain is its own, and the other
			// domains are other sites' business.
			name: "a roll-up domain list is kept once when one of its domains is the tenant's",
			body: `{"n":"pageview","d":"dummy.site,crash.site","u":"http://dummy.site/index"}`,
		},
		{name: "a roll-up domain list is kept when each of its domains is the tenant's", body: `{"n":"pageview","d":"dummy.site, www.dummy.site","u":"http://dummy.site/"}`},
		{name: "a domain list none of whose domains is the tenant's is refused", body: `{"n":"pageview","d":"crash.site,other.site","u":"http://dummy.site/"}`, refused: ReasonForeignDomain},
		{name: "www. is stripped from the domain before it is matched", body: `{"n":"pageview","d":"www.dummy.site","u":"http://www.dummy.site/"}`},
		{name: "www. is stripped from the url's host when it stands for the domain", body: `{"n":"pageview","u":"http://www.dummy.site/"}`},
		{
			name:   "www. is stripped from the tenant's domain too",
			body:   `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/"}`,
			policy: &Policy{Domains: []string{"www.dummy.site"}, GeoPrecision: PrecisionCity},
		},
		{
			// Plausible strips it from the stored host name too; the row
			// keeps the host as it was, like the referrer's: the dashboard
			// may group them.
			name: "the stored host name keeps its www.",
			body: `{"n":"pageview","d":"dummy.site","u":"http://www.dummy.site/"}`,
			check: func(t *testing.T, k Kept) {
				if k.Hostname != "www.dummy.site" {
					t.Errorf("Hostname = %q", k.Hostname)
				}
			},
		},

		// The referrer.
		{
			name: "a referrer over 2000 bytes is cut, not refused: its host is kept",
			body: `{"n":"pageview","d":"dummy.site","u":"https://dummy.site/","r":"https://google.com/` + strings.Repeat("a", 2500) + `"}`,
			check: func(t *testing.T, k Kept) {
				if k.Referrer != "google.com" {
					t.Errorf("Referrer = %q, want google.com", k.Referrer)
				}
			},
		},

		// Props.
		{
			name:  "props are read as an object or as a JSON string of one",
			body:  `{"n":"Signup","d":"dummy.site","u":"https://dummy.site/","p":"{\"custom1\":\"property1\",\"custom2\":\"property2\"}"}`,
			check: wantProps(`{"custom1":"property1","custom2":"property2"}`),
		},
		{
			name:  "legacy meta props are read when there are no props",
			body:  `{"n":"Signup","d":"dummy.site","u":"https://dummy.site/","m":"{\"plan\":\"pro\"}"}`,
			check: wantProps(`{"plan":"pro"}`),
		},
		{
			name:    "more than 30 props are cut to 30",
			body:    `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","props":` + props(50) + `}`,
			dropped: []DroppedPart{DroppedPropOverLimit},
			check: func(t *testing.T, k Kept) {
				var got map[string]string
				if err := json.Unmarshal(k.Props, &got); err != nil || len(got) != MaxPropsKeys {
					t.Errorf("Props = %s (%v), want %d of them", k.Props, err, MaxPropsKeys)
				}
			},
		},
		{
			name:    "nested and list values are dropped, the other props kept",
			body:    `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","props":{"user":{"id":1},"tags":["a"],"plan":"pro"}}`,
			dropped: []DroppedPart{DroppedPropNested},
			check:   wantProps(`{"plan":"pro"}`),
		},
		{
			name:  "empty, blank and null values are dropped",
			body:  `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","props":{"a":"","b":"  ","c":null,"plan":"pro"}}`,
			check: wantProps(`{"plan":"pro"}`),
		},
		{
			name:    "an empty key is dropped",
			body:    `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","props":{"":"x","plan":"pro"}}`,
			dropped: []DroppedPart{DroppedPropEmptyKey},
			check:   wantProps(`{"plan":"pro"}`),
		},
		{
			name:    "a prop key over 300 bytes is dropped, not the event, which Plausible refuses",
			body:    `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","props":{"` + strings.Repeat("a", 500) + `":"abc","plan":"pro"}}`,
			dropped: []DroppedPart{DroppedPropTooLong},
			check:   wantProps(`{"plan":"pro"}`),
		},
		{
			name:    "a prop value over 2000 bytes is dropped, not the event, which Plausible refuses",
			body:    `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","props":{"abc":"` + strings.Repeat("a", 2500) + `","plan":"pro"}}`,
			dropped: []DroppedPart{DroppedPropTooLong},
			check:   wantProps(`{"plan":"pro"}`),
		},
		{
			name:    "props that are not an object are dropped, the event kept",
			body:    `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","p":"not json"}`,
			dropped: []DroppedPart{DroppedProps},
			check:   wantProps(""),
		},

		// Engagement.
		{
			name: "an engagement event is engagement on the pageview's page, not a custom event",
			body: `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/blog/post?utm_source=x#top","sd":45,"e":12000,"p":"{\"author\":\"ann\"}","v":30}`,
			check: func(t *testing.T, k Kept) {
				if k.Name != EngagementEvent || k.Path != "/blog/post?utm_source=x" ||
					!k.HasScrollDepth || k.ScrollDepth != 45 || !k.HasEngagedMs || k.EngagedMs != 12000 {
					t.Errorf("kept %+v", k)
				}
			},
		},
		{
			name:  "an engagement event's values may be strings of integers",
			body:  `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/","sd":"45","e":"1200"}`,
			check: wantEngagement(45, true, 1200, true),
		},
		{
			name:  "a scroll depth over 100 is 100",
			body:  `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/","sd":130,"e":10}`,
			check: wantEngagement(100, true, 10, true),
		},
		{
			name:    "an engaged time of 30 days or more is unknown, the scroll depth kept",
			body:    fmt.Sprintf(`{"n":"engagement","d":"dummy.site","u":"http://dummy.site/","sd":20,"e":%d}`, int64(MaxEngagementMs)),
			dropped: []DroppedPart{DroppedEngagementTime},
			check:   wantEngagement(20, true, 0, false),
		},
		{
			name:    "a negative scroll depth is unknown, the engaged time kept",
			body:    `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/","sd":-1,"e":3000}`,
			dropped: []DroppedPart{DroppedScrollDepth},
			check:   wantEngagement(0, false, 3000, true),
		},
		{
			// The tracker sends sd: NaN, which JSON writes as null, when
			// the document has no height.
			name:  "a null scroll depth is unknown without a note",
			body:  `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/","sd":null,"e":3000}`,
			check: wantEngagement(0, false, 3000, true),
		},
		{name: "an engagement event with neither sd nor e is refused", body: `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/"}`, refused: ReasonInvalid},
		{name: "an engagement event whose sd and e are not integers is refused", body: `{"n":"engagement","d":"dummy.site","u":"http://dummy.site/","sd":45.5,"e":"soon"}`, refused: ReasonInvalid},
		{
			name:  "sd and e of other events are not read",
			body:  `{"n":"pageview","d":"dummy.site","u":"http://dummy.site/","sd":45,"e":1000}`,
			check: wantEngagement(0, false, 0, false),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var raw Raw
			if err := json.Unmarshal([]byte(tt.body), &raw); err != nil {
				if !tt.undecodable {
					t.Fatalf("Unmarshal: %v", err)
				}
				return
			}
			if tt.undecodable {
				t.Fatalf("decoded %+v, want a body that cannot be decoded", raw)
			}
			p := dummy
			if tt.policy != nil {
				p = *tt.policy
			}
			kept, r := reduce(t, raw, browserRequest(), p)
			if reasonOf(r) != tt.refused {
				t.Fatalf("refusal %v, want %q", r, tt.refused)
			}
			if r != nil {
				return
			}
			if !slices.Equal(kept.Dropped, tt.dropped) {
				t.Errorf("Dropped = %v, want %v", kept.Dropped, tt.dropped)
			}
			if tt.check != nil {
				tt.check(t, kept)
			}
		})
	}
}

func wantPath(want string) func(*testing.T, Kept) {
	return func(t *testing.T, k Kept) {
		t.Helper()
		if k.Path != want {
			t.Errorf("Path = %q, want %q", k.Path, want)
		}
	}
}

func wantProps(want string) func(*testing.T, Kept) {
	return func(t *testing.T, k Kept) {
		t.Helper()
		if string(k.Props) != want {
			t.Errorf("Props = %s, want %s", k.Props, want)
		}
	}
}

func wantEngagement(sd int16, hasSD bool, ms int64, hasMs bool) func(*testing.T, Kept) {
	return func(t *testing.T, k Kept) {
		t.Helper()
		if k.ScrollDepth != sd || k.HasScrollDepth != hasSD || k.EngagedMs != ms || k.HasEngagedMs != hasMs {
			t.Errorf("scroll depth %d (%v), engaged %d ms (%v); want %d (%v), %d ms (%v)",
				k.ScrollDepth, k.HasScrollDepth, k.EngagedMs, k.HasEngagedMs, sd, hasSD, ms, hasMs)
		}
	}
}
