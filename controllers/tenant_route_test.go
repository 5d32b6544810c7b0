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
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
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
	g.Eventually(func() []string {
		var reasons []string
		for _, e := range eventsAbout("claim-later")() {
			if e.Type == corev1.EventTypeWarning {
				reasons = append(reasons, e.Reason)
			}
		}
		return reasons
	}, wait, tick).Should(ContainElement(analyticsv1alpha1.ReasonHostnameConflict))

	// Even accepted by the gateway, a route without a name the tenant asks
	// for is not Ready.
	makeIngestAvailable(t, "tenant-claim-later")
	acceptRoute(t, "tenant-claim-later", metav1.ConditionTrue)
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
	g.Expect(conditionOf("unrouted", analyticsv1alpha1.ConditionRouted)()).To(haveReason(metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayNotConfigured))
	g.Expect(getRoute("tenant-unrouted")()).To(BeNil())
	g.Expect(getTenant("unrouted").Status.Ingest.URL).To(BeEmpty())
	tenant := getTenant("unrouted")
	g.Expect(meta.FindStatusCondition(tenant.Status.Conditions, analyticsv1alpha1.ConditionReconciling)).To(BeNil())
}
