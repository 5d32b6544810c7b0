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
)

// Tokens of the shapes sites put in URLs: each must be scrubbed.
const (
	tokenHexSHA256   = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	tokenHexMD5      = "5d41402abc4b2a76b9719d911017c592"
	tokenUUID        = "3f2a9c1e-8b4d-4e6f-9a0b-1c2d3e4f5a6b"
	tokenBase64URL32 = "kT3vQ9xZ2mLp8RfW1aYc7NbH5dJe0sUg_4Vq6XoI-Ck" // 32 random bytes
	tokenBase64      = "mZ8q2Xr4T+1vKp9Lw3Yb6Nc0Hd5Jf7Gs2Ue4Ra8Vo1I="
	tokenJWTHeader   = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"
	tokenSessionID   = "k3j4h5g6f7d8s9a0q1w2e3r4t5y6u7i8" // PHP's, base36
	tokenStripeLike  = "sk_live_51H8xYzA2bC3dE4fG5hI6jK7lM8nO9pQ"
)

func TestScrub(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		// E-mail addresses.
		{name: "an e-mail address is replaced", in: "jane.doe+news@example.co.uk", want: RedactedEmail},
		{name: "an e-mail address in text is replaced, the text kept", in: "Welcome back, jane@example.com!", want: "Welcome back, " + RedactedEmail + "!"},
		{name: "a URL-encoded e-mail address is replaced", in: "/account?email=jane%40example.com&x=1", want: "/account?email=" + RedactedEmail + "&x=1"},
		{name: "an e-mail address at the end of a sentence keeps the full stop", in: "Write to jane@example.com.", want: "Write to " + RedactedEmail + "."},
		{name: "an internationalized e-mail address is replaced", in: "jürgen@bücher.de", want: RedactedEmail},
		{name: "two e-mail addresses are both replaced", in: "a@b.io,c@d.io", want: RedactedEmail + "," + RedactedEmail},
		{name: "a handle is not an e-mail address", in: "@millimetric", want: "@millimetric"},
		{name: "an address without a top-level domain is not an e-mail address", in: "root@localhost", want: "root@localhost"},
		{name: "a version pin is not an e-mail address", in: "react@18.2.0", want: "react@18.2.0"},

		// IP addresses.
		{name: "an IPv4 address is replaced", in: "203.0.113.77", want: RedactedIP},
		{name: "an IPv4 address in text is replaced", in: "from 203.0.113.77, today", want: "from " + RedactedIP + ", today"},
		{name: "an IPv4 address at the end of a sentence keeps the full stop", in: "Your address is 203.0.113.77.", want: "Your address is " + RedactedIP + "."},
		{name: "an IPv6 address is replaced", in: "2001:db8:cafe::17", want: RedactedIP},
		{name: "an expanded IPv6 address is replaced", in: "2001:0db8:0000:0000:0000:0000:0000:0017", want: RedactedIP},
		{name: "an IPv4-mapped IPv6 address is replaced", in: "::ffff:203.0.113.77", want: RedactedIP},
		{name: "an IPv6 address in brackets is replaced", in: "[2001:db8::1]:8080", want: "[" + RedactedIP + "]:8080"},
		{name: "a version with three dots is not an address", in: "v1.2.3.4", want: "v1.2.3.4"},
		{name: "a version with four dots is not an address", in: "1.2.3.4.5", want: "1.2.3.4.5"},
		{name: "a dotted quad out of range is not an address", in: "10.0.19041.1", want: "10.0.19041.1"},
		{name: "a time of day is not an address", in: "12:30:45", want: "12:30:45"},
		{name: "a C++ scope is not an address", in: "std::vector", want: "std::vector"},
		{name: "a version number is not an address", in: "release 2.4.1", want: "release 2.4.1"},

		// Tokens.
		{name: "a SHA-256 in hex is a token", in: tokenHexSHA256, want: RedactedToken},
		{name: "an MD5 in hex is a token", in: tokenHexMD5, want: RedactedToken},
		{name: "a UUID is a token", in: tokenUUID, want: RedactedToken},
		{name: "32 random bytes in base64url are a token", in: tokenBase64URL32, want: RedactedToken},
		{name: "random bytes in base64 are a token", in: tokenBase64, want: RedactedToken},
		{name: "a JWT's parts are tokens", in: tokenJWTHeader + ".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkphbmUifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c",
			want: RedactedToken + "." + RedactedToken + "." + RedactedToken},
		{name: "a base36 session id is a token", in: "PHPSESSID=" + tokenSessionID, want: "PHPSESSID=" + RedactedToken},
		{name: "an API key is a token", in: tokenStripeLike, want: RedactedToken},
		{name: "a token in text is replaced, the text kept", in: "reset link " + tokenHexMD5 + " expires", want: "reset link " + RedactedToken + " expires"},
		{name: "a long slug is not a token", in: "how-to-build-a-kubernetes-operator-in-go-2024", want: "how-to-build-a-kubernetes-operator-in-go-2024"},
		{name: "a long slug with model numbers is not a token", in: "samsung-galaxy-s24-ultra-512gb-titanium-black", want: "samsung-galaxy-s24-ultra-512gb-titanium-black"},
		{name: "a long product slug is not a token", in: "m3-macbook-air-13-inch-8gb-256gb-midnight", want: "m3-macbook-air-13-inch-8gb-256gb-midnight"},
		{name: "a long campaign name is not a token", in: "spring_sale_2024_newsletter_header_cta_button", want: "spring_sale_2024_newsletter_header_cta_button"},
		{name: "a campaign name with a quarter and a version is not a token", in: "2024q1_brand_search_exact_en_us_v2_final", want: "2024q1_brand_search_exact_en_us_v2_final"},
		{name: "a long word is not a token", in: "Rindfleischetikettierungsueberwachungsaufgabenuebertragungsgesetz", want: "Rindfleischetikettierungsueberwachungsaufgabenuebertragungsgesetz"},
		{name: "a date path is not a token", in: "blog/2024/01/15/release-notes-for-version-3", want: "blog/2024/01/15/release-notes-for-version-3"},
		{name: "a run of 31 characters is not a token however random", in: tokenHexSHA256[:31], want: tokenHexSHA256[:31]},

		// Nothing to scrub.
		{name: "plain text is kept as it is", in: "Pricing · Acme", want: "Pricing · Acme"},
		{name: "an empty string is kept", in: "", want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrub(tt.in); got != tt.want {
				t.Errorf("scrub(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestScrubPath(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "a path without personal data is kept as it is", in: "/docs/getting-started", want: "/docs/getting-started"},
		{name: "a ;jsessionid parameter is stripped", in: "/cart;jsessionid=A1B2C3D4E5F6", want: "/cart"},
		{name: "every segment's ; parameters are stripped", in: "/a;v=1/b;x=2;y=3/c", want: "/a/b/c"},
		{name: "a segment of parameters only is left empty", in: "/;jsessionid=A1B2/", want: "//"},
		{name: "an escaped ; is part of the name and stays", in: "/a%3Bb", want: "/a%3Bb"},
		{name: "an escaped e-mail address in a segment is replaced", in: "/users/jane%40example.com/settings", want: "/users/" + RedactedEmail + "/settings"},
		{name: "an e-mail address in a segment is replaced", in: "/users/jane@example.com", want: "/users/" + RedactedEmail},
		{name: "an IP address in a segment is replaced", in: "/ip/203.0.113.77", want: "/ip/" + RedactedIP},
		{name: "a token segment is replaced", in: "/reset/" + tokenBase64URL32, want: "/reset/" + RedactedToken},
		{name: "a UUID segment is replaced", in: "/orders/" + tokenUUID + "/receipt", want: "/orders/" + RedactedToken + "/receipt"},
		{name: "the rest of a segment is escaped again when it changes", in: "/caf%C3%A9%20jane@example.com", want: "/caf%C3%A9%20" + RedactedEmail},
		{name: "an escaped slash stays escaped in a changed segment", in: "/a%2Fjane@example.com", want: "/a%2F" + RedactedEmail},
		{name: "a segment with a bad escape is scrubbed as it is", in: "/%zz/jane@example.com%zz", want: "/%zz/" + RedactedEmail + "%zz"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := scrubPath(tt.in); got != tt.want {
				t.Errorf("scrubPath(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestReduceScrubsPersonalData: the personal data that sites put where the
// policy lets a value through (the path, allowlisted parameters, the title,
// props, URL-valued props) does not reach the row.
func TestReduceScrubsPersonalData(t *testing.T) {
	tests := []struct {
		name  string
		raw   func(*Raw)
		check func(*testing.T, Kept)
	}{
		{
			name: "a ;jsessionid path parameter is stripped",
			raw:  func(r *Raw) { r.URL = "https://acme.com/cart;jsessionid=0F1E2D3C4B5A69788796A5B4C3D2E1F0?ref=nav" },
			check: func(t *testing.T, k Kept) {
				if k.Path != "/cart?ref=nav" {
					t.Errorf("Path = %q", k.Path)
				}
			},
		},
		{
			name: "an e-mail address in a path segment is scrubbed",
			raw:  func(r *Raw) { r.URL = "https://acme.com/unsubscribe/jane.doe%40example.com" },
			check: func(t *testing.T, k Kept) {
				if k.Path != "/unsubscribe/"+RedactedEmail {
					t.Errorf("Path = %q", k.Path)
				}
			},
		},
		{
			name: "a token in a path segment is scrubbed",
			raw:  func(r *Raw) { r.URL = "https://acme.com/password/reset/" + tokenHexSHA256 },
			check: func(t *testing.T, k Kept) {
				if k.Path != "/password/reset/"+RedactedToken {
					t.Errorf("Path = %q", k.Path)
				}
			},
		},
		{
			name: "a hash route's segments are scrubbed and lose their ; parameters",
			raw: func(r *Raw) {
				r.URL, r.HashRouting = "https://acme.com/app#/users/jane@example.com;tab=1", true
			},
			check: func(t *testing.T, k Kept) {
				if k.Path != "/app#/users/"+RedactedEmail {
					t.Errorf("Path = %q", k.Path)
				}
			},
		},
		{
			name: "an e-mail address in the allowlisted utm_content is scrubbed in the path and the column",
			raw:  func(r *Raw) { r.URL = "https://acme.com/?utm_content=jane%40example.com&utm_source=Mail" },
			check: func(t *testing.T, k Kept) {
				if k.Path != "/?utm_content="+RedactedEmail+"&utm_source=Mail" || k.UTMContent != RedactedEmail || k.Source != "mail" {
					t.Errorf("Path = %q, UTMContent = %q, Source = %q", k.Path, k.UTMContent, k.Source)
				}
			},
		},
		{
			name: "an IP address and a token in allowlisted parameters are scrubbed",
			raw:  func(r *Raw) { r.URL = "https://acme.com/?ref=203.0.113.77&utm_term=" + tokenBase64URL32 },
			check: func(t *testing.T, k Kept) {
				if k.Path != "/?ref="+RedactedIP+"&utm_term="+RedactedToken || k.UTMTerm != RedactedToken {
					t.Errorf("Path = %q, UTMTerm = %q", k.Path, k.UTMTerm)
				}
			},
		},
		{
			name: "ordinary campaign values are kept as sent",
			raw: func(r *Raw) {
				r.URL = "https://acme.com/?utm_campaign=spring_sale_2024_newsletter_header_cta_button&utm_content=hero-banner-v2"
			},
			check: func(t *testing.T, k Kept) {
				if k.UTMCampaign != "spring_sale_2024_newsletter_header_cta_button" || k.UTMContent != "hero-banner-v2" {
					t.Errorf("UTMCampaign = %q, UTMContent = %q", k.UTMCampaign, k.UTMContent)
				}
			},
		},
		{
			name: "the title is scrubbed",
			raw:  func(r *Raw) { r.Title = "Orders of jane@example.com from 203.0.113.77 · Acme" },
			check: func(t *testing.T, k Kept) {
				if k.Title != "Orders of "+RedactedEmail+" from "+RedactedIP+" · Acme" {
					t.Errorf("Title = %q", k.Title)
				}
			},
		},
		{
			name: "an address at the title's limit is scrubbed before the title is cut",
			raw:  func(r *Raw) { r.Title = strings.Repeat("a", MaxTitleBytes-5) + " jane@example.com" },
			check: func(t *testing.T, k Kept) {
				if strings.Contains(k.Title, "jane") || strings.Contains(k.Title, "@") {
					t.Errorf("Title = %q", k.Title)
				}
			},
		},
		{
			name: "props.url of an outbound-link click is reduced like the page URL",
			raw: func(r *Raw) {
				r.Name = "Outbound Link: Click"
				r.Props = json.RawMessage(`{"url":"https://Jane:pw@Partner.example:8443/welcome;jsessionid=AB12/jane%40example.com?email=jane%40example.com&token=abc&utm_source=acme#access_token=xyz"}`)
			},
			check: func(t *testing.T, k Kept) {
				want := `{"url":"https://partner.example/welcome/` + RedactedEmail + `?utm_source=acme"}`
				if string(k.Props) != want {
					t.Errorf("Props = %s, want %s", k.Props, want)
				}
			},
		},
		{
			name: "any prop that is an absolute http(s) URL is reduced",
			raw: func(r *Raw) {
				r.Name = "Share"
				r.Props = json.RawMessage(`{"target":"http://203.0.113.77/admin?session=1","relative":"/cart?email=jane%40example.com","mail":"mailto:jane@example.com"}`)
			},
			check: func(t *testing.T, k Kept) {
				want := `{"mail":"mailto:` + RedactedEmail + `","relative":"/cart?email=` + RedactedEmail + `","target":"http://` + RedactedIP + `/admin"}`
				if string(k.Props) != want {
					t.Errorf("Props = %s, want %s", k.Props, want)
				}
			},
		},
		{
			name: "e-mail addresses, addresses and tokens in props values and keys are scrubbed, other values kept",
			raw: func(r *Raw) {
				r.Name = "Signup"
				r.Props = json.RawMessage(`{"email":"jane@example.com","ip":"2001:db8::17","session":"` + tokenSessionID + `","jane@example.com":1,"plan":"pro","seats":3}`)
			},
			check: func(t *testing.T, k Kept) {
				want := `{"email":"` + RedactedEmail + `","ip":"` + RedactedIP + `","plan":"pro","` + RedactedEmail + `":1,"seats":3,"session":"` + RedactedToken + `"}`
				if string(k.Props) != want {
					t.Errorf("Props = %s, want %s", k.Props, want)
				}
			},
		},
		{
			name: "the event name is scrubbed",
			raw:  func(r *Raw) { r.Name = "Invite jane@example.com" },
			check: func(t *testing.T, k Kept) {
				if k.Name != "Invite "+RedactedEmail {
					t.Errorf("Name = %q", k.Name)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := pageview("https://acme.com/")
			tt.raw(&raw)
			kept, r := reduce(t, raw, browserRequest(), acme)
			if r != nil {
				t.Fatalf("refused: %v", r)
			}
			tt.check(t, kept)
		})
	}
}

func TestEveryDroppedPartHasAName(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range DroppedParts() {
		name := p.String()
		if name == "" || seen[name] {
			t.Errorf("part %d has the name %q, empty or taken", p, name)
		}
		seen[name] = true
	}
}
