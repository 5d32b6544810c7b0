//go:build e2e

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

package sdk_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"

	"github.com/millimetric/tenant-operator/internal/browsertest"
	"github.com/millimetric/tenant-operator/internal/ingest/sdk"
)

// aidShape is what the SDK promises mm_aid looks like: 16 random bytes in
// base64url without padding.
var aidShape = regexp.MustCompile(`^[A-Za-z0-9_-]{22}$`)

// beacon is one request the browser sent to an event endpoint.
type beacon struct {
	method, path, host, origin, contentType, cookie string
	body                                            string
	// event is the decoded body; nil when it is not a JSON object.
	event map[string]any
}

// recorder is the stand-in for the ingest service's event endpoint: it
// keeps every request, and hands out the events per site (the "d" field)
// in the order they arrived.
type recorder struct {
	mu      sync.Mutex
	all     []beacon
	bySite  map[string][]map[string]any
	cursors map[string]int
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 64<<10))
	b := beacon{
		method: req.Method, path: req.URL.Path, host: req.Host, origin: req.Header.Get("Origin"),
		contentType: req.Header.Get("Content-Type"), cookie: req.Header.Get("Cookie"), body: string(body),
	}
	_ = json.Unmarshal(body, &b.event)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.all = append(r.all, b)
	if b.event != nil {
		site, _ := b.event["d"].(string)
		r.bySite[site] = append(r.bySite[site], b.event)
	}
	w.WriteHeader(http.StatusAccepted)
}

// next returns the site's next event, waiting for it.
func (r *recorder) next(t *testing.T, site string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		events, i := r.bySite[site], r.cursors[site]
		if i < len(events) {
			r.cursors[site]++
			r.mu.Unlock()
			return events[i]
		}
		r.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: no event %d within 10s", site, r.cursors[site]+1)
	return nil
}

// nextNamed returns the site's next event and fails unless it is named n.
func (r *recorder) nextNamed(t *testing.T, site, n string) map[string]any {
	t.Helper()
	ev := r.next(t, site)
	if ev["n"] != n {
		t.Fatalf("%s: next event is %v, want %q", site, ev, n)
	}
	return ev
}

// pages are the test site's pages by path; PORT is the server's port. The
// SDK comes from ingest.test, another origin than the pages', as it does
// from a tenant's ingest host.
var pages = map[string]string{
	// An SPA whose first script queues a call before the SDK has loaded.
	"/spa/": `<!doctype html><title>Home</title>
<script>window.mm = window.mm || function () { (window.mm.q = window.mm.q || []).push(arguments) };
mm('Queued', {props: {early: true}})</script>
<script defer data-outbound-links data-file-downloads src="http://ingest.test:PORT/js/mm.js"></script>
<a id="out" href="http://elsewhere.test:PORT/landing?email=visitor%40example.com#token">out</a>
<a id="dl" href="/files/report.pdf?token=secret">report</a>
<a id="mail" href="mailto:visitor@example.com">mail</a>`,
	"/plain":   `<!doctype html><title>Plain</title><script defer src="http://ingest.test:PORT/js/mm.js"></script>`,
	"/gpc":     `<!doctype html><title>GPC</title><script defer src="http://ingest.test:PORT/js/mm.gpc.js"></script>`,
	"/nothing": `<!doctype html><title>No script</title>`,
	"/landing": `<!doctype html><title>Landing</title>`,
	"/hash": `<!doctype html><title>Hash</title>
<script defer data-hash data-domain="example.com" data-api="http://api.test:PORT/collect" src="http://ingest.test:PORT/js/mm.js"></script>`,
	// A sandboxed iframe has an opaque origin: reading localStorage throws.
	"/sandboxed": `<!doctype html><title>Sandboxed</title>
<iframe sandbox="allow-scripts" srcdoc="<script data-domain=sandboxed.test src=http://ingest.test:PORT/js/mm.js></script>"></iframe>`,
}

// server serves the pages, the SDK builds, the event endpoints (/api/event
// and /collect, the data-api one) and an empty answer for downloads.
func server(t *testing.T, rec *recorder) (port string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	mux := http.NewServeMux()
	mux.Handle("/api/event", rec)
	mux.Handle("/collect", rec)
	mux.HandleFunc("/js/", func(w http.ResponseWriter, r *http.Request) {
		for _, s := range sdk.All() {
			if s.Name == path.Base(r.URL.Path) {
				w.Header().Set("Content-Type", "text/javascript; charset=utf-8")
				_, _ = w.Write(s.Body)
				return
			}
		}
		http.NotFound(w, r)
	})
	mux.HandleFunc("/files/", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		key := r.URL.Path
		if strings.HasPrefix(key, "/spa/") {
			key = "/spa/"
		}
		html, ok := pages[key]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = io.WriteString(w, strings.ReplaceAll(html, "PORT", port))
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.Listener = ln
	srv.Start()
	t.Cleanup(srv.Close)
	return port
}

// browser starts Chromium with a fresh profile and returns its first tab.
func browser(t *testing.T) context.Context { return browsertest.Start(t) }

// tab opens a new tab in the browser; init, when set, runs in every page
// before the page's own scripts.
func tab(t *testing.T, browser context.Context, init string) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if init != "" {
		if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument,
			page.AddScriptToEvaluateOnNewDocumentParams{Source: init}); err != nil {
			t.Fatal(err)
		}
	}
	return ctx
}

func do(t *testing.T, ctx context.Context, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatal(err)
	}
}

func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](js))
	if err != nil {
		t.Fatalf("%s: %v", js, err)
	}
	return v
}

// storedAID is the page's localStorage mm_aid, or nil.
func storedAID(t *testing.T, ctx context.Context) *string {
	return eval[*string](t, ctx, `localStorage.getItem('mm_aid')`)
}

// TestBrowser loads pages that embed the built SDK in headless Chromium and
// checks what reaches the event endpoint, and what the browser keeps.
func TestBrowser(t *testing.T) {
	rec := &recorder{bySite: map[string][]map[string]any{}, cursors: map[string]int{}}
	port := server(t, rec)
	site := func(host string) string { return "http://" + host + ":" + port }
	browser := browser(t)

	t.Run("pageviews, SPA navigation, custom events and clicks", func(t *testing.T) {
		ctx := tab(t, browser, "")
		home := site("site-a.test") + "/spa/home?utm_source=news"
		do(t, ctx, chromedp.Navigate(home))

		first := rec.nextNamed(t, "site-a.test", "pageview")
		aid, _ := first["aid"].(string)
		if !aidShape.MatchString(aid) {
			t.Fatalf("aid %q is not 22 characters of base64url", aid)
		}
		if want := map[string]any{"n": "pageview", "u": home, "d": "site-a.test", "r": nil, "t": "Home", "aid": aid}; !reflect.DeepEqual(first, want) {
			t.Errorf("first pageview\n got %v\nwant %v", first, want)
		}
		if got := storedAID(t, ctx); got == nil || *got != aid {
			t.Errorf("localStorage mm_aid is %v, the events carry %q", got, aid)
		}
		// The call queued before the SDK loaded is replayed.
		queued := rec.nextNamed(t, "site-a.test", "Queued")
		if !reflect.DeepEqual(queued["p"], map[string]any{"early": true}) || queued["aid"] != aid {
			t.Errorf("queued event: %v", queued)
		}

		do(t, ctx, chromedp.Evaluate[chromedp.Void](`history.pushState({}, '', '/spa/second')`))
		second := rec.nextNamed(t, "site-a.test", "pageview")
		if second["u"] != site("site-a.test")+"/spa/second" || second["aid"] != aid {
			t.Errorf("pageview after pushState: %v", second)
		}

		// Same path, another query: no new page. The marker event sent
		// after it must be the next one.
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`history.pushState({}, '', '/spa/second?tab=2'); mm('Marker')`))
		rec.nextNamed(t, "site-a.test", "Marker")

		if !eval[bool](t, ctx, `var called = false;
			mm('Signup', {props: {plan: 'pro', seats: 3, trial: false}, callback: () => { called = true }}); called`) {
			t.Error("mm()'s callback was not called")
		}
		signup := rec.nextNamed(t, "site-a.test", "Signup")
		if want := map[string]any{"plan": "pro", "seats": float64(3), "trial": false}; !reflect.DeepEqual(signup["p"], want) || signup["aid"] != aid {
			t.Errorf("custom event: %v, want props %v", signup, want)
		}

		// Back two entries, to /spa/home: popstate, another path.
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`history.go(-2)`))
		back := rec.nextNamed(t, "site-a.test", "pageview")
		if back["u"] != home {
			t.Errorf("pageview after popstate: %v, want u %s", back, home)
		}

		// A mailto: link is neither a download nor an outbound page.
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.getElementById('mail').addEventListener('click', e => e.preventDefault())`),
			chromedp.Click(chromedp.ID("mail")),
			chromedp.Click(chromedp.ID("dl")))
		download := rec.nextNamed(t, "site-a.test", "File Download")
		if want := map[string]any{"url": site("site-a.test") + "/files/report.pdf"}; !reflect.DeepEqual(download["p"], want) {
			t.Errorf("download: %v, want props %v (no query)", download, want)
		}

		// The middle button (auxclick), then the primary one, which leaves
		// the page: the beacon outlives it.
		out, err := chromedp.Run(ctx, chromedp.Nodes(chromedp.ID("out")))
		if err != nil {
			t.Fatal(err)
		}
		do(t, ctx, chromedp.MouseClickNode(out[0], chromedp.ButtonMiddle))
		do(t, ctx, chromedp.Click(chromedp.ID("out")))
		want := map[string]any{"url": site("elsewhere.test") + "/landing"}
		for range 2 {
			ev := rec.nextNamed(t, "site-a.test", "Outbound Link: Click")
			if !reflect.DeepEqual(ev["p"], want) || ev["aid"] != aid {
				t.Errorf("outbound click: %v, want props %v (no query, no fragment)", ev, want)
			}
		}
	})

	t.Run("hash routing, data-domain and data-api", func(t *testing.T) {
		ctx := tab(t, browser, "")
		do(t, ctx, chromedp.Navigate(site("site-h.test")+"/hash#/a"))
		first := rec.nextNamed(t, "example.com", "pageview")
		if first["h"] != float64(1) || first["u"] != site("site-h.test")+"/hash#/a" {
			t.Errorf("hash pageview: %v", first)
		}
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`location.hash = '#/b'`))
		second := rec.nextNamed(t, "example.com", "pageview")
		if second["u"] != site("site-h.test")+"/hash#/b" || second["aid"] != first["aid"] {
			t.Errorf("pageview after hashchange: %v", second)
		}
	})

	t.Run("opted out: nothing sent, no id made", func(t *testing.T) {
		ctx := tab(t, browser, "")
		do(t, ctx, chromedp.Navigate(site("site-b.test")+"/nothing"),
			chromedp.Evaluate[chromedp.Void](`localStorage.setItem('mm_ignore', 'true')`),
			chromedp.Navigate(site("site-b.test")+"/plain"),
			chromedp.Evaluate[chromedp.Void](`mm('Ignored'); history.pushState({}, '', '/elsewhere')`))
		if got := storedAID(t, ctx); got != nil {
			t.Errorf("an opted-out browser got mm_aid %q", *got)
		}
		// Opting back in, the next event is the first this site sends.
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`localStorage.removeItem('mm_ignore'); mm('Marker')`))
		rec.nextNamed(t, "site-b.test", "Marker")
	})

	// GPC is on in these pages until the page sets gpcOff.
	const gpc = `Object.defineProperty(Navigator.prototype, 'globalPrivacyControl', {get: () => !window.gpcOff, configurable: true})`

	t.Run("Global Privacy Control: the GPC build sends nothing", func(t *testing.T) {
		ctx := tab(t, browser, gpc)
		do(t, ctx, chromedp.Navigate(site("site-c.test")+"/gpc"),
			chromedp.Evaluate[chromedp.Void](`mm('Ignored'); history.pushState({}, '', '/elsewhere')`))
		if !eval[bool](t, ctx, `navigator.globalPrivacyControl`) {
			t.Fatal("navigator.globalPrivacyControl is not emulated")
		}
		if got := storedAID(t, ctx); got != nil {
			t.Errorf("a GPC browser got mm_aid %q", *got)
		}
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`window.gpcOff = true; mm('Marker')`))
		rec.nextNamed(t, "site-c.test", "Marker")
	})

	t.Run("Global Privacy Control: the default build ignores it", func(t *testing.T) {
		ctx := tab(t, browser, gpc)
		do(t, ctx, chromedp.Navigate(site("site-d.test")+"/plain"))
		if ev := rec.nextNamed(t, "site-d.test", "pageview"); !aidShape.MatchString(ev["aid"].(string)) {
			t.Errorf("pageview: %v", ev)
		}
	})

	// The page is on the endpoint's origin and has a cookie there, which a
	// fetch with its default credentials (same-origin) would send.
	t.Run("sendBeacon refused: fetch with keepalive, without credentials", func(t *testing.T) {
		ctx := tab(t, browser, `Navigator.prototype.sendBeacon = () => false;
			if (location.protocol === 'http:') document.cookie = 'probe=1; path=/'`)
		do(t, ctx, chromedp.Navigate(site("ingest.test")+"/plain"))
		rec.nextNamed(t, "ingest.test", "pageview")
		if got := eval[string](t, ctx, `document.cookie`); got != "probe=1" {
			t.Errorf("the probe cookie is %q, want probe=1", got)
		}
		// The checks below want no cookie at the end: remove the probe.
		do(t, ctx, chromedp.Evaluate[chromedp.Void](`document.cookie = 'probe=; max-age=0; path=/'`))
	})

	t.Run("no localStorage: events without an id", func(t *testing.T) {
		ctx := tab(t, browser, "")
		do(t, ctx, chromedp.Navigate(site("site-e.test")+"/sandboxed"))
		ev := rec.nextNamed(t, "sandboxed.test", "pageview")
		if _, ok := ev["aid"]; ok {
			t.Errorf("an event from a sandboxed frame has an aid: %v", ev)
		}
	})

	// What every request to the endpoints had in common: a text/plain POST
	// from the page's origin (no preflight: no OPTIONS), no cookie, a JSON
	// body.
	t.Run("requests", func(t *testing.T) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if len(rec.all) == 0 {
			t.Fatal("no request reached the endpoints")
		}
		for _, b := range rec.all {
			t.Logf("%s http://%s%s Origin %s, Content-Type %s: %s", b.method, b.host, b.path, b.origin, b.contentType, b.body)
			if b.method != http.MethodPost || !strings.HasPrefix(b.contentType, "text/plain") || b.cookie != "" || b.event == nil {
				t.Errorf("%s %s (Host %s, Origin %s, Content-Type %q, Cookie %q): %s",
					b.method, b.path, b.host, b.origin, b.contentType, b.cookie, b.body)
			}
			wantHost := "ingest.test:" + port
			if b.path == "/collect" {
				wantHost = "api.test:" + port
			}
			if b.host != wantHost {
				t.Errorf("%s sent to %s, want %s", b.body, b.host, wantHost)
			}
		}
	})

	// The sites that must send nothing but their marker sent one event
	// each, however late another would have arrived.
	t.Run("opted-out and GPC sites sent only their marker", func(t *testing.T) {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, site := range []string{"site-b.test", "site-c.test"} {
			if events := rec.bySite[site]; len(events) != 1 {
				t.Errorf("%s sent %v, want only the marker", site, events)
			}
		}
	})

	t.Run("no cookie on any origin", func(t *testing.T) {
		res, err := chromedp.Call(browser, storage.GetCookies, storage.GetCookiesParams{})
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range res.Cookies {
			t.Errorf("cookie %s on %s", c.Name, c.Domain)
		}
	})
}
