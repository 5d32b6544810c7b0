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

package e2e

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/storage"
	"github.com/chromedp/chromedp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/browsertest"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/render"
	pgstorage "github.com/millimetric/tenant-operator/internal/storage"
)

// storedEvent is a row of the tenant's events table, as the test reads it.
type storedEvent struct {
	name, host, path, title string
	visitor                 *int64
}

// TestARealBrowserIsCountedByItsMMAIDAndKeepsNoCookie is the policy's
// "visitors counted without cookies" with the parts a customer's site
// really meets: headless Chromium loads pages of two sites (two origins)
// that embed the SDK from the tenant's ingest host name, through the local
// gateway to the tenant's ingest, run exactly as the operator rendered it
// (its visitor key from the tenant's Secret), writing into the region's
// PostgreSQL.
func TestARealBrowserIsCountedByItsMMAIDAndKeepsNoCookie(t *testing.T) {
	startOperator(t, "a", routing(gateway)...)
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-browser", "tenant-e2e-browser"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{
		Domains: []analyticsv1alpha1.Domain{"site-a.test", "site-b.test"},
		Ingest:  &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](1)},
	})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	logs, opsURL := runIngestBehindItsService(t, name, ns)
	servedThroughTheGateway(t, name)
	gatewayPort := gatewayURL[strings.LastIndex(gatewayURL, ":")+1:]

	// The customer's sites: each page embeds the SDK with the one line
	// the README gives, from the tenant's ingest host name, which the
	// gateway routes to the tenant's ingest.
	sites := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if r.URL.Path == "/blank" { // a page without the SDK, to set the opt-out
			fmt.Fprint(w, `<!doctype html><title>Blank</title>`)
			return
		}
		fmt.Fprintf(w, `<!doctype html><title>Page %s</title>
<script defer src="http://%s:%s/js/mm.js"></script>`, r.URL.Path, ingestHost(name), gatewayPort)
	}), ReadHeaderTimeout: 5 * time.Second}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	g.Expect(err).NotTo(HaveOccurred())
	go func() { _ = sites.Serve(ln) }()
	t.Cleanup(func() { _ = sites.Close() })
	site := func(host, path string) string {
		return "http://" + host + ":" + strconv.Itoa(ln.Addr().(*net.TCPAddr).Port) + path
	}

	// requests is what ingest has counted of the events it was sent.
	requests := func() string {
		resp, err := http.Get(opsURL + "/metrics")
		g.Expect(err).NotTo(HaveOccurred())
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		g.Expect(err).NotTo(HaveOccurred())
		var counts []string
		for _, l := range strings.Split(string(body), "\n") {
			if strings.HasPrefix(l, "ingest_events_") {
				counts = append(counts, l)
			}
		}
		return strings.Join(counts, "\n")
	}
	run := func(tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		g.Expect(chromedp.Do(tab, actions...)).To(Succeed())
	}
	mmAID := func(tab context.Context) string {
		t.Helper()
		v, err := chromedp.Run(tab, chromedp.Evaluate[*string](`localStorage.getItem('mm_aid')`))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(v).NotTo(BeNil(), "no mm_aid in localStorage")
		return *v
	}

	// One browser: a pageview, an SPA navigation, a custom event and a
	// reload on site A, then a page of site B.
	browser := browsertest.Start(t)
	run(browser, chromedp.Navigate(site("site-a.test", "/home")))
	g.Eventually(func() string {
		v, _ := chromedp.Run(browser, chromedp.Evaluate[*string](`localStorage.getItem('mm_aid')`))
		return ptr.Deref(v, "")
	}, wait, tick).ShouldNot(BeEmpty())
	aidA := mmAID(browser)
	run(browser, chromedp.Evaluate[chromedp.Void](`history.pushState({}, '', '/pricing')`))
	run(browser, chromedp.Evaluate[chromedp.Void](`mm('Signup', {props: {plan: 'pro'}})`))
	run(browser, chromedp.Reload())
	run(browser, chromedp.Navigate(site("site-b.test", "/home")))
	aidB := mmAID(browser)

	// Another browser profile on site A.
	other := browsertest.Start(t)
	run(other, chromedp.Navigate(site("site-a.test", "/other")))
	aidOther := mmAID(other)

	// An opted-out browser sends nothing.
	optedOut := browsertest.Start(t)
	run(optedOut, chromedp.Navigate(site("site-a.test", "/blank")),
		chromedp.Evaluate[chromedp.Void](`localStorage.setItem('mm_ignore', 'true')`))

	schema := storageOf(t, name).Schema
	rows := func() []storedEvent {
		conn, err := pgstorage.Connect(ctx, admin[analyticsv1alpha1.RegionEU])
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close(ctx) }()
		r, err := conn.Query(ctx, `SELECT event_name, hostname, url_path, COALESCE(title, ''), visitor_id FROM `+schema+`.events ORDER BY received_at`)
		g.Expect(err).NotTo(HaveOccurred())
		defer r.Close()
		var out []storedEvent
		for r.Next() {
			var e storedEvent
			g.Expect(r.Scan(&e.name, &e.host, &e.path, &e.title, &e.visitor)).To(Succeed())
			out = append(out, e)
		}
		g.Expect(r.Err()).NotTo(HaveOccurred())
		return out
	}
	g.Eventually(func() int { return len(rows()) }, wait, tick).Should(Equal(6), "pageview, SPA pageview, Signup, reload, site B, other profile: %s", logs)
	before := requests()
	run(optedOut, chromedp.Navigate(site("site-a.test", "/opted-out")))
	g.Eventually(func() bool {
		loaded, _ := chromedp.Run(optedOut, chromedp.Evaluate[bool](`typeof mm === 'function'`))
		return loaded
	}, wait, tick).Should(BeTrue(), "the SDK did not load in the opted-out browser")
	// The SDK has run; give a beacon, were there one, time to arrive.
	time.Sleep(2 * time.Second)
	g.Expect(requests()).To(Equal(before), "an opted-out browser sent an event")
	noID, err := chromedp.Run(optedOut, chromedp.Evaluate[*string](`localStorage.getItem('mm_aid')`))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(noID).To(BeNil(), "an opted-out browser was given an mm_aid")

	// What the database holds: one visitor for everything browser 1 did
	// on site A, another for its visit to site B, another for profile 2.
	secret := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestSecretName}, secret)).To(Succeed())
	key := render.VisitorKeyOf(secret)
	g.Expect(key).NotTo(BeNil())
	want := []storedEvent{
		{"pageview", "site-a.test", "/home", "Page /home", ptr.To(event.VisitorID(key, aidA))},
		{"pageview", "site-a.test", "/pricing", "Page /home", ptr.To(event.VisitorID(key, aidA))},
		{"Signup", "site-a.test", "/pricing", "Page /home", ptr.To(event.VisitorID(key, aidA))},
		{"pageview", "site-a.test", "/pricing", "Page /pricing", ptr.To(event.VisitorID(key, aidA))},
		{"pageview", "site-b.test", "/home", "Page /home", ptr.To(event.VisitorID(key, aidB))},
		{"pageview", "site-a.test", "/other", "Page /other", ptr.To(event.VisitorID(key, aidOther))},
	}
	// Beacons may arrive in any order.
	g.Expect(rows()).To(ConsistOf(want))
	g.Expect(aidB).NotTo(Equal(aidA), "two origins share an mm_aid")
	g.Expect(aidOther).NotTo(Equal(aidA), "two profiles share an mm_aid")

	// No cookie on any origin, in any of the browsers.
	for _, b := range []context.Context{browser, other, optedOut} {
		cookies, err := chromedp.Call(b, storage.GetCookies, storage.GetCookiesParams{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(cookies.Cookies).To(BeEmpty())
	}

	// The browsers' own ids are nowhere: not in any column, not in the
	// ingest log. The database holds their keyed hashes only.
	conn, err := pgstorage.Connect(ctx, admin[analyticsv1alpha1.RegionEU])
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close(ctx) }()
	var dump string
	g.Expect(conn.QueryRow(ctx, `SELECT COALESCE(string_agg(row_to_json(e)::text, E'\n'), '') FROM `+schema+`.events e`).Scan(&dump)).To(Succeed())
	for _, aid := range []string{aidA, aidB, aidOther} {
		g.Expect(dump).NotTo(ContainSubstring(aid))
		g.Expect(logs.String()).NotTo(ContainSubstring(aid))
	}
	g.Expect(logs.String()).NotTo(ContainSubstring(hex.EncodeToString(key)))
}
