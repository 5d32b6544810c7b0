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

package app_test

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/ingest/app"
	"github.com/millimetric/tenant-operator/internal/ingest/config"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/geoip/geoiptest"
	"github.com/millimetric/tenant-operator/internal/ingest/writer"
)

// The two visitors whose addresses must be nowhere after ingest.
var (
	visitorV4 = netip.MustParseAddr("198.51.100.173")
	visitorV6 = netip.MustParseAddr("2001:db8:cafe:babe::4242:17")
)

// addressForms are the ways an address could be written down: text,
// expanded text, IPv4-mapped text, integer, hex (both byte orders), base64.
func addressForms(a netip.Addr) []string {
	b16 := netip.AddrFrom16(a.As16()).As16()
	forms := []string{
		a.String(), a.StringExpanded(),
		hex.EncodeToString(b16[:]), base64.StdEncoding.EncodeToString(b16[:]),
	}
	if a.Is4() {
		b4 := a.As4()
		be := binary.BigEndian.Uint32(b4[:])
		le := binary.LittleEndian.Uint32(b4[:])
		forms = append(forms,
			"::ffff:"+a.String(),
			strconv.FormatUint(uint64(be), 10), strconv.FormatUint(uint64(le), 10),
			fmt.Sprintf("%08x", be), fmt.Sprintf("%08x", le),
			base64.StdEncoding.EncodeToString(b4[:]),
			// The mapped form's last groups, as ::ffff:c633:64ad.
			fmt.Sprintf("%x:%x", be>>16, be&0xffff),
		)
	} else {
		hi := binary.BigEndian.Uint64(b16[:8])
		lo := binary.BigEndian.Uint64(b16[8:])
		forms = append(forms, strconv.FormatUint(hi, 10)+strconv.FormatUint(lo, 10), fmt.Sprintf("%016x%016x", hi, lo))
	}
	return forms
}

// findAddresses lists every form of every visitor address found in text,
// and every anonymous id of ids, as sent or in any case.
func findAddresses(text string, ids ...string) []string {
	lower := strings.ToLower(text)
	var found []string
	for _, a := range []netip.Addr{visitorV4, visitorV6} {
		for _, f := range addressForms(a) {
			if strings.Contains(lower, strings.ToLower(f)) {
				found = append(found, fmt.Sprintf("%s (as %q)", a, f))
			}
		}
	}
	for _, id := range ids {
		if strings.Contains(lower, strings.ToLower(id)) {
			found = append(found, fmt.Sprintf("the anonymous id %s", id))
		}
	}
	return found
}

// pgDump is the whole EU database as pg_dump writes it: every schema,
// table, column and row, bytea as hex, in text.
func pgDump(t *testing.T) string {
	t.Helper()
	bin := "/usr/lib/postgresql/15/bin/pg_dump"
	cmd := exec.Command(bin, "--no-password", "--host", srv.Host, "--port", strconv.Itoa(srv.Port),
		"--username", srv.AdminUser, "--dbname", srv.Databases["EU"])
	cmd.Env = append(os.Environ(), "PGPASSWORD="+srv.AdminPassword, "PGSSLMODE=disable")
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("pg_dump: %v: %s", err, stderr)
	}
	return string(out)
}

// TestVisitorAddressesAndAnonymousIDsAreUsedButNeverStoredLoggedOrExposed
// is the policy's two promises about a visitor's identifiers, against a
// real ingest service and database: the address is used for the location
// and the rate limit and then discarded; the browser's mm_aid counts the
// visitor, as a keyed hash, and is itself nowhere.
func TestVisitorAddressesAndAnonymousIDsAreUsedButNeverStoredLoggedOrExposed(t *testing.T) {
	creds := provision(t, "noaddr")
	geoDB := geoiptest.Write(t, []geoiptest.Entry{
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "DE", Subdivision: "BE", City: "Berlin"},
		{Prefix: netip.MustParsePrefix("2001:db8:cafe::/48"), Country: "FR", Subdivision: "IDF", City: "Paris"},
	})
	// The visitors are named as the edge names them: the IPv4 one by
	// Cloudflare's CF-Connecting-IP alone, the Gateway (127.0.0.1) having
	// recorded Cloudflare's edge in X-Forwarded-For; the IPv6 one by an
	// RFC 7239 Forwarded with a port. Each event's location proves the
	// header was read.
	cloudflare := netip.MustParsePrefix("173.245.48.0/20")
	svc := startService(t, creds, tenantConfig("noaddr", 600), func(o *app.Options) {
		o.GeoIPDB = geoDB
		o.TrustedProxies = append(o.TrustedProxies, cloudflare)
		o.CFConnectingIP = true
	})
	via := map[netip.Addr]http.Header{
		visitorV4: {"Cf-Connecting-Ip": {visitorV4.String()}, "X-Forwarded-For": {"173.245.48.7"}},
		visitorV6: {"Forwarded": {`for="[` + visitorV6.String() + `]:4711";proto=https`}},
	}

	var answers, ids []string
	for _, addr := range []netip.Addr{visitorV4, visitorV6} {
		aid := newAnonymousID(t)
		ids = append(ids, aid)
		header := via[addr]
		for _, body := range []string{
			pageviewBy(aid, "acme.test", "https://acme.test/pricing?utm_source=mail&email=jane%40example.com#plans"),
			pageviewBy(aid, "shop.acme.test", "https://shop.acme.test/cart?ref=nav&session=abc123"),
			`{"name":"signup","url":"https://acme.test/join","domain":"acme.test","props":{"plan":"pro"},"aid":"` + aid + `"}`,
		} {
			a := svc.sendVia(t, header, firefox, body)
			if a.status != http.StatusAccepted {
				t.Fatalf("event from %s: %d %s", addr, a.status, a.body)
			}
			answers = append(answers, a.body)
		}
		// Refusals too: a foreign domain and malformed JSON.
		answers = append(answers, svc.sendVia(t, header, firefox, pageviewBy(aid, "evil.test", "https://evil.test/")).body,
			svc.sendVia(t, header, firefox, `{"n":`).body,
			svc.sendVia(t, header, firefox, `{"n":"pageview","u":"https://acme.test/","d":"acme.test","aid":"`+aid+`!"}`).body)
	}
	waitRows(t, creds.Schema, 6)

	// The address was used: each event has its location.
	ctx := testContext(t)
	rows, err := admin(t).Query(ctx, `SELECT country, region, city, url_path, referrer, visitor_id FROM `+
		pgx.Identifier{creds.Schema, "events"}.Sanitize()+` ORDER BY received_at`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		country, region, city, path, referrer *string
		visitor                               *int64
	}
	var got []row
	var r row
	if _, err := pgx.ForEachRow(rows, []any{&r.country, &r.region, &r.city, &r.path, &r.referrer, &r.visitor}, func() error {
		got = append(got, r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	places := map[string]int{}
	visitors := map[int64]int{}
	referrers := 0
	for _, r := range got {
		if r.country == nil || r.city == nil || r.visitor == nil {
			t.Fatalf("an event has no location or visitor id: %+v", r)
		}
		places[*r.country+"/"+*r.city]++
		visitors[*r.visitor]++
		if r.path != nil && (strings.Contains(*r.path, "email") || strings.Contains(*r.path, "session") || strings.Contains(*r.path, "#")) {
			t.Errorf("a query parameter outside the allowlist, or a fragment, was kept: %q", *r.path)
		}
		if r.referrer != nil {
			referrers++
			if *r.referrer != "news.example" {
				t.Errorf("the referrer is not reduced to its host: %q", *r.referrer)
			}
		}
	}
	if referrers != 4 {
		t.Errorf("%d events have a referrer, want the 4 pageviews", referrers)
	}
	if places["DE/Berlin"] != 3 || places["FR/Paris"] != 3 {
		t.Errorf("locations = %v, want 3 in DE/Berlin and 3 in FR/Paris", places)
	}
	if len(visitors) != 2 {
		t.Errorf("visitor ids = %v, want 2 visitors of 3 events each", visitors)
	}

	metrics := svc.get(t, "/metrics")
	if !strings.Contains(metrics, "ingest_events_accepted_total 6") {
		t.Errorf("metrics do not count 6 accepted events:\n%s", grepLines(metrics, "ingest_"))
	}
	if err := svc.shutdown(); err != nil {
		t.Fatal(err)
	}

	dump := pgDump(t)
	if !strings.Contains(dump, "Berlin") {
		t.Fatal("the dump does not hold the events: the scan would prove nothing")
	}
	for what, text := range map[string]string{
		"the database (pg_dump)":      dump,
		"the service's log":           svc.logs.String(),
		"the service's metrics":       metrics,
		"the answers to the requests": strings.Join(answers, "\n"),
		"the PostgreSQL server's log": srv.Log(),
	} {
		if found := findAddresses(text, ids...); len(found) > 0 {
			t.Errorf("%s holds a visitor's address or anonymous id: %s", what, strings.Join(found, ", "))
		}
	}
}

// grepLines keeps the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestTheHTTPAPIRefusesWhatItCannotTakeWithAReason(t *testing.T) {
	creds := provision(t, "refuse")
	svc := startService(t, creds, tenantConfig("refuse", 3), nil)
	huge := `{"n":"pageview","u":"https://acme.test/","d":"acme.test","p":{"x":"` + strings.Repeat("a", 5000) + `"}}`
	tests := []struct {
		name       string
		addr, body string
		userAgent  string
		want       int
		wantReason string
	}{
		{"a tracker's pageview is accepted", "192.0.2.1", pageview("acme.test", "https://acme.test/"), firefox, 202, ""},
		{"the Events API's long keys are accepted", "192.0.2.2", `{"name":"pageview","url":"https://www.acme.test/a","domain":"www.acme.test"}`, firefox, 202, ""},
		{"malformed JSON is refused", "192.0.2.3", `{"n":"pageview",`, firefox, 400, "malformed_json"},
		{"an anonymous id of the wrong shape is refused", "192.0.2.3", `{"n":"pageview","u":"https://acme.test/","d":"acme.test","aid":"jane@example.com"}`, firefox, 400, "invalid"},
		{"an event without a URL is refused", "192.0.2.3", `{"n":"pageview","d":"acme.test"}`, firefox, 400, "invalid"},
		{"a body over the limit is refused", "192.0.2.3", huge, firefox, 413, "body_too_large"},
		{"a domain that is not the tenant's is refused", "192.0.2.3", pageview("other.test", "https://other.test/"), firefox, 403, "foreign_domain"},
		{"a bot is answered as accepted and not stored", "192.0.2.4", pageview("acme.test", "https://acme.test/"), "Googlebot/2.1 (+http://www.google.com/bot.html)", 202, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := svc.send(t, tc.addr, tc.userAgent, tc.body)
			if a.status != tc.want {
				t.Fatalf("status = %d (%s), want %d", a.status, a.body, tc.want)
			}
			if tc.wantReason != "" && !strings.Contains(a.body, `"error":"`+tc.wantReason+`"`) {
				t.Errorf("body = %s, want reason %s", a.body, tc.wantReason)
			}
		})
	}

	t.Run("too many events from one address are answered 429 with Retry-After", func(t *testing.T) {
		for i := range 3 {
			if a := svc.send(t, "192.0.2.50", firefox, pageview("acme.test", "https://acme.test/")); a.status != 202 {
				t.Fatalf("event %d: %d %s", i+1, a.status, a.body)
			}
		}
		a := svc.send(t, "192.0.2.50", firefox, pageview("acme.test", "https://acme.test/"))
		if a.status != http.StatusTooManyRequests || a.retryAfter == "" || !strings.Contains(a.body, "rate_limited") {
			t.Fatalf("4th event: %d Retry-After=%q %s, want 429 with Retry-After", a.status, a.retryAfter, a.body)
		}
		if a := svc.send(t, "192.0.2.51", firefox, pageview("acme.test", "https://acme.test/")); a.status != 202 {
			t.Fatalf("another address: %d %s, want 202", a.status, a.body)
		}
	})

	t.Run("the public port serves no probe and no metrics: the edge never reaches them", func(t *testing.T) {
		for _, path := range []string{"/metrics", "/healthz", "/readyz"} {
			resp, err := http.Get(svc.url + path)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				t.Errorf("GET %s on the public port: %d, want 404", path, resp.StatusCode)
			}
			if got := svc.get(t, path); got == "" {
				t.Errorf("GET %s on the probes' port: empty", path)
			}
		}
	})

	t.Run("CORS preflight is answered for the tenant's own domains only", func(t *testing.T) {
		for origin, want := range map[string]int{"https://shop.acme.test": 204, "https://acme.test": 204, "https://evil.test": 403} {
			req, _ := http.NewRequest(http.MethodOptions, svc.url+"/api/event", nil)
			req.Header.Set("Origin", origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			allow := resp.Header.Get("Access-Control-Allow-Origin")
			if resp.StatusCode != want || (want == 204) != (allow == origin) {
				t.Errorf("preflight from %s: %d, Allow-Origin %q; want %d", origin, resp.StatusCode, allow, want)
			}
		}
	})

	// 2 tracker events, 3+1 from the rate limit test; the bot is not stored.
	waitRows(t, creds.Schema, 6)
	metrics := svc.get(t, "/metrics")
	for _, want := range []string{
		`ingest_events_bots_total 1`,
		`ingest_events_refused_total{reason="rate_limited"} 1`,
		// The foreign domain's event and the foreign origin's preflight.
		`ingest_events_refused_total{reason="foreign_domain"} 2`,
		`ingest_events_refused_total{reason="body_too_large"} 1`,
		`ingest_rows_written_total 6`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s:\n%s", want, grepLines(metrics, "ingest_"))
		}
	}
}

// TestPlausibleBodiesAreKeptPartByPartWithEngagementAndWithoutPersonalData
// sends, to a real ingest service with its default body limit, what
// Plausible's tracker and Events API send and this service used to refuse,
// and reads the rows: the part that cannot be kept is dropped (and named
// in the answer), not the event; an engagement event fills the engagement
// columns of its page; ;jsessionid, an e-mail address in a URL-valued prop
// and parameters outside the allowlist reach no row.
func TestPlausibleBodiesAreKeptPartByPartWithEngagementAndWithoutPersonalData(t *testing.T) {
	creds := provision(t, "plausible")
	svc := startService(t, creds, tenantConfig("plausible", 600), func(o *app.Options) { o.MaxBodyBytes = 0 })
	const session = "0F1E2D3C4B5A69788796A5B4C3D2E1F0"
	manyProps := map[string]string{}
	for i := range 40 {
		manyProps[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", 1500)
	}
	many, _ := json.Marshal(map[string]any{"n": "Big", "u": "https://acme.test/big", "p": manyProps})
	for _, tc := range []struct {
		body, dropped string
	}{
		{`{"n":404,"u":"https://acme.test/missing;jsessionid=` + session + `?utm_source=mail&email=jane%40example.com","r":"https://news.example/` + strings.Repeat("a", 2500) + `","p":"{\"path\":\"/missing\",\"user\":{\"id\":1}}"}`, "props.nested"},
		{`{"n":"engagement","u":"https://acme.test/missing;jsessionid=` + session + `","d":"acme.test","sd":80,"e":4200,"v":30}`, ""},
		{`{"n":"Outbound Link: Click","u":"https://www.acme.test/","d":"www.acme.test,rollup.example","p":{"url":"https://partner.example/signup;jsessionid=` + session + `?email=jane%40example.com&utm_source=acme"}}`, ""},
		{`{"name":"pageview","url":"app://localhost/login","domain":"acme.test"}`, ""},
		{string(many), "props.over_limit"},
	} {
		a := svc.send(t, "192.0.2.10", firefox, tc.body)
		if a.status != http.StatusAccepted || a.dropped != tc.dropped {
			t.Fatalf("%.120s: %d %q %s, want 202 with %q dropped", tc.body, a.status, a.dropped, a.body, tc.dropped)
		}
	}
	waitRows(t, creds.Schema, 5)

	type row struct {
		host, path, referrer, props *string
		engagedMs                   *int64
		scrollDepth                 *int16
	}
	rows, err := admin(t).Query(testContext(t), `SELECT event_name, hostname, url_path, referrer, props::text, engagement_ms, scroll_depth FROM `+
		pgx.Identifier{creds.Schema, "events"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]row{}
	var name string
	var r row
	if _, err := pgx.ForEachRow(rows, []any{&name, &r.host, &r.path, &r.referrer, &r.props, &r.engagedMs, &r.scrollDepth}, func() error {
		got[name] = r
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	str := func(s *string) string {
		if s == nil {
			return "NULL"
		}
		return *s
	}
	for name, want := range map[string][4]string{
		"404":                  {"acme.test", "/missing?utm_source=mail", "news.example", `{"path": "/missing"}`},
		"engagement":           {"acme.test", "/missing", "NULL", "NULL"},
		"Outbound Link: Click": {"www.acme.test", "/", "NULL", `{"url": "https://partner.example/signup?utm_source=acme"}`},
		"pageview":             {"localhost", "/login", "NULL", "NULL"},
	} {
		r, ok := got[name]
		if !ok {
			t.Errorf("no %q row", name)
			continue
		}
		if g := [4]string{str(r.host), str(r.path), str(r.referrer), str(r.props)}; g != want {
			t.Errorf("%q row: %q, want %q", name, g, want)
		}
		if (name == "engagement") != (r.engagedMs != nil && r.scrollDepth != nil) {
			t.Errorf("%q row: engagement_ms %v, scroll_depth %v", name, r.engagedMs, r.scrollDepth)
		}
	}
	if e := got["engagement"]; e.engagedMs == nil || *e.engagedMs != 4200 || e.scrollDepth == nil || *e.scrollDepth != 80 {
		t.Errorf("the engagement row has %v ms, %v %%; want 4200 ms, 80 %%", e.engagedMs, e.scrollDepth)
	}
	var big map[string]string
	if err := json.Unmarshal([]byte(str(got["Big"].props)), &big); err != nil || len(big) != event.MaxPropsKeys {
		t.Errorf("the event with 40 props kept %d (%v), want %d", len(big), err, event.MaxPropsKeys)
	}
	all, err := admin(t).Query(testContext(t), `SELECT e::text FROM `+pgx.Identifier{creds.Schema, "events"}.Sanitize()+` e`)
	if err != nil {
		t.Fatal(err)
	}
	texts, err := pgx.CollectRows(all, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	stored := strings.ToLower(strings.Join(texts, "\n"))
	for _, secret := range []string{"jane", "example.com", strings.ToLower(session), "jsessionid", "email="} {
		if strings.Contains(stored, secret) {
			t.Errorf("a row holds %q:\n%s", secret, grepLines(stored, secret))
		}
	}
}

// TestVisitorsAreCountedByTheirAnonymousIDAndNothingElse: one mm_aid is
// one visitor whatever address or browser it comes from, on every day the
// tenant keeps its key; another mm_aid from the same address is another
// visitor; an event without one has no visitor; and another tenant's key
// makes the same mm_aid an id that cannot be joined with this tenant's.
func TestVisitorsAreCountedByTheirAnonymousIDAndNothingElse(t *testing.T) {
	creds := provision(t, "visitors")
	key := newVisitorKey(t)
	svc := startService(t, creds, tenantConfig("visitors", 600), func(o *app.Options) { o.VisitorKey = key })
	ctx := testContext(t)
	events := pgx.Identifier{creds.Schema, "events"}.Sanitize()
	visitorOf := func(path string) []*int64 {
		rows, err := admin(t).Query(ctx, `SELECT visitor_id FROM `+events+` WHERE url_path = $1 ORDER BY received_at`, path)
		if err != nil {
			t.Fatal(err)
		}
		ids, err := pgx.CollectRows(rows, pgx.RowTo[*int64])
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	const chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
	jane, joe := newAnonymousID(t), newAnonymousID(t)
	send := func(addr, ua, body string) {
		t.Helper()
		if a := svc.send(t, addr, ua, body); a.status != http.StatusAccepted {
			t.Fatalf("%d %s", a.status, a.body)
		}
	}
	send("203.0.113.9", firefox, pageviewBy(jane, "acme.test", "https://acme.test/a"))
	send("198.51.100.1", chrome, pageviewBy(jane, "acme.test", "https://acme.test/a"))
	send("203.0.113.9", firefox, pageviewBy(joe, "acme.test", "https://acme.test/b"))
	send("203.0.113.9", firefox, pageview("acme.test", "https://acme.test/c"))
	send("203.0.113.9", firefox, pageview("acme.test", "https://acme.test/c"))
	svc.clock.advance(24 * time.Hour)
	send("203.0.113.77", firefox, pageviewBy(jane, "acme.test", "https://acme.test/d"))
	waitRows(t, creds.Schema, 6)

	a, b, c, d := visitorOf("/a"), visitorOf("/b"), visitorOf("/c"), visitorOf("/d")
	if a[0] == nil || a[1] == nil || *a[0] != *a[1] {
		t.Errorf("one mm_aid from two addresses and browsers is not one visitor: %v", a)
	}
	if b[0] == nil || *b[0] == *a[0] {
		t.Errorf("another mm_aid from the same address and browser is not another visitor")
	}
	if c[0] != nil || c[1] != nil {
		t.Errorf("events without an mm_aid have visitor ids: the address or User-Agent made one")
	}
	if d[0] == nil || *d[0] != *a[0] {
		t.Errorf("the same mm_aid the next day is not the same visitor")
	}
	if want := event.VisitorID(key, jane); *a[0] != want {
		t.Errorf("visitor id = %d, want the keyed hash of the mm_aid under the tenant's key, %d", *a[0], want)
	}
	if event.VisitorID(newVisitorKey(t), jane) == *a[0] {
		t.Errorf("another tenant's key gives the same id")
	}
	var salts bool
	if err := admin(t).QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, creds.Schema+".salts").Scan(&salts); err != nil {
		t.Fatal(err)
	}
	if salts {
		t.Error("the tenant's schema still has a salts table")
	}
}

func TestGlobalPrivacyControlDropsEventsOnlyForATenantThatHonoursIt(t *testing.T) {
	for _, honours := range []bool{false, true} {
		t.Run(fmt.Sprintf("respectGlobalPrivacyControl=%v", honours), func(t *testing.T) {
			creds := provision(t, "gpc")
			cfg := tenantConfig("gpc", 600)
			cfg.RespectGlobalPrivacyControl = honours
			svc := startService(t, creds, cfg, nil)
			req, _ := http.NewRequest(http.MethodPost, svc.url+"/api/event", strings.NewReader(pageviewBy(newAnonymousID(t), "acme.test", "https://acme.test/")))
			req.Header.Set("User-Agent", firefox)
			req.Header.Set("Sec-GPC", "1")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			want, rows := http.StatusAccepted, 1
			if honours {
				want, rows = http.StatusNoContent, 0
			}
			if resp.StatusCode != want {
				t.Fatalf("status %d, want %d", resp.StatusCode, want)
			}
			// One event without GPC, so the wait has something to see.
			if a := svc.send(t, "", firefox, pageview("acme.test", "https://acme.test/")); a.status != http.StatusAccepted {
				t.Fatalf("%d %s", a.status, a.body)
			}
			waitRows(t, creds.Schema, rows+1)
			if m := svc.get(t, "/metrics"); honours && !strings.Contains(m, "ingest_events_opted_out_total 1") {
				t.Errorf("the opted-out event is not counted:\n%s", grepLines(m, "ingest_"))
			}
		})
	}
}

func TestEveryAcceptedEventIsWrittenAfterSIGTERM(t *testing.T) {
	creds := provision(t, "drain")
	bin := buildIngest(t)
	cfg := tenantConfig("drain", 0)
	cfgJSON := fmt.Sprintf(`{"tenant":%q,"region":"EU","domains":["acme.test"],"queryParamAllowlist":[],"geoPrecision":"Country","rateLimit":{"eventsPerMinutePerIP":0},"storeIPAddress":false}`, cfg.Tenant)
	cfgPath := writeFile(t, "ingest.json", []byte(cfgJSON))

	// A flush interval far longer than the test: every event is still
	// in the buffer when SIGTERM comes, so only the drain writes them.
	cmd := exec.Command(bin, "--config="+cfgPath, "--listen=127.0.0.1:0", "--metrics-listen=127.0.0.1:0", "--flush-interval=10m", "--flush-rows=100000",
		"--buffer-bytes=268435456", "--shutdown-delay=200ms", "--shutdown-timeout=20s")
	cmd.Env = []string{
		"PGHOST=" + creds.Host, "PGPORT=" + strconv.Itoa(int(creds.Port)), "PGDATABASE=" + creds.Database,
		"PGUSER=" + creds.Username, "PGPASSWORD=" + creds.Password, "PGSSLMODE=" + creds.SSLMode, "PGSCHEMA=" + creds.Schema,
		config.EnvVisitorKey + "=" + hex.EncodeToString(newVisitorKey(t)),
	}
	logs := &syncBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	public, ops := listenAddress(t, logs)
	svc := &service{url: "http://" + public, opsURL: "http://" + ops, logs: logs}
	svc.waitReady(t)

	const n = 500
	var wg sync.WaitGroup
	var accepted, other sync.Map
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a := svc.send(t, fmt.Sprintf("10.1.%d.%d", i/250, i%250), firefox, pageview("acme.test", fmt.Sprintf("https://acme.test/p/%d", i)))
			if a.status == http.StatusAccepted {
				accepted.Store(i, true)
			} else {
				other.Store(i, a.status)
			}
		}()
		if i%50 == 49 {
			wg.Wait()
		}
	}
	wg.Wait()
	count := 0
	accepted.Range(func(any, any) bool { count++; return true })
	if count != n {
		t.Fatalf("%d of %d events were accepted", count, n)
	}
	if got := countRows(t, creds.Schema); got != 0 {
		t.Fatalf("%d rows before SIGTERM: the test would not prove the drain", got)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("ingest exited with %v; its log:\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("ingest did not exit within 30s of SIGTERM; its log:\n%s", logs.String())
	}
	if got := countRows(t, creds.Schema); got != n {
		t.Fatalf("%d rows after the drain, want exactly %d", got, n)
	}
}

func TestADatabaseOutageKeepsWhatWasAcceptedAndBackpressures(t *testing.T) {
	creds := provision(t, "outage")
	proxy := srv.NewProxy(t)
	creds.Port = int32(proxy.Port)
	// Room for about 40 pageviews like these.
	capacity := 40 * writer.EventBytes(event.Kept{Name: "pageview", Hostname: "acme.test", Path: "/10", Referrer: "news.example",
		Browser: "Firefox", OS: "Linux", Device: "desktop"})
	svc := startService(t, creds, tenantConfig("outage", 0), func(o *app.Options) {
		o.BufferBytes = capacity
		o.FlushRows = 10
		o.FlushInterval = 100 * time.Millisecond
	})
	proxy.Cut()

	accepted, full := 0, answer{}
	for i := 0; i < 200 && full.status == 0; i++ {
		a := svc.send(t, "192.0.2.77", firefox, pageview("acme.test", fmt.Sprintf("https://acme.test/%d", i)))
		switch a.status {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			full = a
		default:
			t.Fatalf("event %d: %d %s", i, a.status, a.body)
		}
	}
	if full.status == 0 || full.retryAfter == "" || !strings.Contains(full.body, "buffer_full") {
		t.Fatalf("after %d accepted events the service never answered 503 buffer_full with Retry-After (last %+v)", accepted, full)
	}
	if accepted < 35 || accepted > 40 {
		t.Fatalf("%d events accepted before 503, want the about 40 the buffer's %d bytes hold", accepted, capacity)
	}
	svc.waitUnready(t, "the database unreachable")

	proxy.Restore()
	waitRows(t, creds.Schema, accepted)
	svc.waitReady(t)
	if a := svc.send(t, "192.0.2.78", firefox, pageview("acme.test", "https://acme.test/back")); a.status != http.StatusAccepted {
		t.Fatalf("after the outage: %d %s", a.status, a.body)
	}
	waitRows(t, creds.Schema, accepted+1)
}

// buildIngest builds cmd/ingest once per test binary.
func buildIngest(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ingest-bin-")
		if err != nil {
			buildErr = err
			return
		}
		builtBin = dir + "/ingest"
		out, err := exec.Command("go", "build", "-o", builtBin, "github.com/millimetric/tenant-operator/cmd/ingest").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %w: %s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}

var (
	buildOnce sync.Once
	builtBin  string
	buildErr  error
)

// listenAddress waits for the service's "ingest is serving" log line and
// returns its public and its probes' and metrics' addresses.
func listenAddress(t *testing.T, logs *syncBuffer) (public, ops string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	field := func(line, name string) string {
		i := strings.Index(line, `"`+name+`":"`)
		if i < 0 {
			return ""
		}
		rest := line[i+len(name)+4:]
		return rest[:strings.IndexByte(rest, '"')]
	}
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			if strings.Contains(line, "ingest is serving") {
				return field(line, "address"), field(line, "metricsAddress")
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the service never said where it listens; its log:\n%s", logs.String())
	return "", ""
}
