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
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// anywhere is a location database that knows every address.
type anywhere struct{}

func (anywhere) Lookup(netip.Addr) (Location, bool) { return berlin, true }

// TestReduceNeverLetsTheAddressOut is the policy's "IP used only at
// ingestion, never stored" as a test: for many addresses and many events,
// kept or refused, the address in any common spelling appears nowhere in
// the row nor in the refusal, and neither does the raw User-Agent.
//
// Some events carry the address in the body too, written as text (the
// page's host, the referrer, a query parameter, allowlisted or not, a path
// segment, a hash route, the title, the name, props values and keys,
// props.url's host and query, the domain, a broken URL): Reduce must drop
// or scrub it there as well, or at least not echo it. So must it an
// e-mail address, sent in the same places.
func TestReduceNeverLetsTheAddressOut(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 200 {
		addr := randomAddr(rng)
		for _, form := range []netip.Addr{addr, netip.AddrFrom16(addr.As16())} {
			checkNoLeak(t, form, addressForms(addr))
		}
	}
}

// email is the address of a visitor that sites put in URLs, titles and
// props; emailForms are its spellings, in lower case.
const email = "Jane.Doe+news@Example.com"

var emailForms = []string{"jane.doe+news@example.com", "jane.doe%2bnews%40example.com", "jane.doe+news%40example.com", "jane.doe"}

func checkNoLeak(t *testing.T, addr netip.Addr, forms []string) {
	t.Helper()
	text := addr.Unmap().String()
	host := text
	if addr.Unmap().Is6() {
		host = "[" + text + "]"
	}
	escaped := url.QueryEscape(email)
	forms = append(slices.Clone(forms), emailForms...)
	events := []struct {
		raw  Raw
		ua   string
		kept bool
	}{
		{raw: pageview("https://acme.com/"), ua: uaChromeWindows, kept: true},
		{raw: pageview("https://acme.com/?ip=" + text + "&utm_source=x#" + text), ua: uaSafariIPhone, kept: true},
		{raw: Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com", Referrer: "http://" + host + "/admin"}, ua: uaFirefoxLinux, kept: true},
		{raw: Raw{Name: "pageview", URL: "http://" + host + ":8080/", Domain: "acme.com"}, ua: uaChromeAndroid, kept: true},
		{raw: Raw{Name: "pageview", URL: "ftp://" + host + "/", Domain: "acme.com"}, ua: uaChromeWindows, kept: true},
		{raw: Raw{Name: "Signup", URL: "https://shop.acme.com/x", Domain: "shop.acme.com", Props: json.RawMessage(`{"plan":"pro"}`)}, ua: uaEdgeWindows, kept: true},
		// the address and the e-mail address where the policy lets a
		// value through
		{raw: Raw{
			Name: "Invite " + email + " from " + text, Domain: "acme.com", Title: "Hello " + email + ", you are at " + text,
			URL: "https://acme.com/u/" + url.PathEscape(email) + "/ip/" + url.PathEscape(text) + ";jsessionid=" + text +
				"?utm_content=" + escaped + "&utm_term=" + url.QueryEscape(text) + "&ref=" + escaped + "&email=" + escaped + "#/to/" + url.PathEscape(email),
			HashRouting: true,
			Referrer:    "https://" + url.PathEscape(email) + "@mail.example/?to=" + escaped,
		}, ua: uaChromeWindows, kept: true},
		{raw: Raw{Name: "Outbound Link: Click", URL: "https://acme.com/", Domain: "acme.com", Props: json.RawMessage(
			`{"url":"http://` + host + `/welcome/` + url.PathEscape(email) + `?email=` + escaped + `&utm_source=` + escaped + `",` +
				`"ip":"` + text + `","email":"` + email + `","` + email + `":"key","` + text + `":1,"note":"from ` + text + ` by ` + email + `"}`)}, ua: uaSafariMac, kept: true},
		{raw: Raw{Name: EngagementEvent, URL: "https://acme.com/" + url.PathEscape(email), Domain: "acme.com",
			ScrollDepth: json.RawMessage(`50`), Props: json.RawMessage(`{"who":"` + email + `"}`)}, ua: uaFirefoxLinux, kept: true},
		// kept, with their props dropped
		{raw: Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com", Props: json.RawMessage(`{"ip":{"v":"` + text + `"}}`)}, ua: uaChromeWindows, kept: true},
		{raw: Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com", Props: json.RawMessage(`"` + text + `"`)}, ua: uaChromeWindows, kept: true},
		// kept: a roll-up with the tenant's domain, on a page at the address
		{raw: Raw{Name: "pageview", URL: "https://" + host + "/", Domain: "acme.com," + text}, ua: uaChromeWindows, kept: true},
		// refused, bots included
		{raw: Raw{Name: "pageview", URL: "https://acme.com/", Domain: text}, ua: uaChromeWindows},
		{raw: Raw{Name: "pageview", URL: "data:text/plain," + text + "," + email, Domain: "acme.com"}, ua: uaChromeWindows},
		{raw: Raw{Name: "pageview", URL: text, Domain: "acme.com"}, ua: uaChromeWindows},
		{raw: Raw{Name: email + strings.Repeat("x", MaxNameChars), URL: "https://acme.com/", Domain: "acme.com"}, ua: uaChromeWindows},
		{raw: Raw{Name: "pageview", URL: "https://acme.com/" + email + strings.Repeat("x", MaxURLBytes), Domain: "acme.com"}, ua: uaChromeWindows},
		{raw: Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com", AnonymousID: email}, ua: uaChromeWindows},
		{raw: Raw{Name: text + strings.Repeat("x", MaxNameChars), URL: "https://acme.com/", Domain: "acme.com"}, ua: uaChromeWindows},
		{raw: Raw{Name: EngagementEvent, URL: "https://acme.com/", Domain: "acme.com", ScrollDepth: json.RawMessage(`"` + text + `"`)}, ua: uaChromeWindows},
		{raw: pageview("https://acme.com/"), ua: "curl/8.7.1 (" + text + ")"},
		{raw: pageview("https://acme.com/"), ua: "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html) " + text},
		{raw: pageview("https://acme.com/"), ua: ""},
	}
	for _, ev := range events {
		req := Request{Addr: addr, UserAgent: ev.ua, ReceivedAt: browserRequest().ReceivedAt}
		kept, err := Reduce(ev.raw, req, acme, anywhere{}, testKey)
		if (err == nil) != ev.kept {
			t.Errorf("event %+v: kept %v (%v), want %v: the scan would prove less than it says", ev.raw, err == nil, err, ev.kept)
		}
		var out string
		if err != nil {
			var r *Refusal
			if !errors.As(err, &r) {
				t.Fatalf("Reduce: %v", err)
			}
			out = r.Message + "\n" + r.Error()
		} else {
			out = fmt.Sprintf("%+v\n%s", kept, kept.Props)
		}
		out = strings.ToLower(out)
		for _, f := range forms {
			if strings.Contains(out, f) {
				t.Errorf("the address %s or %s, written %q, is in %q", addr, email, f, out)
			}
		}
		if ev.ua != "" && strings.Contains(out, strings.ToLower(ev.ua)) {
			t.Errorf("the User-Agent %q is in %q", ev.ua, out)
		}
	}
}

// randomAddr is a public-looking IPv4 or IPv6 address. IPv4 addresses start
// at 11.0.0.0, so that their decimal integer spelling has nine digits or
// more and cannot turn up by chance.
func randomAddr(rng *rand.Rand) netip.Addr {
	if rng.IntN(2) == 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], rng.Uint32())
		b[0] = byte(11 + rng.IntN(212))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], rng.Uint64())
	binary.BigEndian.PutUint64(b[8:], rng.Uint64())
	b[0], b[1] = 0x20, 0x01 // 2001::/16, global unicast
	return netip.AddrFrom16(b)
}

// addressForms are the common spellings of a, in lower case: dotted or
// colon text, compressed and expanded, the integer in decimal and hex, and
// an IPv4 address's IPv4-mapped IPv6 spellings.
func addressForms(a netip.Addr) []string {
	a = a.Unmap()
	b16 := a.As16()
	n := new(big.Int).SetBytes(a.AsSlice())
	forms := []string{
		a.String(),
		a.StringExpanded(),
		n.String(),
		n.Text(16),
		hex.EncodeToString(a.AsSlice()),
	}
	if a.Is4() {
		forms = append(forms,
			"::ffff:"+a.String(),
			netip.AddrFrom16(b16).StringExpanded(),
			"::ffff:"+hex.EncodeToString(b16[12:14])+":"+hex.EncodeToString(b16[14:]),
			strconv.FormatUint(n.Uint64(), 10),
		)
	}
	return forms
}
