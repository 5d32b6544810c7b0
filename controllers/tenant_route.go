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

package controllers

import (
	"context"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// +kubebuilder:rbac:groups=gateway.networking.k8s.io,resources=httproutes,verbs=get;list;watch;create;patch;delete

// GatewayAPIServed says whether the API server serves HTTPRoutes of
// gateway.networking.k8s.io/v1, that is whether the Gateway API CRDs are
// installed. The operator asks once, at its start: the manager caches
// and watches HTTPRoutes only when they are served (watching a kind that
// does not exist fails the whole cache), so CRDs installed later take a
// restart to be used.
func GatewayAPIServed(cfg *rest.Config) (bool, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return false, err
	}
	resources, err := dc.ServerResourcesForGroupVersion(gatewayv1.GroupVersion.String())
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("discovering %s: %w", gatewayv1.GroupVersion, err)
	}
	for _, r := range resources.APIResources {
		if r.Name == "httproutes" {
			return true, nil
		}
	}
	return false, nil
}

// hostnameIndex indexes the cached AnalyticsTenants by the hostnames of
// their spec.ingest.hostnames, so a reconcile finds the other claimants of
// a name without listing every tenant. It is on the cache the claimants
// are read from (watchHostnameClaims): the manager's, or, in a sharded
// instance that routes tenants, the claims cache of every tenant.
const hostnameIndex = "spec.ingest.hostnames"

func tenantHostnames(o client.Object) []string {
	t, ok := o.(*analyticsv1alpha1.AnalyticsTenant)
	if !ok || t.Spec.Ingest == nil {
		return nil
	}
	out := make([]string, 0, len(t.Spec.Ingest.Hostnames))
	for _, h := range t.Spec.Ingest.Hostnames {
		out = append(out, string(h))
	}
	return out
}

// claimsBefore says whether tenant a claimed its names before b: created
// earlier, or, created in the same second, with the smaller UID. Every
// instance and every reconcile orders two tenants the same way, so one of
// them keeps a name and the other is told, never both.
func claimsBefore(a, b *analyticsv1alpha1.AnalyticsTenant) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.UID < b.UID
}

// routeHostnames are the hostnames the tenant's route may have: its
// default hostname and those of its spec that neither lie under the ingest
// domain (refused: those are the tenants' defaults) nor are claimed by a
// tenant that claimed them first (refused: never taken from it), in this
// instance's shard or another's (r.claims). The refusals are returned as a
// condition reason and message, "" when none.
func (r *TenantReconciler) routeHostnames(ctx context.Context, s *tenantScope) (hostnames []string, reason, message string, err error) {
	t := s.render()
	if h := render.DefaultHostname(t); h != "" {
		hostnames = append(hostnames, h)
	}
	var reserved, conflicts []string
	for _, h := range s.spec.Hostnames {
		if render.UnderIngestDomain(t, h) {
			reserved = append(reserved, h)
			continue
		}
		var claimants analyticsv1alpha1.AnalyticsTenantList
		if err := r.claims.List(ctx, &claimants, client.MatchingFields{hostnameIndex: h}); err != nil {
			return nil, "", "", fmt.Errorf("listing the AnalyticsTenants claiming hostname %s: %w", h, err)
		}
		var first *analyticsv1alpha1.AnalyticsTenant
		for i := range claimants.Items {
			c := &claimants.Items[i]
			if c.UID != s.tenant.UID && claimsBefore(c, s.tenant) && (first == nil || claimsBefore(c, first)) {
				first = c
			}
		}
		if first != nil {
			conflicts = append(conflicts, fmt.Sprintf("%s (claimed by AnalyticsTenant %s)", h, first.Name))
			continue
		}
		hostnames = append(hostnames, h)
	}
	switch {
	case len(conflicts) > 0:
		reason = analyticsv1alpha1.ReasonHostnameConflict
		message = fmt.Sprintf("spec.ingest.hostnames: %s claimed by another tenant first, so the route leaves it out; remove it, or release it from the other tenant", strings.Join(conflicts, ", "))
		if len(reserved) > 0 {
			message += fmt.Sprintf("; %s is under the ingest domain %s, which holds the tenants' default hostnames", strings.Join(reserved, ", "), t.Settings.IngestDomain)
		}
	case len(reserved) > 0:
		reason = analyticsv1alpha1.ReasonHostnameReserved
		message = fmt.Sprintf("spec.ingest.hostnames: %s is under the ingest domain %s, which holds the tenants' default hostnames (this one's is %s), so the route leaves it out; remove it",
			strings.Join(reserved, ", "), t.Settings.IngestDomain, render.DefaultHostname(t))
	}
	return hostnames, reason, message, nil
}

// reconcileRoute applies the tenant's HTTPRoute to the platform Gateway
// (or removes it when no gateway is configured) and owns Routed, from the
// route's status.parents as the gateway controller reports them. Without
// the Gateway API, or without a gateway, Routed says so and Ready does not
// count it (routingNotInForce): ingest then is reached in-cluster only.
func (r *TenantReconciler) reconcileRoute(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	t := s.render()
	gw := t.Settings.IngestGateway
	s.routeObserved = true
	switch {
	case gw == nil && !r.GatewayAPI:
		s.set(analyticsv1alpha1.ConditionRouted, metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayNotConfigured,
			fmt.Sprintf("the operator routes no tenant (no --ingest-gateway): ingest is reached in-cluster only, at %s", render.IngestServiceAddress(t)))
		return ctrl.Result{}, nil
	case gw == nil:
		route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: render.NamespaceName(t), Name: render.IngestRouteName}}
		if err := r.apply.Remove(ctx, route); err != nil {
			return ctrl.Result{}, fmt.Errorf("removing HTTPRoute %s/%s: %w", route.Namespace, route.Name, err)
		}
		s.set(analyticsv1alpha1.ConditionRouted, metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayNotConfigured,
			fmt.Sprintf("the operator routes no tenant (no --ingest-gateway): ingest is reached in-cluster only, at %s", render.IngestServiceAddress(t)))
		return ctrl.Result{}, nil
	case !r.GatewayAPI:
		s.set(analyticsv1alpha1.ConditionRouted, metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayAPIUnavailable,
			fmt.Sprintf("--ingest-gateway names Gateway %s, but the API server did not serve %s HTTPRoutes when the operator started: install the Gateway API CRDs and restart the operator; until then ingest is reached in-cluster only, at %s",
				gw, gatewayv1.GroupVersion, render.IngestServiceAddress(t)))
		return ctrl.Result{}, nil
	}

	s.ingestURL = render.IngestURL(t)
	hostnames, refusedReason, refusedMessage, err := r.routeHostnames(ctx, s)
	if err != nil {
		return ctrl.Result{}, err
	}
	desired := render.IngestHTTPRoute(t, hostnames)
	if desired == nil {
		// No hostname at all (no --ingest-domain, which the manager
		// refuses with a gateway, and none of the spec's left): a route
		// without hostnames would take every host's traffic.
		route := &gatewayv1.HTTPRoute{ObjectMeta: metav1.ObjectMeta{Namespace: render.NamespaceName(t), Name: render.IngestRouteName}}
		if err := r.apply.Remove(ctx, route); err != nil {
			return ctrl.Result{}, fmt.Errorf("removing HTTPRoute %s/%s: %w", route.Namespace, route.Name, err)
		}
		msg := "no hostname is left for the route (no --ingest-domain)"
		if refusedMessage != "" {
			msg += "; " + refusedMessage
		}
		s.set(analyticsv1alpha1.ConditionRouted, metav1.ConditionFalse, analyticsv1alpha1.ReasonGatewayNotConfigured, msg)
		return ctrl.Result{}, nil
	}
	if err := r.apply.Apply(ctx, desired); err != nil {
		return ctrl.Result{}, err
	}
	applied := desired.Generation
	live := &gatewayv1.HTTPRoute{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
		if !apierrors.IsNotFound(err) {
			return ctrl.Result{}, fmt.Errorf("reading HTTPRoute %s/%s: %w", desired.Namespace, desired.Name, err)
		}
		// Just applied; its watch event brings the next reconcile.
		s.set(analyticsv1alpha1.ConditionRouted, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the HTTPRoute is being created")
		return ctrl.Result{}, nil
	}
	status, reason, msg := routeAcceptance(live, applied, *gw, hostnames)
	if refusedReason != "" {
		// What the tenant asked for is not what it gets, whatever the
		// gateway says of the rest.
		status, reason, msg = metav1.ConditionFalse, refusedReason, refusedMessage+"; of the route without it: "+msg
	}
	s.set(analyticsv1alpha1.ConditionRouted, status, reason, msg)
	return ctrl.Result{}, nil
}

// routingNotInForce are the reasons of a Routed condition that says the
// operator routes no tenant: Ready does not count such a Routed.
var routingNotInForce = []string{analyticsv1alpha1.ReasonGatewayNotConfigured, analyticsv1alpha1.ReasonGatewayAPIUnavailable}

// routeAcceptance reads the gateway controller's verdict on the route for
// the operator's Gateway: Accepted and ResolvedRefs, both True and both
// observed at the route's latest generation (at least applied, the one
// this reconcile's apply gave it).
func routeAcceptance(route *gatewayv1.HTTPRoute, applied int64, gw render.GatewayRef, hostnames []string) (metav1.ConditionStatus, string, string) {
	generation := max(route.Generation, applied)
	var parent *gatewayv1.RouteParentStatus
	for i := range route.Status.Parents {
		if sameParent(route.Status.Parents[i].ParentRef, gw, route.Namespace) {
			parent = &route.Status.Parents[i]
			break
		}
	}
	if parent == nil {
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing,
			fmt.Sprintf("waiting for the controller of Gateway %s to accept HTTPRoute %s/%s", gw, route.Namespace, route.Name)
	}
	for _, condType := range []gatewayv1.RouteConditionType{gatewayv1.RouteConditionAccepted, gatewayv1.RouteConditionResolvedRefs} {
		c := meta.FindStatusCondition(parent.Conditions, string(condType))
		switch {
		case c == nil || c.ObservedGeneration < generation:
			return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing,
				fmt.Sprintf("waiting for the controller of Gateway %s to report %s on the latest change of HTTPRoute %s/%s", gw, condType, route.Namespace, route.Name)
		case c.Status != metav1.ConditionTrue:
			return metav1.ConditionFalse, analyticsv1alpha1.ReasonRouteNotAccepted,
				fmt.Sprintf("Gateway %s reports HTTPRoute %s/%s %s %s (%s): %s", gw, route.Namespace, route.Name, condType, c.Status, c.Reason, c.Message)
		}
	}
	return metav1.ConditionTrue, analyticsv1alpha1.ReasonRouteAccepted,
		fmt.Sprintf("Gateway %s routes %s of %s to ingest", gw, strings.Join([]string{render.IngestEventPath, render.IngestScriptPathPrefix + "*"}, " and "), strings.Join(hostnames, ", "))
}

// sameParent says whether a parent reference of a route's status names
// gw, with the API's defaults for what it leaves out.
func sameParent(ref gatewayv1.ParentReference, gw render.GatewayRef, routeNamespace string) bool {
	group, kind, namespace, section := gatewayv1.GroupName, "Gateway", routeNamespace, ""
	if ref.Group != nil {
		group = string(*ref.Group)
	}
	if ref.Kind != nil {
		kind = string(*ref.Kind)
	}
	if ref.Namespace != nil {
		namespace = string(*ref.Namespace)
	}
	if ref.SectionName != nil {
		section = string(*ref.SectionName)
	}
	return group == gatewayv1.GroupName && kind == "Gateway" && namespace == gw.Namespace &&
		string(ref.Name) == gw.Name && section == gw.SectionName && ref.Port == nil
}

// recordHostnameRefusal records a Warning event when Routed turns to a
// refused hostname, or names other ones.
func (r *TenantReconciler) recordHostnameRefusal(ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant, was, now *metav1.Condition) {
	if now == nil || !slices.Contains([]string{analyticsv1alpha1.ReasonHostnameConflict, analyticsv1alpha1.ReasonHostnameReserved}, now.Reason) {
		return
	}
	if was != nil && was.Reason == now.Reason && was.Message == now.Message {
		return
	}
	r.event(ctx, tenant, corev1.EventTypeWarning, now.Reason, "Route", now.Message)
}

// tenantsSharingHostnames maps a tenant's creation, deletion or change of
// spec.ingest.hostnames to the other tenants claiming any of its names,
// before or after, as c lists them: a name released by its first claimant
// goes to the next at once, and a new claim is judged against the others.
// Of those, only the ones shard selects are enqueued (all when nil): a
// tenant of another shard is not in this instance's cache, and its own
// instance wakes it.
func tenantsSharingHostnames(c client.Reader, shard labels.Selector) handler.Funcs {
	enqueue := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], self client.Object, names []string) {
		for _, h := range slices.Compact(slices.Sorted(slices.Values(names))) {
			var claimants analyticsv1alpha1.AnalyticsTenantList
			if err := c.List(ctx, &claimants, client.MatchingFields{hostnameIndex: h}); err != nil {
				log.FromContext(ctx).Error(err, "listing the AnalyticsTenants claiming a hostname", "hostname", h)
				continue
			}
			for i := range claimants.Items {
				claimant := &claimants.Items[i]
				if claimant.UID != self.GetUID() && (shard == nil || shard.Matches(labels.Set(claimant.Labels))) {
					q.Add(reconcile.Request{NamespacedName: client.ObjectKeyFromObject(claimant)})
				}
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, tenantHostnames(e.Object))
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			before, after := tenantHostnames(e.ObjectOld), tenantHostnames(e.ObjectNew)
			if slices.Equal(before, after) {
				return
			}
			enqueue(ctx, q, e.ObjectNew, append(before, after...))
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(ctx, q, e.Object, tenantHostnames(e.Object))
		},
	}
}
