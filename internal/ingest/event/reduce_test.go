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
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// Real User-Agents, one per family the tests care about.
const (
	uaChromeWindows  = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaFirefoxLinux   = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
	uaSafariMac      = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15"
	uaSafariIPhone   = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaSafariIPad     = "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1"
	uaChromeAndroid  = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
	uaChromeTablet   = "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaEdgeWindows    = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.2592.87"
	uaOperaWindows   = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/111.0.0.0"
	uaSamsung        = "Mozilla/5.0 (Linux; Android 14; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/25.0 Chrome/121.0.0.0 Mobile Safari/537.36"
	uaChromeOS       = "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"
	uaFirefoxAndroid = "Mozilla/5.0 (Android 14; Mobile; rv:128.0) Gecko/128.0 Firefox/128.0"
	uaCubotPhone     = "Mozilla/5.0 (Linux; Android 9; CUBOT X19) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)

// testKey is a tenant's visitor key; keyB another tenant's.
var (
	testKey = []byte(strings.Repeat("k", VisitorKeySize))
	keyB    = []byte(strings.Repeat("l", VisitorKeySize))
)

// testAID is an anonymous id of the SDK's shape.
const testAID = "q0uV-d6Xh3xS_2kPz9Lm4A"

// visitor is the address most tests send from.
var visitor = netip.MustParseAddr("203.0.113.77")

// fakeGeo is a location database of a few addresses. It stands in for
// geoip.DB, which has its own tests; here the subject is what Reduce keeps.
type fakeGeo map[netip.Addr]Location

func (g fakeGeo) Lookup(a netip.Addr) (Location, bool) {
	loc, ok := g[a]
	return loc, ok
}

var berlin = Location{Country: "DE", Region: "DE-BE", City: "Berlin"}

// testGeo knows visitor is in Berlin.
var testGeo = fakeGeo{visitor: berlin}

// acme is the tenant most tests run as.
var acme = Policy{
	Domains:             []string{"acme.com", "*.acme.com"},
	QueryParamAllowlist: []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref"},
	GeoPrecision:        PrecisionCity,
}

func pageview(url string) Raw {
	return Raw{Name: "pageview", URL: url, Domain: "acme.com"}
}

func browserRequest() Request {
	return Request{
		Addr:       visitor,
		UserAgent:  uaFirefoxLinux,
		ReceivedAt: time.Date(2026, 5, 17, 10, 30, 0, 0, time.UTC),
	}
}

// reduce runs Reduce as most tests do: acme, testGeo, testKey.
func reduce(t *testing.T, raw Raw, req Request, p Policy) (Kept, *Refusal) {
	t.Helper()
	kept, err := Reduce(raw, req, p, testGeo, testKey)
	if err == nil {
		return kept, nil
	}
	var r *Refusal
	if !errors.As(err, &r) {
		t.Fatalf("Reduce returned %v, want a row or a *Refusal", err)
	}
	return kept, r
}

func TestReduceKeepsPathAndAllowlistedParameters(t *testing.T) {
	tests := []struct {
		name      string
		url       string
		policy    Policy
		wantHost  string
		wantPath  string
		wantUTM   [5]string
		wantClick string
	}{
		{
			name:     "the fragment is dropped",
			url:      "https://acme.com/pricing#access_token=secret",
			wantHost: "acme.com",
			wantPath: "/pricing",
		},
		{
			name:     "an empty path is kept as /",
			url:      "https://acme.com",
			wantHost: "acme.com",
			wantPath: "/",
		},
		{
			name:     "an allowlisted utm_source is kept but email is dropped with its value",
			url:      "https://acme.com/signup?email=jane%40example.com&utm_source=newsletter",
			wantHost: "acme.com",
			wantPath: "/signup?utm_source=newsletter",
			wantUTM:  [5]string{"newsletter"},
		},
		{
			name:     "kept parameters are sorted and re-encoded, with all their values",
			url:      "https://acme.com/?utm_medium=e+mail&ref=b&token=x&ref=a&utm_source=news%20letter",
			wantHost: "acme.com",
			wantPath: "/?ref=b&ref=a&utm_medium=e+mail&utm_source=news+letter",
			wantUTM:  [5]string{"news letter", "e mail"},
		},
		{
			name:     "every UTM parameter is kept in its own field when allowlisted",
			url:      "https://acme.com/?utm_source=s&utm_medium=m&utm_campaign=c&utm_term=t&utm_content=x",
			wantHost: "acme.com",
			wantPath: "/?utm_campaign=c&utm_content=x&utm_medium=m&utm_source=s&utm_term=t",
			wantUTM:  [5]string{"s", "m", "c", "t", "x"},
		},
		{
			name:     "a UTM parameter that is not allowlisted is dropped from the path and its field",
			url:      "https://acme.com/?utm_source=s&utm_term=jane",
			policy:   Policy{Domains: []string{"acme.com"}, QueryParamAllowlist: []string{"utm_source"}},
			wantHost: "acme.com",
			wantPath: "/?utm_source=s",
			wantUTM:  [5]string{"s"},
		},
		{
			name:     "the allowlist matches names exactly and case-sensitively",
			url:      "https://acme.com/?UTM_SOURCE=x&utm_source_id=y&Ref=z",
			wantHost: "acme.com",
			wantPath: "/",
		},
		{
			name:      "a click id's name is recorded but not its value",
			url:       "https://acme.com/landing?gclid=Cj0KCQjw-secret-click&utm_source=google",
			wantHost:  "acme.com",
			wantPath:  "/landing?utm_source=google",
			wantUTM:   [5]string{"google"},
			wantClick: "gclid",
		},
		{
			name:      "fbclid is recorded as the click id type",
			url:       "https://acme.com/?fbclid=IwAR-secret",
			wantHost:  "acme.com",
			wantPath:  "/",
			wantClick: "fbclid",
		},
		{
			name:      "an allowlisted click id keeps its value in the path, as the tenant chose",
			url:       "https://acme.com/?msclkid=abc",
			policy:    Policy{Domains: []string{"acme.com"}, QueryParamAllowlist: []string{"msclkid"}},
			wantHost:  "acme.com",
			wantPath:  "/?msclkid=abc",
			wantClick: "msclkid",
		},
		{
			name:     "userinfo in the URL is never kept",
			url:      "https://jane:hunter2@Shop.ACME.com:8443/cart",
			wantHost: "shop.acme.com",
			wantPath: "/cart",
		},
		{
			name:     "the host is lower-cased and loses its port and trailing dot",
			url:      "HTTP://WWW.Acme.COM.:8080/A/b",
			wantHost: "www.acme.com",
			wantPath: "/A/b",
		},
		{
			name:     "an escaped path stays escaped, so a kept ? cannot be confused with the query",
			url:      "https://acme.com/a%3Fb/%C3%BCber?ref=x",
			wantHost: "acme.com",
			wantPath: "/a%3Fb/%C3%BCber?ref=x",
		},
		{
			name:     "a query pair that cannot be read is dropped, the others kept",
			url:      "https://acme.com/?ref=ok&bad=%zz&x;y=1",
			wantHost: "acme.com",
			wantPath: "/?ref=ok",
		},
		{
			name:     "a UTM value that PostgreSQL could not store is left out of its field",
			url:      "https://acme.com/?utm_source=%00&utm_medium=%FF",
			wantHost: "acme.com",
			wantPath: "/?utm_medium=%FF&utm_source=%00",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.policy
			if p.Domains == nil {
				p = acme
			}
			kept, r := reduce(t, pageview(tt.url), browserRequest(), p)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if kept.Hostname != tt.wantHost {
				t.Errorf("Hostname = %q, want %q", kept.Hostname, tt.wantHost)
			}
			if kept.Path != tt.wantPath {
				t.Errorf("Path = %q, want %q", kept.Path, tt.wantPath)
			}
			gotUTM := [5]string{kept.UTMSource, kept.UTMMedium, kept.UTMCampaign, kept.UTMTerm, kept.UTMContent}
			if gotUTM != tt.wantUTM {
				t.Errorf("UTM = %q, want %q", gotUTM, tt.wantUTM)
			}
			if kept.ClickIDType != tt.wantClick {
				t.Errorf("ClickIDType = %q, want %q", kept.ClickIDType, tt.wantClick)
			}
			for _, secret := range []string{"secret", "jane", "hunter2", "token", "email"} {
				if strings.Contains(kept.Path, secret) {
					t.Errorf("Path %q keeps %q", kept.Path, secret)
				}
			}
		})
	}
}

func TestReduceReferrer(t *testing.T) {
	tests := []struct {
		name     string
		url      string
		referrer string
		want     string
	}{
		{
			name:     "a referrer is reduced to its host",
			url:      "https://acme.com/",
			referrer: "https://www.google.com/search?q=jane+doe+acme#top",
			want:     "www.google.com",
		},
		{
			name:     "a referrer's host loses case, port, userinfo and trailing dot",
			url:      "https://acme.com/",
			referrer: "http://bob:pw@News.Example.ORG.:8080/item?id=1",
			want:     "news.example.org",
		},
		{
			name:     "a referrer on the page's own host is dropped as internal navigation",
			url:      "https://acme.com/pricing",
			referrer: "https://ACME.com/?utm_source=x",
			want:     "",
		},
		{
			name:     "a referrer on another of the tenant's hosts is kept",
			url:      "https://shop.acme.com/",
			referrer: "https://acme.com/",
			want:     "acme.com",
		},
		{
			name: "no referrer is empty",
			url:  "https://acme.com/",
			want: "",
		},
		{
			name:     "a referrer without a host is empty",
			url:      "https://acme.com/",
			referrer: "about:blank",
			want:     "",
		},
		{
			name:     "a referrer that cannot be parsed is empty",
			url:      "https://acme.com/",
			referrer: "http://[::1",
			want:     "",
		},
		{
			name:     "an app referrer keeps its host",
			url:      "https://acme.com/",
			referrer: "android-app://com.google.android.gm/",
			want:     "com.google.android.gm",
		},
		{
			name:     "a referrer at the visitor's own address is dropped",
			url:      "https://acme.com/",
			referrer: "http://" + visitor.String() + "/",
			want:     "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := pageview(tt.url)
			raw.Referrer = tt.referrer
			kept, r := reduce(t, raw, browserRequest(), acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if kept.Referrer != tt.want {
				t.Errorf("Referrer = %q, want %q", kept.Referrer, tt.want)
			}
		})
	}
}

func TestReduceDomain(t *testing.T) {
	tests := []struct {
		name   string
		domain string
		want   Reason // "" means kept
	}{
		{name: "the tenant's domain is kept", domain: "acme.com"},
		{name: "the tenant's domain in another case is kept", domain: "ACME.com"},
		{name: "a subdomain matching the wildcard is kept", domain: "shop.acme.com"},
		{name: "several domains, all the tenant's, are kept", domain: "acme.com, shop.acme.com"},
		{name: "another site's domain is refused", domain: "evil.com", want: ReasonForeignDomain},
		{name: "a domain that only ends like the tenant's is refused", domain: "notacme.com", want: ReasonForeignDomain},
		{name: "several domains with one of the tenant's are kept, as a roll-up", domain: "acme.com,evil.com"},
		{name: "several domains none of them the tenant's are refused", domain: "evil.com,notacme.com", want: ReasonForeignDomain},
		{name: "a missing domain is the page's host", domain: ""},
		{name: "a domain of only commas is the page's host", domain: " , ,"},
		{name: "an oversized domain field is dropped for the page's host", domain: strings.Repeat("evil.com,", 200)},
		{name: "www. is not counted against the tenant's domain", domain: "www.acme.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := pageview("https://acme.com/")
			raw.Domain = tt.domain
			_, r := reduce(t, raw, browserRequest(), acme)
			if got := reasonOf(r); got != tt.want {
				t.Errorf("reason = %q (%v), want %q", got, r, tt.want)
			}
		})
	}

	t.Run("a tenant with only a wildcard refuses its apex", func(t *testing.T) {
		p := Policy{Domains: []string{"*.acme.com"}, GeoPrecision: PrecisionCity}
		if _, r := reduce(t, pageview("https://acme.com/"), browserRequest(), p); reasonOf(r) != ReasonForeignDomain {
			t.Errorf("apex: reason = %q, want %q", reasonOf(r), ReasonForeignDomain)
		}
		raw := pageview("https://shop.acme.com/")
		raw.Domain = "shop.acme.com"
		if _, r := reduce(t, raw, browserRequest(), p); r != nil {
			t.Errorf("subdomain: refused: %v", r)
		}
	})
}

func TestReducePrecision(t *testing.T) {
	tests := []struct {
		name      string
		precision string
		geo       Geo
		want      Location
	}{
		{name: "City precision keeps country, region and city", precision: PrecisionCity, geo: testGeo, want: berlin},
		{name: "Region precision keeps country and region", precision: PrecisionRegion, geo: testGeo, want: Location{Country: "DE", Region: "DE-BE"}},
		{name: "Country precision keeps the country only", precision: PrecisionCountry, geo: testGeo, want: Location{Country: "DE"}},
		{name: "an unknown precision keeps the country only", precision: "Street", geo: testGeo, want: Location{Country: "DE"}},
		{name: "an empty precision keeps the country only", precision: "", geo: testGeo, want: Location{Country: "DE"}},
		{name: "no database leaves the location unknown", precision: PrecisionCity, geo: nil, want: Location{}},
		{name: "an address the database does not know is unknown", precision: PrecisionCity, geo: fakeGeo{}, want: Location{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := acme
			p.GeoPrecision = tt.precision
			kept, err := Reduce(pageview("https://acme.com/"), browserRequest(), p, tt.geo, testKey)
			if err != nil {
				t.Fatalf("Reduce: %v", err)
			}
			if got := (Location{kept.Country, kept.Region, kept.City}); got != tt.want {
				t.Errorf("location = %+v, want %+v", got, tt.want)
			}
		})
	}

	t.Run("an IPv4-mapped address is looked up as IPv4", func(t *testing.T) {
		req := browserRequest()
		req.Addr = netip.AddrFrom16(visitor.As16())
		kept, err := Reduce(pageview("https://acme.com/"), req, acme, testGeo, testKey)
		if err != nil {
			t.Fatalf("Reduce: %v", err)
		}
		if kept.Country != "DE" {
			t.Errorf("Country = %q, want DE", kept.Country)
		}
	})
}

func TestReduceInvalid(t *testing.T) {
	tests := []struct {
		name string
		raw  Raw
	}{
		{name: "a missing name is invalid", raw: Raw{URL: "https://acme.com/", Domain: "acme.com"}},
		{name: "a name over 120 characters is invalid", raw: Raw{Name: strings.Repeat("n", 121), URL: "https://acme.com/", Domain: "acme.com"}},
		{name: "a name with NUL is invalid", raw: Raw{Name: "page\x00view", URL: "https://acme.com/", Domain: "acme.com"}},
		{name: "a name that is not UTF-8 is invalid", raw: Raw{Name: "page\xffview", URL: "https://acme.com/", Domain: "acme.com"}},
		{name: "a missing url is invalid", raw: Raw{Name: "pageview", Domain: "acme.com"}},
		{name: "a url over 2000 bytes is invalid", raw: pageview("https://acme.com/" + strings.Repeat("a", 2000))},
		{name: "a relative url is invalid", raw: pageview("/pricing")},
		{name: "a url without a host is invalid", raw: pageview("https:///pricing")},
		{name: "a file url, which has no host, is invalid", raw: pageview("file:///etc/passwd")},
		{name: "a data url is invalid", raw: pageview("data:text/html,%3Cscript%3Ealert(1)%3C%2Fscript%3E")},
		{name: "about:blank is invalid", raw: pageview("about:blank")},
		{name: "an opaque url is invalid", raw: pageview("https:acme.com")},
		{name: "a url that cannot be parsed is invalid", raw: pageview("https://acme.com/\x7f")},
		{name: "an engagement event with neither sd nor e is invalid", raw: Raw{Name: EngagementEvent, URL: "https://acme.com/", Domain: "acme.com"}},
		{name: "an engagement event whose sd and e are both unreadable is invalid", raw: Raw{Name: EngagementEvent, URL: "https://acme.com/", Domain: "acme.com",
			ScrollDepth: json.RawMessage(`"deep"`), EngagementTime: json.RawMessage(`-5`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, r := reduce(t, tt.raw, browserRequest(), acme)
			if reasonOf(r) != ReasonInvalid {
				t.Errorf("reason = %q (%v), want %q", reasonOf(r), r, ReasonInvalid)
			}
		})
	}
}

func TestReduceLimitsAreInclusive(t *testing.T) {
	raw := Raw{
		Name:     strings.Repeat("名", MaxNameChars),
		URL:      "https://acme.com/" + strings.Repeat("a", MaxURLBytes-len("https://acme.com/")),
		Referrer: "https://g.com/" + strings.Repeat("a", MaxReferrerBytes-len("https://g.com/")),
		Domain:   "acme.com",
	}
	if _, r := reduce(t, raw, browserRequest(), acme); r != nil {
		t.Errorf("an event at every limit was refused: %v", r)
	}
}

func TestReduceBots(t *testing.T) {
	tests := []struct {
		name string
		ua   string
	}{
		{name: "an empty User-Agent is a bot", ua: ""},
		{name: "a blank User-Agent is a bot", ua: "    "},
		{name: "a very short User-Agent is a bot", ua: "Mozilla"},
		{name: "Googlebot is a bot", ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{name: "Googlebot's smartphone crawler is a bot", ua: "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.126 Mobile Safari/537.36 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"},
		{name: "bingbot is a bot", ua: "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"},
		{name: "Yahoo Slurp is a bot", ua: "Mozilla/5.0 (compatible; Yahoo! Slurp; http://help.yahoo.com/help/us/ysearch/slurp)"},
		{name: "Baiduspider is a bot", ua: "Mozilla/5.0 (compatible; Baiduspider/2.0; +http://www.baidu.com/search/spider.html)"},
		{name: "curl is a bot", ua: "curl/8.7.1"},
		{name: "Wget is a bot", ua: "Wget/1.21.4"},
		{name: "python-requests is a bot", ua: "python-requests/2.32.3"},
		{name: "Go's HTTP client is a bot", ua: "Go-http-client/1.1"},
		{name: "Java's HTTP client is a bot", ua: "Java/17.0.2"},
		{name: "okhttp is a bot", ua: "okhttp/4.12.0"},
		{name: "headless Chrome is a bot", ua: "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/126.0.0.0 Safari/537.36"},
		{name: "Lighthouse is a bot", ua: "Mozilla/5.0 (Linux; Android 11; moto g power (2022)) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36 Chrome-Lighthouse"},
		{name: "Facebook's link fetcher is a bot", ua: "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)"},
		{name: "Slack's link expander is a bot", ua: "Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"},
		{name: "an uptime monitor is a bot", ua: "Mozilla/5.0+(compatible; UptimeRobot/2.0; http://www.uptimerobot.com/)"},
		{name: "Pingdom is a bot", ua: "Pingdom.com_bot_version_1.4_(http://www.pingdom.com/)"},
		{name: "a link preview is a bot", ua: "Mozilla/5.0 (Windows NT 6.1; WOW64) SkypeUriPreview Preview/0.5"},
		{name: "WhatsApp's preview is a bot", ua: "WhatsApp/2.23.20.0 A"},
		{name: "a crawler that names itself by URL is a bot", ua: "Mozilla/5.0 (compatible; Acme-Indexer/1.0; +https://indexer.example/about)"},
		{name: "a bot is recognised however it spells its name", ua: "MOZILLA/5.0 (COMPATIBLE; AHREFSBOT/7.0)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := browserRequest()
			req.UserAgent = tt.ua
			_, r := reduce(t, pageview("https://acme.com/"), req, acme)
			if reasonOf(r) != ReasonBot {
				t.Fatalf("reason = %q (%v), want %q", reasonOf(r), r, ReasonBot)
			}
			if tt.ua != "" && strings.Contains(r.Message, strings.TrimSpace(tt.ua)) && strings.TrimSpace(tt.ua) != "" {
				t.Errorf("message %q quotes the User-Agent", r.Message)
			}
		})
	}
}

func TestReduceBrowsersAreNotBots(t *testing.T) {
	tests := []struct {
		name                string
		ua                  string
		header              map[string][]string
		wantBrowser, wantOS string
		wantDevice          string
	}{
		{name: "Chrome on Windows", ua: uaChromeWindows, wantBrowser: "Chrome", wantOS: "Windows", wantDevice: "desktop"},
		{name: "Firefox on Linux", ua: uaFirefoxLinux, wantBrowser: "Firefox", wantOS: "Linux", wantDevice: "desktop"},
		{name: "Safari on a Mac", ua: uaSafariMac, wantBrowser: "Safari", wantOS: "macOS", wantDevice: "desktop"},
		{name: "Safari on an iPhone", ua: uaSafariIPhone, wantBrowser: "Safari", wantOS: "iOS", wantDevice: "mobile"},
		{name: "Safari on an iPad", ua: uaSafariIPad, wantBrowser: "Safari", wantOS: "iOS", wantDevice: "tablet"},
		{name: "Chrome on an Android phone", ua: uaChromeAndroid, wantBrowser: "Chrome", wantOS: "Android", wantDevice: "mobile"},
		{name: "Chrome on an Android tablet", ua: uaChromeTablet, wantBrowser: "Chrome", wantOS: "Android", wantDevice: "tablet"},
		{name: "Firefox on an Android phone", ua: uaFirefoxAndroid, wantBrowser: "Firefox", wantOS: "Android", wantDevice: "mobile"},
		{name: "Edge on Windows", ua: uaEdgeWindows, wantBrowser: "Edge", wantOS: "Windows", wantDevice: "desktop"},
		{name: "Opera on Windows", ua: uaOperaWindows, wantBrowser: "Opera", wantOS: "Windows", wantDevice: "desktop"},
		{name: "Samsung Internet on Android", ua: uaSamsung, wantBrowser: "Samsung Internet", wantOS: "Android", wantDevice: "mobile"},
		{name: "Chrome on a Chromebook", ua: uaChromeOS, wantBrowser: "Chrome", wantOS: "ChromeOS", wantDevice: "desktop"},
		{name: "a CUBOT phone, whose name contains bot", ua: uaCubotPhone, wantBrowser: "Chrome", wantOS: "Android", wantDevice: "mobile"},
		{
			name:        "an unknown browser is Other, never its raw User-Agent",
			ua:          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko Niche/1.0",
			wantBrowser: "Other", wantOS: "Windows", wantDevice: "desktop",
		},
		{
			name:        "an Events API call forwarded without Accept or Accept-Language is a visitor",
			ua:          uaChromeWindows,
			header:      map[string][]string{"Content-Type": {"application/json"}},
			wantBrowser: "Chrome", wantOS: "Windows", wantDevice: "desktop",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := browserRequest()
			req.UserAgent = tt.ua
			req.Header = tt.header
			kept, r := reduce(t, pageview("https://acme.com/"), req, acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			got := [3]string{kept.Browser, kept.OS, kept.Device}
			if want := [3]string{tt.wantBrowser, tt.wantOS, tt.wantDevice}; got != want {
				t.Errorf("families = %q, want %q", got, want)
			}
		})
	}
}

func TestReduceProps(t *testing.T) {
	manyKeys := func(n int) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			b.WriteString(`"k` + strings.Repeat("x", i) + `":1`)
		}
		return b.String() + "}"
	}
	tests := []struct {
		name    string
		props   string
		want    string // the kept JSON; "" means nil
		dropped []DroppedPart
	}{
		{name: "no props keeps nothing", props: ""},
		{name: "null props keeps nothing", props: "null"},
		{name: "an empty object keeps nothing", props: "{}"},
		{name: "scalar values are kept as compact JSON with sorted keys", props: `{ "plan" : "pro", "seats": 12, "trial": false, "ratio": 1.50 }`, want: `{"plan":"pro","ratio":1.50,"seats":12,"trial":false}`},
		{name: "HTML characters are kept as sent", props: `{"q":"<a&b>"}`, want: `{"q":"<a&b>"}`},
		{name: "a null value drops its key without a note", props: `{"plan":"pro","coupon":null}`, want: `{"plan":"pro"}`},
		{name: "only null values keep nothing", props: `{"coupon":null}`},
		{name: "an empty or blank value drops its key without a note, as Plausible does", props: `{"plan":"pro","coupon":"","ref":"  "}`, want: `{"plan":"pro"}`},
		{name: "a key sent twice keeps its last value", props: `{"plan":"free","plan":"pro"}`, want: `{"plan":"pro"}`},
		{name: "30 keys are kept", props: manyKeys(30), want: manyKeys(30)},
		{name: "the first 30 keys are kept and the 31st dropped", props: manyKeys(31), want: manyKeys(30), dropped: []DroppedPart{DroppedPropOverLimit}},
		{name: "a 300-byte key is kept", props: `{"` + strings.Repeat("k", 300) + `":1}`, want: `{"` + strings.Repeat("k", 300) + `":1}`},
		{name: "a 301-byte key is dropped, not the event", props: `{"` + strings.Repeat("k", 301) + `":1,"plan":"pro"}`, want: `{"plan":"pro"}`, dropped: []DroppedPart{DroppedPropTooLong}},
		{name: "an empty key is dropped", props: `{"":1,"plan":"pro"}`, want: `{"plan":"pro"}`, dropped: []DroppedPart{DroppedPropEmptyKey}},
		{name: "a blank key is dropped", props: `{" ":1}`, dropped: []DroppedPart{DroppedPropEmptyKey}},
		{name: "a 2000-byte string value is kept", props: `{"k":"` + strings.Repeat("v", 2000) + `"}`, want: `{"k":"` + strings.Repeat("v", 2000) + `"}`},
		{name: "a 2001-byte string value is dropped, not the event", props: `{"k":"` + strings.Repeat("v", 2001) + `","plan":"pro"}`, want: `{"plan":"pro"}`, dropped: []DroppedPart{DroppedPropTooLong}},
		{name: "a nested object is dropped, the other props kept", props: `{"user":{"id":1},"plan":"pro"}`, want: `{"plan":"pro"}`, dropped: []DroppedPart{DroppedPropNested}},
		{name: "an array value is dropped", props: `{"tags":["a","b"]}`, dropped: []DroppedPart{DroppedPropNested}},
		{name: "dropped props do not count towards the 30", props: `{"a":[1],"b":{},` + manyKeys(30)[1:], want: manyKeys(30), dropped: []DroppedPart{DroppedPropNested}},
		{name: "an array is not an object: props are dropped", props: `[1,2]`, dropped: []DroppedPart{DroppedProps}},
		{name: "a string is not an object: props are dropped", props: `"plan"`, dropped: []DroppedPart{DroppedProps}},
		{name: "a number is not an object: props are dropped", props: `12`, dropped: []DroppedPart{DroppedProps}},
		{name: "malformed JSON: props are dropped", props: `{"plan":`, dropped: []DroppedPart{DroppedProps}},
		{name: "two objects: props are dropped", props: `{"a":1}{"b":2}`, dropped: []DroppedPart{DroppedProps}},
		{name: "a NUL in a value drops it, as jsonb cannot hold it", props: `{"k":"a\u0000b","plan":"pro"}`, want: `{"plan":"pro"}`, dropped: []DroppedPart{DroppedPropUnstorable}},
		{name: "a NUL in a key drops it", props: `{"a\u0000":"b"}`, dropped: []DroppedPart{DroppedPropUnstorable}},
		{name: "a number PostgreSQL's numeric cannot hold is dropped", props: `{"n":1e999999}`, dropped: []DroppedPart{DroppedPropUnstorable}},
		{name: "a number with a large but storable exponent is kept", props: `{"n":-2.5E+300}`, want: `{"n":-2.5E+300}`},
		{name: "several kinds of drop are each noted once, in order", props: `{"a":{},"b":[],"":1,"c":"` + strings.Repeat("v", 2001) + `"}`,
			dropped: []DroppedPart{DroppedPropNested, DroppedPropEmptyKey, DroppedPropTooLong}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := pageview("https://acme.com/")
			if tt.props != "" {
				raw.Props = json.RawMessage(tt.props)
			}
			kept, r := reduce(t, raw, browserRequest(), acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if !slices.Equal(kept.Dropped, tt.dropped) {
				t.Errorf("Dropped = %v, want %v", kept.Dropped, tt.dropped)
			}
			if tt.want == "" {
				if kept.Props != nil {
					t.Errorf("Props = %s, want nil", kept.Props)
				}
				return
			}
			if string(kept.Props) != tt.want {
				t.Errorf("Props = %s, want %s", kept.Props, tt.want)
			}
		})
	}
}

func TestReduceRow(t *testing.T) {
	raw := Raw{
		Name:        "Signup",
		URL:         "https://shop.acme.com/thanks?utm_campaign=spring&email=jane%40example.com#done",
		Domain:      "shop.acme.com",
		Referrer:    "https://duckduckgo.com/",
		Title:       "Thanks for signing up",
		AnonymousID: testAID,
		Props:       json.RawMessage(`{"plan":"pro"}`),
	}
	req := browserRequest()
	req.ReceivedAt = time.Date(2026, 5, 17, 12, 30, 0, 0, time.FixedZone("CEST", 2*3600))
	req.UserAgent = uaSafariIPhone
	kept, err := Reduce(raw, req, acme, testGeo, testKey)
	if err != nil {
		t.Fatalf("Reduce: %v", err)
	}
	want := Kept{
		ReceivedAt:   time.Date(2026, 5, 17, 10, 30, 0, 0, time.UTC),
		Name:         "Signup",
		Hostname:     "shop.acme.com",
		Path:         "/thanks?utm_campaign=spring",
		Referrer:     "duckduckgo.com",
		UTMCampaign:  "spring",
		Title:        "Thanks for signing up",
		Browser:      "Safari",
		OS:           "iOS",
		Device:       "mobile",
		Country:      "DE",
		Region:       "DE-BE",
		City:         "Berlin",
		VisitorID:    VisitorID(testKey, testAID),
		HasVisitorID: true,
		Props:        []byte(`{"plan":"pro"}`),
	}
	if kept.ReceivedAt.Location() != time.UTC {
		t.Errorf("ReceivedAt is in %v, want UTC", kept.ReceivedAt.Location())
	}
	if diff := cmp.Diff(want, kept); diff != "" {
		t.Errorf("Reduce row (-want +got):\n%s", diff)
	}
}

func TestReduceVisitorID(t *testing.T) {
	withID := func(id string) Raw {
		raw := pageview("https://acme.com/")
		raw.AnonymousID = id
		return raw
	}
	reference, r := reduce(t, withID(testAID), browserRequest(), acme)
	if r != nil || !reference.HasVisitorID {
		t.Fatalf("reference event: refused %v, or no visitor id", r)
	}
	tests := []struct {
		name string
		raw  Raw
		req  func(*Request)
		// same: the same visitor as the reference; none: no visitor at all.
		same, none bool
	}{
		{name: "the same id from another address, browser and page is the same visitor", raw: func() Raw {
			raw := withID(testAID)
			raw.URL, raw.Domain = "https://shop.acme.com/cart", "shop.acme.com"
			return raw
		}(), req: func(r *Request) { r.Addr, r.UserAgent = netip.MustParseAddr("2001:db8::1"), uaChromeWindows }, same: true},
		{name: "another id from the same address and browser is another visitor", raw: withID("Zz0uV-d6Xh3xS_2kPz9Lm4A")},
		{name: "an event without an id has no visitor, whatever its address", raw: withID(""), none: true},
		{name: "a UUID sent by a server-side caller is a visitor id", raw: withID("0f8fad5b-d9cb-469f-a165-70867728950e")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := browserRequest()
			if tt.req != nil {
				tt.req(&req)
			}
			kept, r := reduce(t, tt.raw, req, acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if kept.HasVisitorID == tt.none {
				t.Fatalf("HasVisitorID = %v, want %v", kept.HasVisitorID, !tt.none)
			}
			if !tt.none && (kept.VisitorID == reference.VisitorID) != tt.same {
				t.Errorf("VisitorID = %d, reference %d, want same: %v", kept.VisitorID, reference.VisitorID, tt.same)
			}
		})
	}
}

func TestReduceRefusesAnAnonymousIDOfTheWrongShape(t *testing.T) {
	for _, id := range []string{
		"short",
		strings.Repeat("a", MaxAnonymousIDBytes+1),
		"q0uV+d6Xh3xS/2kPz9Lm4A==",
		"jane@example.com-and-some-more-text",
		"192.0.2.1.192.0.2.1.192.0.2.1",
	} {
		raw := pageview("https://acme.com/")
		raw.AnonymousID = id
		_, r := reduce(t, raw, browserRequest(), acme)
		if reasonOf(r) != ReasonInvalid {
			t.Errorf("aid %q: refusal %v, want %s", id, r, ReasonInvalid)
			continue
		}
		if strings.Contains(r.Message, id) {
			t.Errorf("the refusal quotes the id: %s", r.Message)
		}
	}
}

func TestReduceHonoursGlobalPrivacyControlOnlyWhenTheTenantAsks(t *testing.T) {
	gpc := browserRequest()
	gpc.GlobalPrivacyControl = true
	if _, r := reduce(t, pageview("https://acme.com/"), gpc, acme); r != nil {
		t.Errorf("a tenant that does not ask refused a GPC event: %v", r)
	}
	honours := acme
	honours.RespectGlobalPrivacyControl = true
	if _, r := reduce(t, pageview("https://acme.com/"), gpc, honours); reasonOf(r) != ReasonOptedOut {
		t.Errorf("refusal %v, want %s", r, ReasonOptedOut)
	}
	if _, r := reduce(t, pageview("https://acme.com/"), browserRequest(), honours); r != nil {
		t.Errorf("an event without GPC was refused: %v", r)
	}
}

func TestReduceTitle(t *testing.T) {
	tests := []struct {
		name, title, want string
	}{
		{name: "a title is kept as sent", title: "Pricing · Acme", want: "Pricing · Acme"},
		{name: "a long title is cut to the limit", title: strings.Repeat("a", MaxTitleBytes+50), want: strings.Repeat("a", MaxTitleBytes)},
		{name: "a cut never splits a character", title: strings.Repeat("a", MaxTitleBytes-1) + "é and more", want: strings.Repeat("a", MaxTitleBytes-1)},
		{name: "a title with a NUL is dropped, not the event", title: "a\x00b", want: ""},
		{name: "a title that is not UTF-8 is dropped", title: "caf\xe9", want: ""},
		{name: "surrounding space is trimmed", title: "  Home \n", want: "Home"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := pageview("https://acme.com/")
			raw.Title = tt.title
			kept, r := reduce(t, raw, browserRequest(), acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if kept.Title != tt.want {
				t.Errorf("Title = %q, want %q", kept.Title, tt.want)
			}
		})
	}
}

func TestReduceAttribution(t *testing.T) {
	tests := []struct {
		name, url, source, medium, clickID string
		policy                             func(*Policy)
	}{
		{name: "utm_source and utm_medium are the attribution, in lower case", url: "https://acme.com/?utm_source=Newsletter&utm_medium=Email", source: "newsletter", medium: "email"},
		{name: "gclid is google / cpc", url: "https://acme.com/?gclid=abc", source: "google", medium: "cpc", clickID: "gclid"},
		{name: "fbclid is facebook / social: Meta adds it to organic links too", url: "https://acme.com/?fbclid=abc", source: "facebook", medium: "social", clickID: "fbclid"},
		{name: "msclkid is bing / cpc", url: "https://acme.com/?msclkid=abc", source: "bing", medium: "cpc", clickID: "msclkid"},
		{name: "UTM parameters win over the click id", url: "https://acme.com/?gclid=abc&utm_source=spring&utm_medium=banner", source: "spring", medium: "banner", clickID: "gclid"},
		{name: "a click id fills in what UTM leaves out", url: "https://acme.com/?gclid=abc&utm_medium=video", source: "google", medium: "video", clickID: "gclid"},
		{name: "a UTM parameter the tenant did not allowlist attributes nothing", url: "https://acme.com/?utm_source=secret", policy: func(p *Policy) { p.QueryParamAllowlist = nil }},
		{name: "no UTM and no click id attribute nothing", url: "https://acme.com/"},
		{name: "ref is the source when there is no utm_source, as Plausible reads it", url: "https://acme.com/?ref=ProductHunt", source: "producthunt"},
		{name: "source wins over ref, utm_source over both", url: "https://acme.com/?ref=a&source=b&utm_source=c", source: "c",
			policy: func(p *Policy) { p.QueryParamAllowlist = append(p.QueryParamAllowlist, "source") }},
		{name: "source wins over ref", url: "https://acme.com/?ref=a&source=b", source: "b",
			policy: func(p *Policy) { p.QueryParamAllowlist = append(p.QueryParamAllowlist, "source") }},
		{name: "a ref the tenant did not allowlist is no source", url: "https://acme.com/?ref=secret",
			policy: func(p *Policy) { p.QueryParamAllowlist = []string{"utm_source"} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := acme
			if tt.policy != nil {
				tt.policy(&p)
			}
			kept, r := reduce(t, pageview(tt.url), browserRequest(), p)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if kept.Source != tt.source || kept.Medium != tt.medium || kept.ClickIDType != tt.clickID {
				t.Errorf("source, medium, click id = %q, %q, %q; want %q, %q, %q",
					kept.Source, kept.Medium, kept.ClickIDType, tt.source, tt.medium, tt.clickID)
			}
		})
	}
}

func TestReduceHashRouting(t *testing.T) {
	tests := []struct {
		name, url, want string
		hash            bool
	}{
		{name: "without hash routing the fragment is dropped", url: "https://acme.com/app#/pricing", want: "/app"},
		{name: "with hash routing a route fragment is part of the path", url: "https://acme.com/app#/pricing", hash: true, want: "/app#/pricing"},
		{name: "a hashbang route is kept", url: "https://acme.com/#!/docs/intro", hash: true, want: "/#!/docs/intro"},
		{name: "a fragment's own query is dropped", url: "https://acme.com/#/search?q=jane%40example.com", hash: true, want: "/#/search"},
		{name: "an OAuth token in the fragment is never kept", url: "https://acme.com/cb#access_token=secret&state=x", hash: true, want: "/cb"},
		{name: "an anchor is not a route", url: "https://acme.com/docs#install", hash: true, want: "/docs"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := pageview(tt.url)
			raw.HashRouting = tt.hash
			kept, r := reduce(t, raw, browserRequest(), acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			if kept.Path != tt.want {
				t.Errorf("Path = %q, want %q", kept.Path, tt.want)
			}
		})
	}
}

func TestReduceContract(t *testing.T) {
	tests := []struct {
		name string
		req  func(*Request)
		key  []byte
	}{
		{name: "a visitor key of the wrong size is the server's error", req: func(*Request) {}, key: []byte("short")},
		{name: "no visitor key is the server's error", req: func(*Request) {}, key: nil},
		{name: "a request without an address is the server's error", req: func(r *Request) { r.Addr = netip.Addr{} }, key: testKey},
		{name: "a request without a receive time is the server's error", req: func(r *Request) { r.ReceivedAt = time.Time{} }, key: testKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := browserRequest()
			tt.req(&req)
			_, err := Reduce(pageview("https://acme.com/"), req, acme, testGeo, tt.key)
			var r *Refusal
			if err == nil || errors.As(err, &r) {
				t.Errorf("Reduce = %v, want an error that is not a *Refusal", err)
			}
		})
	}
}

func reasonOf(r *Refusal) Reason {
	if r == nil {
		return ""
	}
	return r.Reason
}

func TestBotPatternsAreLowerCase(t *testing.T) {
	// Matching lower-cases the User-Agent, so an upper-case pattern would
	// never match.
	for _, p := range append(append([]string{}, botPatterns...), botPatternExceptions...) {
		if p != strings.ToLower(p) {
			t.Errorf("pattern %q is not lower case", p)
		}
	}
}

func TestReduceOversizedUserAgent(t *testing.T) {
	req := browserRequest()
	req.UserAgent = uaChromeWindows + strings.Repeat(" x", 50_000)
	kept, r := reduce(t, pageview("https://acme.com/"), req, acme)
	if r != nil {
		t.Fatalf("refused: %v", r)
	}
	if kept.Browser != "Chrome" {
		t.Errorf("Browser = %q, want Chrome from the User-Agent's start", kept.Browser)
	}
}
