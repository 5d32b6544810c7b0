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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/ingest/geoip/geoiptest"
	"github.com/millimetric/tenant-operator/internal/localrun"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// The tests of this file send their events the way a website's visitors
// do: through the local gateway (Traefik, hack/local/gateway.sh), which
// routes them by host name, with the HTTPRoute the operator renders for
// each tenant, to the tenant's ingest Service. The tenant's ingest process
// stands in for its pods on the Service's ClusterIP
// (runIngestBehindItsService), where Traefik sends.

const (
	// ingestDomain is the suffix of the tenants' ingest host names here;
	// the browser tests' Chromium resolves every *.test name to 127.0.0.1.
	ingestDomain = "edge.test"
	// traefikController is the controllerName of Traefik's Gateway API
	// implementation, as it writes it into a route's status.parents.
	traefikController = "traefik.io/gateway-controller"
)

var (
	// gatewayURL is the local gateway's address (E2E_GATEWAY_URL).
	gatewayURL string
	// gateway is the platform Gateway and its listener the tenants' routes
	// attach to, as --ingest-gateway names it (E2E_GATEWAY,
	// namespace/name/section).
	gateway string
)

// setUpGateway reads where the local gateway is, from test-e2e.sh.
func setUpGateway() error {
	if gatewayURL = os.Getenv("E2E_GATEWAY_URL"); gatewayURL == "" {
		return fmt.Errorf("E2E_GATEWAY_URL must be the local gateway's URL (hack/local/gateway.sh env)")
	}
	if gateway = os.Getenv("E2E_GATEWAY"); len(strings.Split(gateway, "/")) != 3 {
		return fmt.Errorf("E2E_GATEWAY must be namespace/name/section, not %q", gateway)
	}
	return nil
}

// routing is the operator's flags that route tenants through the Gateway
// gw (namespace/name/section) under ingestDomain, trusting Traefik's
// address (it connects to the Services' ClusterIPs from 127.0.0.1).
func routing(gw string) []string {
	return []string{"--ingest-gateway=" + gw, "--ingest-domain=" + ingestDomain, "--ingest-trusted-proxies=127.0.0.1/32"}
}

// ingestHost is a tenant's ingest host name.
func ingestHost(tenant string) string { return tenant + "." + ingestDomain }

// runIngestBehindItsService runs the tenant's ingest container as
// runIngest does, listening on its ingest Service's ClusterIP and port
// (loopback addresses on the local cluster), where the gateway sends the
// tenant's traffic.
func runIngestBehindItsService(t testing.TB, name, ns string, extraArgs ...string) (logs *syncBuffer, opsURL string) {
	t.Helper()
	addr, err := localrun.ServiceAddress(context.Background(), k8s, ns, render.IngestName, render.IngestServicePort)
	NewWithT(t).Expect(err).NotTo(HaveOccurred())
	_, logs, _, opsURL = runIngestAt(t, name, ns, addr, extraArgs...)
	return logs, opsURL
}

// servedThroughTheGateway waits until Traefik has accepted the tenant's
// route, as the operator rendered it (the tenant's Routed condition, and
// Traefik's own word in the route's status), and the gateway serves the
// tenant's host name.
func servedThroughTheGateway(t testing.TB, name string) {
	t.Helper()
	g := NewWithT(t)
	g.Eventually(func() string { return conditionOf(name, analyticsv1alpha1.ConditionRouted) }, wait, tick).
		Should(Equal("True/"+analyticsv1alpha1.ReasonRouteAccepted), "tenant %s's route", name)
	g.Expect(routeAcceptance(render.DefaultNamespacePrefix+name, render.IngestRouteName)).To(Equal("Accepted ResolvedRefs"))
	// Traefik applies the configuration a moment after writing the status.
	g.Eventually(func() int { return getSDK(ingestHost(name)) }, wait, tick).Should(Equal(http.StatusOK), "the gateway does not serve %s", ingestHost(name))
}

// routeAcceptance is what Traefik says of the route in its status.parents:
// the types of its True conditions, or why one is not True.
func routeAcceptance(ns, name string) string {
	route := &gatewayv1.HTTPRoute{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, route); err != nil {
		return err.Error()
	}
	for _, p := range route.Status.Parents {
		if p.ControllerName != traefikController {
			continue
		}
		var held []string
		for _, c := range []string{string(gatewayv1.RouteConditionAccepted), string(gatewayv1.RouteConditionResolvedRefs)} {
			cond := meta.FindStatusCondition(p.Conditions, c)
			if cond == nil || cond.Status != metav1.ConditionTrue {
				return fmt.Sprintf("%s not True: %+v", c, cond)
			}
			held = append(held, c)
		}
		return strings.Join(held, " ")
	}
	return "no status from " + traefikController
}

// visitor is an HTTP client whose connections come from one address: a
// loopback address of its own stands for a visitor's public one.
func visitor(from netip.Addr) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: dialer.DialContext, DisableKeepAlives: true}}
}

// getSDK fetches the SDK (/js/mm.js) from host through the gateway and
// returns the status (0 when the gateway did not answer).
func getSDK(host string) int {
	req, _ := http.NewRequest(http.MethodGet, gatewayURL+"/js/mm.js", nil)
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// sendEvent posts a pageview of page (a URL on one of the tenant's
// domains) to host through the gateway, as the SDK does, from client, and
// returns the status and the body.
func sendEvent(client *http.Client, host, page string) (int, string, error) {
	domain := strings.SplitN(strings.TrimPrefix(page, "https://"), "/", 2)[0]
	body, _ := json.Marshal(map[string]string{"n": "pageview", "u": page, "d": domain})
	req, _ := http.NewRequest(http.MethodPost, gatewayURL+"/api/event", bytes.NewReader(body))
	req.Host = host
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

// countEvents counts the events of a tenant's schema in a region's
// database; false when the schema's events table is not there.
func countEvents(g Gomega, region analyticsv1alpha1.Region, schema, where string) (int, bool) {
	ctx := context.Background()
	conn, err := storage.Connect(ctx, admin[region])
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close(ctx) }()
	var exists bool
	g.Expect(conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+".events").Scan(&exists)).To(Succeed())
	if !exists {
		return 0, false
	}
	var n int
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.events WHERE `+where).Scan(&n)).To(Succeed())
	return n, true
}

// TestRequestsThroughTheGatewayLandInTheirTenantsSchemas sends events to
// two tenants' host names on the one gateway port: each lands in its own
// tenant's schema, in its region, and a host name no tenant has gets the
// gateway's 404.
func TestRequestsThroughTheGatewayLandInTheirTenantsSchemas(t *testing.T) {
	startOperator(t, "a", routing(gateway)...)
	withRegions(t)
	g := NewWithT(t)
	tenants := []struct {
		name   string
		region analyticsv1alpha1.Region
		events int
	}{{"e2e-gw-eu", analyticsv1alpha1.RegionEU, 3}, {"e2e-gw-us", analyticsv1alpha1.RegionUS, 2}}
	for _, tn := range tenants {
		createTenant(t, tn.name, analyticsv1alpha1.AnalyticsTenantSpec{
			Region: tn.region,
			Ingest: &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](1)},
		})
	}
	for _, tn := range tenants {
		ns := render.DefaultNamespacePrefix + tn.name
		g.Eventually(func() bool { return isReady(tn.name) }, wait, tick).Should(BeTrue())
		runIngestBehindItsService(t, tn.name, ns)
		servedThroughTheGateway(t, tn.name)
		tenant := &analyticsv1alpha1.AnalyticsTenant{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Name: tn.name}, tenant)).To(Succeed())
		g.Expect(tenant.Status.Ingest).NotTo(BeNil())
		g.Expect(tenant.Status.Ingest.URL).To(Equal("https://" + ingestHost(tn.name)))
	}

	for _, tn := range tenants {
		for i := range tn.events {
			status, body, err := sendEvent(http.DefaultClient, ingestHost(tn.name), fmt.Sprintf("https://%s.e2e.test/gateway/%d", tn.name, i))
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(status).To(Equal(http.StatusAccepted), "event %d to %s: %s", i, tn.name, body)
		}
	}
	// Another tenant's site sent to this tenant's host name reaches this
	// tenant's ingest, which refuses it.
	status, body, err := sendEvent(http.DefaultClient, ingestHost(tenants[0].name), "https://"+tenants[1].name+".e2e.test/gateway/x")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusForbidden), body)
	g.Expect(body).To(ContainSubstring("foreign_domain"))
	// No route has this host name.
	g.Expect(getSDK("nobody." + ingestDomain)).To(Equal(http.StatusNotFound))

	for _, tn := range tenants {
		schema := storageOf(t, tn.name).Schema
		where := `hostname = '` + tn.name + `.e2e.test' AND url_path LIKE '/gateway/%'`
		g.Eventually(func() int { n, _ := countEvents(g, tn.region, schema, where); return n }, wait, tick).Should(Equal(tn.events), "%s's events in its schema", tn.name)
		for _, other := range []analyticsv1alpha1.Region{analyticsv1alpha1.RegionEU, analyticsv1alpha1.RegionUS} {
			if other != tn.region {
				_, there := countEvents(g, other, schema, "true")
				g.Expect(there).To(BeFalse(), "%s has a schema in the %s database", tn.name, other)
			}
		}
	}
}

// oneEventAMinuteBehindTheGateway starts an operator routing through the
// gateway (with operatorArgs besides) and a tenant allowing one event a
// minute per visitor address, runs its ingest behind its Service with a
// GeoIP database that puts the visitors' addresses, 127.100.0.0/16, in
// Berlin, and waits until the gateway serves it. It returns ingest's log.
func oneEventAMinuteBehindTheGateway(t *testing.T, name string, operatorArgs ...string) *syncBuffer {
	t.Helper()
	startOperator(t, "a", append(routing(gateway), operatorArgs...)...)
	withRegions(t)
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{
		Ingest: &analyticsv1alpha1.IngestSpec{
			Replicas:  ptr.To[int32](1),
			RateLimit: &analyticsv1alpha1.RateLimitSpec{EventsPerMinutePerIP: 1},
		},
	})
	NewWithT(t).Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	db := geoiptest.Write(t, []geoiptest.Entry{{Prefix: netip.MustParsePrefix("127.100.0.0/16"), Country: "DE", Subdivision: "BE", City: "Berlin"}})
	logs, _ := runIngestBehindItsService(t, name, render.DefaultNamespacePrefix+name, "--geoip-db="+db)
	servedThroughTheGateway(t, name)
	return logs
}

// TestSevenHundredVisitorsThroughTheGatewayAreSevenHundredAndLocated is
// issue 21's 700 visitors behind one edge address, through the gateway:
// each visitor comes from a loopback address of its own, Traefik sends on
// the address in X-Forwarded-For, and ingest, trusting Traefik's address
// only (the operator's --ingest-trusted-proxies: routing), rate-limits and locates each visitor by its own address. With one
// event a minute per address allowed, all 700 are accepted (were the
// gateway's address the key, 699 would be refused) and a second one from
// the same visitor is refused; every event has the location the GeoIP
// database gives the visitor's address, and no address is stored.
func TestSevenHundredVisitorsThroughTheGatewayAreSevenHundredAndLocated(t *testing.T) {
	g := NewWithT(t)
	const name = "e2e-gw-visitors"
	logs := oneEventAMinuteBehindTheGateway(t, name)

	const visitors = 700
	addrs := make([]netip.Addr, visitors)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{127, 100, byte(i / 250), byte(i%250 + 1)})
	}
	statuses := make([]int, visitors)
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				statuses[i], _, _ = sendEvent(visitor(addrs[i]), ingestHost(name), fmt.Sprintf("https://%s.e2e.test/visit/%d", name, i))
			}
		})
	}
	for i := range visitors {
		work <- i
	}
	close(work)
	wg.Wait()
	byStatus := map[int]int{}
	for _, s := range statuses {
		byStatus[s]++
	}
	g.Expect(byStatus).To(Equal(map[int]int{http.StatusAccepted: visitors}), "each visitor's first event is accepted: %s", logs)
	status, _, err := sendEvent(visitor(addrs[0]), ingestHost(name), "https://"+name+".e2e.test/visit/again")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusTooManyRequests), "a visitor's second event within the minute is over its own limit")

	schema := storageOf(t, name).Schema
	g.Eventually(func() int {
		n, _ := countEvents(g, analyticsv1alpha1.RegionEU, schema, `url_path LIKE '/visit/%'`)
		return n
	}, wait, tick).Should(Equal(visitors))
	located, _ := countEvents(g, analyticsv1alpha1.RegionEU, schema, `url_path LIKE '/visit/%' AND country = 'DE' AND region = 'DE-BE' AND city = 'Berlin'`)
	g.Expect(located).To(Equal(visitors), "every event has its visitor's location")

	ctx := context.Background()
	conn, err := storage.Connect(ctx, admin[analyticsv1alpha1.RegionEU])
	g.Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close(ctx) }()
	var dump string
	g.Expect(conn.QueryRow(ctx, `SELECT COALESCE(string_agg(row_to_json(e)::text, E'\n'), '') FROM `+schema+`.events e`).Scan(&dump)).To(Succeed())
	g.Expect(dump).NotTo(ContainSubstring("127.100."), "an address is stored")
	g.Expect(logs.String()).NotTo(ContainSubstring("127.100."), "an address is logged")
}

// TestForwardingHeadersAVisitorMakesUpAreNotBelievedThroughTheGateway has
// one visitor send three events through the gateway, each with another
// made-up address in a forwarding header, for each header ingest may read
// (with --ingest-cf-connecting-ip on). One event a minute per address is
// allowed: were a made-up address believed, each would be a rate-limit key
// of its own and all three accepted. Traefik replaces an untrusted
// client's X-Forwarded-For and CF-Connecting-IP is believed only from
// behind a trusted hop, so the key and the location are the visitor's; a
// made-up Forwarded disagrees with Traefik's X-Forwarded-For, so neither is
// believed and the key is the gateway's, without a location.
func TestForwardingHeadersAVisitorMakesUpAreNotBelievedThroughTheGateway(t *testing.T) {
	const name = "e2e-gw-spoof"
	// The made-up addresses are not in the GeoIP database, nor is the
	// gateway's.
	logs := oneEventAMinuteBehindTheGateway(t, name, "--ingest-cf-connecting-ip")
	schema := storageOf(t, name).Schema

	for i, c := range []struct {
		header, format string
		located        bool
	}{
		{"X-Forwarded-For", "203.0.113.%d", true},
		{"CF-Connecting-IP", "203.0.113.%d", true},
		{"Forwarded", "for=203.0.113.%d", false},
	} {
		t.Run(c.header, func(t *testing.T) {
			g := NewWithT(t)
			from := visitor(netip.AddrFrom4([4]byte{127, 100, 7, byte(i + 1)}))
			var statuses []int
			for k := 1; k <= 3; k++ {
				spoofing := &http.Client{Timeout: from.Timeout, Transport: withHeader{from.Transport, c.header, fmt.Sprintf(c.format, k)}}
				status, body, err := sendEvent(spoofing, ingestHost(name), fmt.Sprintf("https://%s.e2e.test/spoof/%d/%d", name, i, k))
				g.Expect(err).NotTo(HaveOccurred())
				g.Expect(status).To(BeElementOf(http.StatusAccepted, http.StatusTooManyRequests), body)
				statuses = append(statuses, status)
			}
			g.Expect(statuses).To(Equal([]int{http.StatusAccepted, http.StatusTooManyRequests, http.StatusTooManyRequests}),
				"made-up addresses in %s became rate-limit keys: %s", c.header, logs)
			located := `country = 'DE' AND region = 'DE-BE' AND city = 'Berlin'`
			if !c.located {
				located = `country IS NULL AND city IS NULL`
			}
			g.Eventually(func() int {
				n, _ := countEvents(g, analyticsv1alpha1.RegionEU, schema, fmt.Sprintf(`url_path = '/spoof/%d/1' AND %s`, i, located))
				return n
			}, wait, tick).Should(Equal(1), "the accepted event's location")
		})
	}
	NewWithT(t).Expect(logs.String()).NotTo(ContainSubstring("203.0.113."), "a made-up address is logged")
}

// withHeader is a transport that sets one header on every request, as a
// visitor may on its own requests.
type withHeader struct {
	next        http.RoundTripper
	name, value string
}

// RoundTrip implements http.RoundTripper.
func (w withHeader) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set(w.name, w.value)
	return w.next.RoundTrip(r)
}

// TestATenantIsNotReadyUntilTheGatewayAcceptsItsRoute routes a tenant
// through a Gateway of the test's own, on the gateway's port, whose
// listener at first admits routes from its own namespace only: Traefik
// refuses the tenant's route, and the tenant is Routed False and not
// Ready, until the listener admits every namespace.
func TestATenantIsNotReadyUntilTheGatewayAcceptsItsRoute(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	parts := strings.Split(gateway, "/")
	platform := &gatewayv1.Gateway{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: parts[0], Name: parts[1]}, platform)).To(Succeed())
	held := &gatewayv1.Gateway{
		ObjectMeta: metav1.ObjectMeta{Namespace: parts[0], Name: "e2e-held"},
		Spec: gatewayv1.GatewaySpec{
			GatewayClassName: platform.Spec.GatewayClassName,
			Listeners: []gatewayv1.Listener{{
				Name: gatewayv1.SectionName(parts[2]), Protocol: gatewayv1.HTTPProtocolType, Port: platform.Spec.Listeners[0].Port,
				AllowedRoutes: &gatewayv1.AllowedRoutes{Namespaces: &gatewayv1.RouteNamespaces{From: ptr.To(gatewayv1.NamespacesFromSame)}},
			}},
		},
	}
	g.Expect(k8s.Create(ctx, held)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), held) })

	startOperator(t, "a", routing(parts[0]+"/"+held.Name+"/"+parts[2])...)
	withRegions(t)
	const name, ns = "e2e-gw-held", "tenant-e2e-gw-held"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](1)}})
	g.Eventually(func() string { return conditionOf(name, analyticsv1alpha1.ConditionRouted) }, wait, tick).
		Should(Equal("False/" + analyticsv1alpha1.ReasonRouteNotAccepted))
	g.Expect(routeAcceptance(ns, render.IngestRouteName)).To(HavePrefix("Accepted not True"), "Traefik refuses the route")
	g.Eventually(func() string { return conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable) }, wait, tick).Should(HavePrefix("True/"))
	g.Consistently(func() bool { return isReady(name) }, 3*time.Second, tick).Should(BeFalse(), "Ready while the gateway refuses the route: %s", readyCondition(name))

	update(t, held, func(gw *gatewayv1.Gateway) {
		gw.Spec.Listeners[0].AllowedRoutes.Namespaces.From = ptr.To(gatewayv1.NamespacesFromAll)
	})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue(), "not Ready once the gateway accepts the route: %s", readyCondition(name))
	g.Expect(conditionOf(name, analyticsv1alpha1.ConditionRouted)).To(Equal("True/" + analyticsv1alpha1.ReasonRouteAccepted))
	runIngestBehindItsService(t, name, ns)
	g.Eventually(func() int { return getSDK(ingestHost(name)) }, wait, tick).Should(Equal(http.StatusOK))
}

// TestAHostnameAnotherTenantClaimedIsRefusedAndReachesOnlyTheFirst has two
// tenants claim the same first-party host name: the later one is Routed
// False (HostnameConflict) and keeps its default host name, and through
// the gateway the contested name reaches the first tenant only.
func TestAHostnameAnotherTenantClaimedIsRefusedAndReachesOnlyTheFirst(t *testing.T) {
	startOperator(t, "a", routing(gateway)...)
	withRegions(t)
	g := NewWithT(t)
	const first, second, contested = "e2e-gw-first", "e2e-gw-second", "stats.shared.test"
	spec := analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{
		Replicas: ptr.To[int32](1), Hostnames: []analyticsv1alpha1.Hostname{contested},
	}}
	createTenant(t, first, spec)
	g.Eventually(func() bool { return isReady(first) }, wait, tick).Should(BeTrue())
	// The earlier creationTimestamp decides, and it counts whole seconds:
	// the first tenant is often Ready within the second it was created
	// in, and two tenants of the same second are ordered by UID instead.
	created := createdAt(t, first)
	time.Sleep(time.Until(created.Add(time.Second + 100*time.Millisecond)))
	createTenant(t, second, spec)
	g.Expect(createdAt(t, second).After(created)).To(BeTrue(), "created in the same second as the first")
	g.Eventually(func() string { return conditionOf(second, analyticsv1alpha1.ConditionRouted) }, wait, tick).
		Should(Equal("False/" + analyticsv1alpha1.ReasonHostnameConflict))
	g.Expect(conditionOf(first, analyticsv1alpha1.ConditionRouted)).To(Equal("True/" + analyticsv1alpha1.ReasonRouteAccepted))

	runIngestBehindItsService(t, first, render.DefaultNamespacePrefix+first)
	runIngestBehindItsService(t, second, render.DefaultNamespacePrefix+second)
	servedThroughTheGateway(t, first)
	// The later tenant's route, without the contested name, is served.
	g.Eventually(func() string { return routeAcceptance(render.DefaultNamespacePrefix+second, render.IngestRouteName) }, wait, tick).Should(Equal("Accepted ResolvedRefs"))
	g.Eventually(func() int { return getSDK(ingestHost(second)) }, wait, tick).Should(Equal(http.StatusOK))

	// The contested name reaches the first tenant: its own site is
	// accepted, the second tenant's refused as foreign.
	status, body, err := sendEvent(http.DefaultClient, contested, "https://"+first+".e2e.test/contested")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusAccepted), body)
	status, body, err = sendEvent(http.DefaultClient, contested, "https://"+second+".e2e.test/contested")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(status).To(Equal(http.StatusForbidden), body)
	firstSchema, secondSchema := storageOf(t, first).Schema, storageOf(t, second).Schema
	g.Eventually(func() int {
		n, _ := countEvents(g, analyticsv1alpha1.RegionEU, firstSchema, `url_path = '/contested'`)
		return n
	}, wait, tick).Should(Equal(1))
	n, _ := countEvents(g, analyticsv1alpha1.RegionEU, secondSchema, `url_path = '/contested'`)
	g.Expect(n).To(BeZero())
}
