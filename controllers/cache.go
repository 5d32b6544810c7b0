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
	"strings"
	"time"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// A cached child carries the intentHash of what the operator applied to it
// and still owns (slimChild computes it, it is never written to the API
// server) in its generateName, behind appliedHashPrefix. generateName means
// something only in a create, which a cached child never goes into, and it
// is a plain string: an annotation would cost a map, about 300 bytes, on
// each of a tenant's 14 children (15 with its route) (and the prefix is one byte so that the
// string fits 48 bytes). cachedAppliedHash reads it back.
const appliedHashPrefix = "#"

// cachedAppliedHash is the hash slimChild kept on a cached child, and
// whether it kept one (a child read from the API server has none).
func cachedAppliedHash(o client.Object) (string, bool) {
	return strings.CutPrefix(o.GetGenerateName(), appliedHashPrefix)
}

// CacheOptions limits the manager's cache to what the reconcilers read, so
// its memory grows with the tenants, not with the cluster, and by as little
// as can be per tenant:
//   - the kinds the operator creates only when they carry its managed-by
//     label (and, with a shard selector, only the children of the shard's
//     tenants: render puts the shard's label keys on every child), each
//     slimmed by slimChild to what a reconcile reads;
//   - the AnalyticsTenants of its shard (all when shard is empty), and the
//     StorageRegions, without managed fields or a client-side
//     last-applied-configuration;
//   - Secrets besides the operator's own only in adminSecretNamespace, the
//     one namespace StorageRegions' admin Secrets are read from, and of
//     those only the keys an admin Secret has.
//
// gatewayAPI says the API server serves HTTPRoutes (GatewayAPIServed): the
// cache of a kind the API server does not serve would fail to start.
func CacheOptions(shard labels.Selector, adminSecretNamespace string, gatewayAPI bool) cache.Options {
	owned := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	if shard != nil && !shard.Empty() {
		reqs, _ := shard.Requirements()
		owned = owned.Add(reqs...)
	}
	byObject := map[client.Object]cache.ByObject{}
	for _, obj := range childKinds(gatewayAPI) {
		children := cache.ByObject{Label: owned, Transform: slimChild}
		if _, isSecret := obj.(*corev1.Secret); isSecret && adminSecretNamespace != "" {
			children.Namespaces = map[string]cache.Config{
				adminSecretNamespace: {LabelSelector: labels.Everything()},
				cache.AllNamespaces:  {},
			}
		}
		byObject[obj] = children
	}
	tenants := cache.ByObject{Transform: slimDeclared}
	if shard != nil && !shard.Empty() {
		tenants.Label = shard
	}
	byObject[&analyticsv1alpha1.AnalyticsTenant{}] = tenants
	byObject[&analyticsv1alpha1.StorageRegion{}] = cache.ByObject{Transform: slimDeclared}
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields(), NewInformer: withoutNamespaceIndex}
}

// withoutNamespaceIndex is an informer without the namespace index
// controller-runtime gives every informer. No reconcile lists in a
// namespace (children are read by name), and the index holds a set per
// namespace per kind: with a namespace per tenant, about 3 KiB a tenant.
// A List with client.InNamespace on the cache fails with "Index with name
// namespace does not exist" rather than going slow.
func withoutNamespaceIndex(lw toolscache.ListerWatcher, obj runtime.Object, resync time.Duration, indexers toolscache.Indexers) toolscache.SharedIndexInformer {
	kept := toolscache.Indexers{}
	for name, fn := range indexers {
		if name != toolscache.NamespaceIndex {
			kept[name] = fn
		}
	}
	return toolscache.NewSharedIndexInformer(lw, obj, resync, kept)
}

// lastApplied is the annotation `kubectl apply` (client-side) keeps a whole
// copy of the object in.
const lastApplied = "kubectl.kubernetes.io/last-applied-configuration"

// slimDeclared strips from a tenant or a region what no reconcile reads:
// managed fields, and kubectl's copy of the object.
func slimDeclared(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	o.SetManagedFields(nil)
	if a := o.GetAnnotations(); a[lastApplied] != "" {
		delete(a, lastApplied)
		o.SetAnnotations(a)
	}
	return o, nil
}

// slimChild replaces a child as it enters the cache with what a reconcile
// reads of it: its name, its controller reference (which maps its events
// to the tenant: ownerOf; a namespace's keeps the tenant's UID too),
// generation and deletion (not even its own UID or resourceVersion), and
// behind appliedHashPrefix in its generateName the
// hash of what the operator applied to it and still owns (computed here,
// from the managed fields, which are then dropped with the spec). Names
// and namespaces are interned: a tenant's children share one copy of its
// namespace, all tenants one of each child's name. Besides that:
// the Deployment's replicas and rollout status, the CronJob's run times,
// and from a credentials Secret its password (passed back to provisioning),
// its visitor key (the ingest Secret's, kept across provisioning the same
// way), whether it holds a CA, and its render.CredentialsHash in
// render.AnnotationCredentialsHash. An admin Secret (not ours) keeps only
// the keys of an admin Secret.
func slimChild(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	if secret, ok := o.(*corev1.Secret); ok && secret.Labels[render.LabelManagedBy] != render.ManagedBy {
		return adminSecretKeys(secret), nil
	}
	m := metav1.ObjectMeta{
		Name:              unique.Make(o.GetName()).Value(),
		Namespace:         unique.Make(o.GetNamespace()).Value(),
		GenerateName:      appliedHashPrefix + appliedHash(o),
		Generation:        o.GetGeneration(),
		DeletionTimestamp: o.GetDeletionTimestamp(),
		OwnerReferences:   ownerOf(o),
	}
	switch o := o.(type) {
	case *corev1.Namespace:
		// A namespace is the tenant's only when its controller is the
		// tenant by UID (reconcileNamespace), so its UID is kept.
		if ref := metav1.GetControllerOfNoCopy(o); len(m.OwnerReferences) == 1 && ref != nil {
			m.OwnerReferences[0].UID = ref.UID
		}
		return &corev1.Namespace{ObjectMeta: m}, nil
	case *corev1.ServiceAccount:
		return &corev1.ServiceAccount{ObjectMeta: m}, nil
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{ObjectMeta: m}, nil
	case *corev1.Secret:
		m.Annotations = map[string]string{render.AnnotationCredentialsHash: render.CredentialsHash(o)}
		data := map[string][]byte{}
		for _, k := range []string{render.SecretKeyPassword, render.SecretKeyVisitorKey} {
			if v, ok := o.Data[k]; ok {
				data[k] = v
			}
		}
		if _, ok := o.Data[render.SecretKeyCACert]; ok {
			data[render.SecretKeyCACert] = nil
		}
		return &corev1.Secret{ObjectMeta: m, Data: data}, nil
	case *corev1.Service:
		return &corev1.Service{ObjectMeta: m}, nil
	case *corev1.ResourceQuota:
		return &corev1.ResourceQuota{ObjectMeta: m}, nil
	case *appsv1.Deployment:
		s := o.Status
		status := appsv1.DeploymentStatus{
			ObservedGeneration: s.ObservedGeneration, Replicas: s.Replicas, UpdatedReplicas: s.UpdatedReplicas,
			ReadyReplicas: s.ReadyReplicas, AvailableReplicas: s.AvailableReplicas,
		}
		if c := deploymentCondition(o, appsv1.DeploymentProgressing); c != nil {
			status.Conditions = []appsv1.DeploymentCondition{{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}}
		}
		// The hash of the pod template we applied tells a rollout from
		// any other change (rolloutGate).
		template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{GenerateName: appliedHashPrefix + appliedTemplateHash(o)}}
		return &appsv1.Deployment{ObjectMeta: m, Spec: appsv1.DeploymentSpec{Replicas: o.Spec.Replicas, Template: template}, Status: status}, nil
	case *autoscalingv2.HorizontalPodAutoscaler:
		return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: m}, nil
	case *policyv1.PodDisruptionBudget:
		return &policyv1.PodDisruptionBudget{ObjectMeta: m}, nil
	case *networkingv1.NetworkPolicy:
		return &networkingv1.NetworkPolicy{ObjectMeta: m}, nil
	case *batchv1.CronJob:
		return &batchv1.CronJob{ObjectMeta: m, Status: batchv1.CronJobStatus{
			Active: o.Status.Active, LastScheduleTime: o.Status.LastScheduleTime, LastSuccessfulTime: o.Status.LastSuccessfulTime,
		}}, nil
	case *gatewayv1.HTTPRoute:
		return &gatewayv1.HTTPRoute{ObjectMeta: m, Status: gatewayv1.HTTPRouteStatus{RouteStatus: gatewayv1.RouteStatus{
			Parents: routeVerdicts(o.Status.Parents),
		}}}, nil
	}
	o.SetManagedFields(nil)
	return o, nil
}

// routeVerdicts are the parents of a route's status as a reconcile reads
// them (routeAcceptance): each parent's reference and its Accepted and
// ResolvedRefs conditions, without the controller's name or any other
// condition.
func routeVerdicts(parents []gatewayv1.RouteParentStatus) []gatewayv1.RouteParentStatus {
	if len(parents) == 0 {
		return nil
	}
	out := make([]gatewayv1.RouteParentStatus, 0, len(parents))
	for _, p := range parents {
		kept := gatewayv1.RouteParentStatus{ParentRef: p.ParentRef}
		for _, c := range p.Conditions {
			if c.Type == string(gatewayv1.RouteConditionAccepted) || c.Type == string(gatewayv1.RouteConditionResolvedRefs) {
				kept.Conditions = append(kept.Conditions, metav1.Condition{
					Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message, ObservedGeneration: c.ObservedGeneration,
				})
			}
		}
		out = append(out, kept)
	}
	return out
}

// controllerIsTenant is the Controller of every owner reference ownerOf
// keeps: one shared value, not one allocation per child.
var controllerIsTenant = true

// ownerOf is the child's controller reference when the controller is an
// AnalyticsTenant, as the cache keeps it: the group, kind and (interned)
// name the tenant controller's Owns watch maps an event to the tenant by,
// and none of the strings the API server sent (not the UID, which only a
// namespace's reconcile reads: slimChild keeps it there). Any other owner
// reference is dropped.
func ownerOf(o client.Object) []metav1.OwnerReference {
	ref := metav1.GetControllerOfNoCopy(o)
	if ref == nil || ref.Kind != render.TenantKind || ref.APIVersion != tenantAPIVersion {
		return nil
	}
	return []metav1.OwnerReference{{
		APIVersion: tenantAPIVersion, Kind: render.TenantKind, Name: unique.Make(ref.Name).Value(), Controller: &controllerIsTenant,
	}}
}

// tenantAPIVersion is the apiVersion of the owner references ownerOf keeps.
var tenantAPIVersion = analyticsv1alpha1.GroupVersion.String()

// adminSecretKeys is an admin Secret with only the keys adminConfig reads.
func adminSecretKeys(s *corev1.Secret) *corev1.Secret {
	data := map[string][]byte{}
	for _, k := range []string{AdminSecretUsernameKey, AdminSecretPasswordKey, AdminSecretCAKey} {
		if v, ok := s.Data[k]; ok {
			data[k] = v
		}
	}
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{
		Name: s.Name, Namespace: s.Namespace, UID: s.UID, ResourceVersion: s.ResourceVersion,
		Labels: s.Labels, DeletionTimestamp: s.DeletionTimestamp,
	}, Data: data}
}
