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

package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/testenv"
)

// The gateway the routing tests' instances attach routes to. No gateway
// controller runs in envtest: the tests write the route's status.parents
// as one would (the gateway itself is exercised by the e2e suite).
var testGateway = render.GatewayRef{Namespace: "edge", Name: "public", SectionName: "https"}

const testIngestDomain = "ingest.millimetric.example"

// routing configures an instance to route its tenants through testGateway.
func routing(s *render.Settings) {
	s.IngestGateway = &testGateway
	s.IngestDomain = testIngestDomain
	s.IngestTrustedProxies = []string{"10.0.0.0/8"}
	s.GatewayNamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: testGateway.Namespace}}
}

func getRoute(namespace string) func() *gatewayv1.HTTPRoute {
	return func() *gatewayv1.HTTPRoute {
		route := &gatewayv1.HTTPRoute{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: render.IngestRouteName}, route); err != nil {
			return nil
		}
		return route
	}
}

func hostnamesOf(namespace string) func() []gatewayv1.Hostname {
	return func() []gatewayv1.Hostname {
		if r := getRoute(namespace)(); r != nil {
			return r.Spec.Hostnames
		}
		return nil
	}
}

// acceptRoute plays the gateway controller: it reports the tenant's route
// Accepted (or not) and its references resolved, at its generation.
func acceptRoute(t *testing.T, namespace string, accepted metav1.ConditionStatus) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		route := getRoute(namespace)()
		if route == nil {
			return apierrors.NewNotFound(gatewayv1.Resource("httproutes"), namespace)
		}
		reason := "Accepted"
		if accepted != metav1.ConditionTrue {
			reason = "NotAllowedByListeners"
		}
		now := metav1.Now()
		route.Status.Parents = []gatewayv1.RouteParentStatus{{
			ParentRef:      testGateway.ParentRef(),
			ControllerName: "example.com/gateway-controller",
			Conditions: []metav1.Condition{
				{Type: "Accepted", Status: accepted, Reason: reason, Message: "as the test says", ObservedGeneration: route.Generation, LastTransitionTime: now},
				{Type: "ResolvedRefs", Status: metav1.ConditionTrue, Reason: "ResolvedRefs", ObservedGeneration: route.Generation, LastTransitionTime: now},
			},
		}}
		return k8s.Status().Update(context.Background(), route)
	}, wait, tick).Should(Succeed())
}

func haveReason(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason))
}

func TestATenantIsRoutedThroughTheGatewayAndReadyOnlyOnceTheGatewayAcceptsTheRoute(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	gw := startInstance(t, "routed", routing)
	newTenant(t, "routed", analyticsv1alpha1.AnalyticsTenantSpec{
		Ingest: &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{"stats.routed.example", "collect.routed.example"}},
	}, shardLabel, "routed")
	ns := "tenant-routed"

	g.Eventually(getRoute(ns), wait, tick).ShouldNot(BeNil())
	route := getRoute(ns)()
	g.Expect(route.Spec.ParentRefs).To(Equal([]gatewayv1.ParentReference{testGateway.ParentRef()}))
	g.Expect(route.Spec.Hostnames).To(Equal([]gatewayv1.Hostname{"collect.routed.example", "routed." + testIngestDomain, "stats.routed.example"}))
	g.Expect(route.Spec.Rules).To(HaveLen(1))
	g.Expect(route.Spec.Rules[0].Matches).To(ConsistOf(
		HaveField("Path", And(HaveField("Type", HaveValue(Equal(gatewayv1.PathMatchExact))), HaveField("Value", HaveValue(Equal("/api/event"))))),
		HaveField("Path", And(HaveField("Type", HaveValue(Equal(gatewayv1.PathMatchPathPrefix))), HaveField("Value", HaveValue(Equal("/js/"))))),
	))
	g.Expect(route.Spec.Rules[0].BackendRefs).To(ConsistOf(HaveField("BackendRef.BackendObjectReference", And(
		HaveField("Kind", HaveValue(BeEquivalentTo("Service"))), HaveField("Name", BeEquivalentTo(render.IngestName)),
		HaveField("Port", HaveValue(BeEquivalentTo(render.IngestServicePort)))))))
	g.Expect(route.OwnerReferences).To(ConsistOf(And(HaveField("Kind", "AnalyticsTenant"), HaveField("Name", "routed"), HaveField("Controller", HaveValue(BeTrue())))))

	np := get(&networkingv1.NetworkPolicy{}, ns, render.NetworkPolicyIngest)()
	g.Expect(np).NotTo(BeNil())
	g.Expect(np.Spec.Ingress).To(ContainElement(HaveField("From", ConsistOf(HaveField("NamespaceSelector",
		HaveValue(HaveField("MatchLabels", HaveKeyWithValue(corev1.LabelMetadataName, testGateway.Namespace))))))),
		"the gateway's namespace reaches ingest")

	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionIngestAvailable), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionRouted), wait, tick).Should(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing))
	g.Consistently(conditionOf("routed", analyticsv1alpha1.ConditionReady), 2*time.Second, tick).Should(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing),
		"Ready waits for the gateway's verdict")
	g.Expect(getTenant("routed").Status.Ingest.URL).To(Equal("https://routed." + testIngestDomain))

	acceptRoute(t, ns, metav1.ConditionFalse)
	g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionRouted), wait, tick).Should(And(
		haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonRouteNotAccepted), HaveField("Message", ContainSubstring("NotAllowedByListeners"))))
	g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonRouteNotAccepted))

	acceptRoute(t, ns, metav1.ConditionTrue)
	g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionRouted), wait, tick).Should(haveReason(metav1.ConditionTrue, analyticsv1alpha1.ReasonRouteAccepted))
	g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Expect(conditionOf("routed", analyticsv1alpha1.ConditionReady)().Message).To(HaveSuffix("; the gateway routes ingest's hostnames to it"),
		"Ready says what it counted")

	t.Run("a converged routed tenant costs no write", func(t *testing.T) {
		g := NewWithT(t)
		before := gw.writes.count()
		_, err := gw.reconciler.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKey{Name: "routed"}})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(gw.writes.count() - before).To(BeZero())
	})

	t.Run("the cache holds the route slimmed to its gateways' verdicts", func(t *testing.T) {
		g := NewWithT(t)
		cached := &gatewayv1.HTTPRoute{}
		g.Expect(gw.cache.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestRouteName}, cached)).To(Succeed())
		g.Expect(cached.Spec.Hostnames).To(BeEmpty())
		g.Expect(cached.ManagedFields).To(BeEmpty())
		g.Expect(cached.Status.Parents).To(HaveLen(1))
		g.Expect(cached.Status.Parents[0].ControllerName).To(BeEmpty())
		g.Expect(cached.Status.Parents[0].Conditions).To(HaveLen(2))
	})

	t.Run("a changed route waits for the gateway's verdict on the change", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() error {
			tenant := getTenant("routed")
			tenant.Spec.Ingest.Hostnames = []analyticsv1alpha1.Hostname{"stats.routed.example"}
			return k8s.Update(ctx, tenant)
		}, wait, tick).Should(Succeed())
		g.Eventually(hostnamesOf(ns), wait, tick).Should(Equal([]gatewayv1.Hostname{"routed." + testIngestDomain, "stats.routed.example"}))
		g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing))
		acceptRoute(t, ns, metav1.ConditionTrue)
		g.Eventually(conditionOf("routed", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	})

	t.Run("a route someone deleted is put back", func(t *testing.T) {
		g := NewWithT(t)
		old := getRoute(ns)()
		g.Expect(k8s.Delete(ctx, old)).To(Succeed())
		g.Eventually(func() bool {
			r := getRoute(ns)()
			return r != nil && r.UID != old.UID
		}, wait, tick).Should(BeTrue())
	})
}

func TestAHostnameAnotherTenantClaimedFirstIsNotTakenFromIt(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	startInstance(t, "claims", routing)
	shared := analyticsv1alpha1.Hostname("stats.shared.example")
	first := newTenant(t, "claim-first", analyticsv1alpha1.AnalyticsTenantSpec{
		Ingest: &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{shared}},
	}, shardLabel, "claims")
	g.Eventually(hostnamesOf("tenant-claim-first"), wait, tick).Should(ContainElement(gatewayv1.Hostname(shared)))
	// A second later at least: the earlier creationTimestamp decides.
	time.Sleep(time.Second)
	newTenant(t, "claim-later", analyticsv1alpha1.AnalyticsTenantSpec{
		Ingest: &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{shared, "own.later.example", analyticsv1alpha1.Hostname("claim-first." + testIngestDomain)}},
	}, shardLabel, "claims")

	g.Eventually(conditionOf("claim-later", analyticsv1alpha1.ConditionRouted), wait, tick).Should(And(
		haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonHostnameConflict),
		HaveField("Message", And(ContainSubstring(string(shared)), ContainSubstring("claim-first"), ContainSubstring("claim-first."+testIngestDomain+" is under the ingest domain"))),
	))
	g.Eventually(hostnamesOf("tenant-claim-later"), wait, tick).Should(Equal([]gatewayv1.Hostname{"claim-later." + testIngestDomain, "own.later.example"}),
		"the later tenant's route leaves out the names it may not have")
	g.Consistently(hostnamesOf("tenant-claim-first"), time.Second, tick).Should(Equal([]gatewayv1.Hostname{"claim-first." + testIngestDomain, gatewayv1.Hostname(shared)}),
		"the first tenant keeps its name")
	g.Expect(conditionOf("claim-first", analyticsv1alpha1.ConditionRouted)()).NotTo(HaveField("Reason", analyticsv1alpha1.ReasonHostnameConflict))
	g.Eventually(warningsAbout("claim-later"), wait, tick).Should(ContainElement(analyticsv1alpha1.ReasonHostnameConflict))

	// Even accepted by the gateway, a route without a name the tenant asks
	// for is not Ready.
	makeIngestAvailable(t, "tenant-claim-later")
	acceptRoute(t, "tenant-claim-later", metav1.ConditionTrue)
	g.Eventually(conditionOf("claim-later", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonHostnameConflict))
	g.Consistently(conditionOf("claim-later", analyticsv1alpha1.ConditionReady), 2*time.Second, tick).Should(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonHostnameConflict))

	t.Run("the name goes to the later tenant once the first releases it", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func() error {
			tenant := getTenant(first.Name)
			tenant.Spec.Ingest.Hostnames = nil
			return k8s.Update(context.Background(), tenant)
		}, wait, tick).Should(Succeed())
		g.Eventually(hostnamesOf("tenant-claim-later"), wait, tick).Should(ContainElement(gatewayv1.Hostname(shared)))
		g.Eventually(conditionOf("claim-later", analyticsv1alpha1.ConditionRouted), wait, tick).Should(
			haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonHostnameReserved))
	})
}

// TestAHostnameClaimedFirstInAnotherShardIsNotTakenFromIt runs two routing
// instances with disjoint tenant selectors: neither caches the other's
// tenants, yet the later claim of a name is refused, and the name goes to
// it when the first tenant, in the other shard, releases it.
func TestAHostnameClaimedFirstInAnotherShardIsNotTakenFromIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	// Instances first: cleanups run last-first, so the tenants' deletion
	// (which needs their instance to purge them) runs while both still run.
	startInstance(t, "claims-a", routing)
	b := startInstance(t, "claims-b", routing)
	shared := analyticsv1alpha1.Hostname("stats.crossshard.example")
	first := newTenant(t, "xshard-first", analyticsv1alpha1.AnalyticsTenantSpec{
		Ingest: &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{shared}},
	}, shardLabel, "claims-a")
	g.Eventually(hostnamesOf("tenant-xshard-first"), wait, tick).Should(ContainElement(gatewayv1.Hostname(shared)))
	// A second later at least: the earlier creationTimestamp decides.
	time.Sleep(time.Second)
	newTenant(t, "xshard-later", analyticsv1alpha1.AnalyticsTenantSpec{
		Ingest: &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{shared, "own.crossshard.example"}},
	}, shardLabel, "claims-b")

	g.Eventually(conditionOf("xshard-later", analyticsv1alpha1.ConditionRouted), wait, tick).Should(And(
		haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonHostnameConflict),
		HaveField("Message", ContainSubstring(string(shared)+" (claimed by AnalyticsTenant xshard-first)")),
	))
	g.Eventually(hostnamesOf("tenant-xshard-later"), wait, tick).Should(Equal([]gatewayv1.Hostname{"own.crossshard.example", "xshard-later." + testIngestDomain}),
		"the later tenant's route leaves out the name the other shard's tenant claimed first")
	g.Consistently(hostnamesOf("tenant-xshard-first"), time.Second, tick).Should(Equal([]gatewayv1.Hostname{gatewayv1.Hostname(shared), "xshard-first." + testIngestDomain}),
		"the first tenant keeps its name")
	g.Expect(conditionOf("xshard-first", analyticsv1alpha1.ConditionRouted)()).NotTo(HaveField("Reason", analyticsv1alpha1.ReasonHostnameConflict))
	g.Eventually(warningsAbout("xshard-later"), wait, tick).Should(ContainElement(analyticsv1alpha1.ReasonHostnameConflict))
	g.Expect(b.cache.Get(ctx, client.ObjectKeyFromObject(first), &analyticsv1alpha1.AnalyticsTenant{})).NotTo(Succeed(),
		"the later tenant's instance does not cache the first tenant: it learnt of the claim from its view of every tenant's hostnames")

	t.Run("the name goes to the later tenant once the first releases it, from the other shard", func(t *testing.T) {
		g := NewWithT(t)
		later := getTenant("xshard-later")
		g.Eventually(func() error {
			tenant := getTenant(first.Name)
			tenant.Spec.Ingest.Hostnames = nil
			return k8s.Update(ctx, tenant)
		}, wait, tick).Should(Succeed())
		// Nothing touches the later tenant: its instance is woken by the
		// first tenant's change, which only its view of every tenant sees.
		g.Eventually(hostnamesOf("tenant-xshard-later"), wait, tick).Should(ContainElement(gatewayv1.Hostname(shared)))
		g.Eventually(conditionOf("xshard-later", analyticsv1alpha1.ConditionRouted), wait, tick).ShouldNot(
			HaveField("Reason", analyticsv1alpha1.ReasonHostnameConflict))
		g.Expect(getTenant("xshard-later").Generation).To(Equal(later.Generation))
	})
}

// warningsAbout lists the reasons of the Warning events about a tenant.
func warningsAbout(name string) func() []string {
	return func() []string {
		var reasons []string
		for _, e := range eventsAbout(name)() {
			if e.Type == corev1.EventTypeWarning {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}
}

func TestHostnamesThatAreNotDNSNamesAreRefusedByTheAPIServer(t *testing.T) {
	for _, bad := range []string{"Stats.Example.com", "*.example.com", "example", "stats.example.com:443", "stats.example.com.", "-a.example.com", "a..example.com"} {
		t.Run(bad, func(t *testing.T) {
			tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "badhost"}, Spec: analyticsv1alpha1.AnalyticsTenantSpec{
				Domains: []analyticsv1alpha1.Domain{"example.com"},
				Ingest:  &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{analyticsv1alpha1.Hostname(bad)}},
			}}
			err := k8s.Create(context.Background(), tenant)
			if err == nil {
				deleteTenant(t, tenant)
				t.Fatalf("hostname %q was accepted", bad)
			}
			NewWithT(t).Expect(err.Error()).To(ContainSubstring("each hostname must be a lowercase DNS name"))
		})
	}
}

func TestWithoutAGatewayNoRouteIsRenderedAndReadyDoesNotWaitForOne(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	newTenant(t, "unrouted", analyticsv1alpha1.AnalyticsTenantSpec{})
	makeIngestAvailable(t, "tenant-unrouted")
	g.Eventually(conditionOf("unrouted", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Expect(conditionOf("unrouted", analyticsv1alpha1.ConditionReady)().Message).NotTo(ContainSubstring("gateway"), "Ready counts no routing")
	g.Expect(conditionOf("unrouted", analyticsv1alpha1.ConditionRouted)()).To(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayNotConfigured))
	g.Expect(getRoute("tenant-unrouted")()).To(BeNil())
	g.Expect(getTenant("unrouted").Status.Ingest.URL).To(BeEmpty())
	tenant := getTenant("unrouted")
	g.Expect(meta.FindStatusCondition(tenant.Status.Conditions, analyticsv1alpha1.ConditionReconciling)).To(BeNil())
}

// TestWithoutTheGatewayAPIATenantSaysItIsNotRoutedAndIsReadyOtherwise runs
// an operator configured with a gateway against an API server of its own
// without the Gateway API's CRDs: it starts (watching no HTTPRoute, which
// would fail its cache), says so on every tenant, and serves them
// otherwise.
func TestWithoutTheGatewayAPIATenantSaysItIsNotRoutedAndIsReadyOtherwise(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, cfg, err := testenv.StartWithoutGatewayAPI()
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	bare, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())

	served, err := controllers.GatewayAPIServed(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(served).To(BeFalse())
	servedHere, err := controllers.GatewayAPIServed(restCfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(servedHere).To(BeTrue(), "the suite's API server has the CRDs")

	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      controllers.CacheOptions(nil, systemNamespace, served),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	g.Expect(err).NotTo(HaveOccurred())
	settings := render.DefaultSettings()
	routing(&settings)
	policy := controllers.RegionPolicy{AllowedSecretNamespace: systemNamespace, AllowInsecure: true}
	g.Expect((&controllers.TenantReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("tenant-operator-bare"),
		Settings: settings, Policy: policy, GatewayAPI: served,
	}).SetupWithManager(mgr)).To(Succeed())
	g.Expect((&controllers.StorageRegionReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("tenant-operator-bare"), Policy: policy,
	}).SetupWithManager(mgr)).To(Succeed())
	mgrCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- mgr.Start(mgrCtx) }()
	t.Cleanup(func() {
		cancel()
		g.Expect(<-done).NotTo(HaveOccurred(), "the manager failed")
	})

	g.Expect(bare.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}})).To(Succeed())
	g.Expect(bare.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "pg-admin"},
		StringData: map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword}})).To(Succeed())
	g.Expect(bare.Create(ctx, &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: "eu"}, Spec: analyticsv1alpha1.StorageRegionSpec{
		Region: analyticsv1alpha1.RegionEU,
		Postgres: analyticsv1alpha1.PostgresSpec{Host: "127.0.0.1", Port: ptr.To(int32(pg.Port)), Database: pg.Databases["EU"],
			SSLMode: analyticsv1alpha1.SSLModeDisable, AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: systemNamespace, Name: "pg-admin"}},
	}})).To(Succeed())
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "nogatewayapi"}, Spec: analyticsv1alpha1.AnalyticsTenantSpec{
		Domains: []analyticsv1alpha1.Domain{"nogatewayapi.example.com"},
		Ingest:  &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{"stats.nogatewayapi.example"}},
	}}
	g.Expect(bare.Create(ctx, tenant)).To(Succeed())
	t.Cleanup(func() {
		// Purged by its finalizer while the manager still runs.
		_ = bare.Delete(ctx, tenant)
		g.Eventually(func() bool {
			return apierrors.IsNotFound(bare.Get(ctx, client.ObjectKeyFromObject(tenant), &analyticsv1alpha1.AnalyticsTenant{}))
		}, wait, tick).Should(BeTrue())
	})
	conditionHere := func(condType string) func() *metav1.Condition {
		return func() *metav1.Condition {
			got := &analyticsv1alpha1.AnalyticsTenant{}
			if err := bare.Get(ctx, client.ObjectKeyFromObject(tenant), got); err != nil {
				return nil
			}
			return meta.FindStatusCondition(got.Status.Conditions, condType)
		}
	}
	g.Eventually(conditionHere(analyticsv1alpha1.ConditionRouted), wait, tick).Should(And(
		haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayAPIUnavailable),
		HaveField("Message", ContainSubstring("install the Gateway API CRDs"))))
	g.Eventually(func() error {
		d := &appsv1.Deployment{}
		if err := bare.Get(ctx, client.ObjectKey{Namespace: "tenant-nogatewayapi", Name: render.IngestName}, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n, ReadyReplicas: n, AvailableReplicas: n}
		return bare.Status().Update(ctx, d)
	}, wait, tick).Should(Succeed())
	g.Eventually(func() string {
		c := conditionHere(analyticsv1alpha1.ConditionReady)()
		if c == nil {
			return "no Ready"
		}
		return string(c.Status) + "/" + c.Reason + ": " + c.Message
	}, wait, tick).Should(HavePrefix("True/"),
		"everything but routing works, and Ready does not wait for a route that cannot be")
}

func TestTheLocationDatabaseReachesTheIngestPodsBothWaysAndAConvergedTenantWritesNothing(t *testing.T) {
	withRegions(t)
	for _, mount := range []render.GeoIPMount{render.GeoIPMountImage, render.GeoIPMountCopy} {
		t.Run(string(mount), func(t *testing.T) {
			g := NewWithT(t)
			name := "geoip-" + string(mount)
			inst := startInstance(t, name, func(s *render.Settings) {
				s.GeoIP = render.GeoIP{Image: "registry.example.com/geoip/dbip-city-lite:2026-12", File: "/dbip-city-lite.mmdb", Mount: mount}
			})
			newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{}, shardLabel, name)
			ns := "tenant-" + name
			g.Eventually(get(&appsv1.Deployment{}, ns, render.IngestName), wait, tick).ShouldNot(BeNil())
			spec := get(&appsv1.Deployment{}, ns, render.IngestName)().Spec.Template.Spec
			g.Expect(spec.Containers[0].Args).To(ContainElement("--geoip-db=" + render.GeoIPDir + "/dbip-city-lite.mmdb"))
			var geo *corev1.Volume
			for i := range spec.Volumes {
				if spec.Volumes[i].Name == "geoip" {
					geo = &spec.Volumes[i]
				}
			}
			g.Expect(geo).NotTo(BeNil(), "the API server kept the volume")
			if mount == render.GeoIPMountImage {
				g.Expect(geo.Image).NotTo(BeNil(), "the API server kept the image volume")
				g.Expect(spec.InitContainers).To(BeEmpty())
			} else {
				g.Expect(geo.EmptyDir).NotTo(BeNil())
				g.Expect(spec.InitContainers).To(ConsistOf(HaveField("Command", Equal([]string{"cp", "/dbip-city-lite.mmdb", render.GeoIPDir + "/dbip-city-lite.mmdb"}))))
			}
			makeIngestAvailable(t, ns)
			g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
			before := inst.writes.count()
			_, err := inst.reconciler.Reconcile(context.Background(), ctrl.Request{NamespacedName: client.ObjectKey{Name: name}})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(inst.writes.count()-before).To(BeZero(), "what the API server kept is what was applied")
		})
	}
}
