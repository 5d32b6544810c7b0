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

package children

import (
	"encoding/json"
	"strings"
	"unique"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// A cached child carries the intentHash of what the operator applied to it
// and still owns (Slim computes it, it is never written to the API
// server) in its generateName, behind appliedHashPrefix. generateName means
// something only in a create, which a cached child never goes into, and it
// is a plain string: an annotation would cost a map, about 300 bytes, on
// each of a tenant's 14 children (15 with its route) (and the prefix is one byte so that the
// string fits 48 bytes). cachedAppliedHash reads it back.
const appliedHashPrefix = "#"

// cachedAppliedHash is the hash Slim kept on a cached child, and
// whether it kept one (a child read from the API server has none).
func cachedAppliedHash(o client.Object) (string, bool) {
	return strings.CutPrefix(o.GetGenerateName(), appliedHashPrefix)
}

// Slim is the cache's transform of a child of the operator's (one that
// carries its managed-by label): it replaces the child as it enters the
// cache with what a reconcile reads of it: its name, its controller reference
// (which maps its events to the tenant: ownerOf; a namespace's keeps the
// tenant's UID too), generation and deletion (not even its own UID or
// resourceVersion), and behind appliedHashPrefix in its generateName the
// hash of what the operator applied to it and still owns (computed here,
// from the managed fields, which are then dropped with the spec). Names
// and namespaces are interned: a tenant's children share one copy of its
// namespace, all tenants one of each child's name. Besides that, what its
// row of Kinds keeps: the Deployment's replicas and rollout status, the
// CronJob's run times, the HTTPRoute's verdicts, and from a credentials
// Secret its password (passed back to provisioning), its visitor key (the
// ingest Secret's, kept across provisioning the same way), whether it
// holds a CA, and its render.CredentialsHash in
// render.AnnotationCredentialsHash.
func Slim(obj any) (any, error) {
	o, ok := obj.(client.Object)
	if !ok {
		return obj, nil
	}
	k, ok := Of(o)
	if !ok {
		o.SetManagedFields(nil)
		return o, nil
	}
	m := metav1.ObjectMeta{
		Name:              unique.Make(o.GetName()).Value(),
		Namespace:         unique.Make(o.GetNamespace()).Value(),
		GenerateName:      appliedHashPrefix + appliedHash(o),
		Generation:        o.GetGeneration(),
		DeletionTimestamp: o.GetDeletionTimestamp(),
		OwnerReferences:   ownerOf(o),
	}
	return k.slim(o, m), nil
}

// slimNamespace keeps the UID of a namespace's controller: a namespace is
// the tenant's only when its controller is the tenant by UID
// (reconcileNamespace).
func slimNamespace(o *corev1.Namespace, m metav1.ObjectMeta) *corev1.Namespace {
	if ref := metav1.GetControllerOfNoCopy(o); len(m.OwnerReferences) == 1 && ref != nil {
		m.OwnerReferences[0].UID = ref.UID
	}
	return &corev1.Namespace{ObjectMeta: m}
}

func slimSecret(o *corev1.Secret, m metav1.ObjectMeta) *corev1.Secret {
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
	return &corev1.Secret{ObjectMeta: m, Data: data}
}

func slimDeployment(o *appsv1.Deployment, m metav1.ObjectMeta) *appsv1.Deployment {
	s := o.Status
	status := appsv1.DeploymentStatus{
		ObservedGeneration: s.ObservedGeneration, Replicas: s.Replicas, UpdatedReplicas: s.UpdatedReplicas,
		ReadyReplicas: s.ReadyReplicas, AvailableReplicas: s.AvailableReplicas,
	}
	if c := DeploymentCondition(o, appsv1.DeploymentProgressing); c != nil {
		status.Conditions = []appsv1.DeploymentCondition{{Type: c.Type, Status: c.Status, Reason: c.Reason, Message: c.Message}}
	}
	// The hash of the pod template we applied tells a rollout from
	// any other change (the rollout gate).
	template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{GenerateName: appliedHashPrefix + AppliedTemplateHash(o)}}
	return &appsv1.Deployment{ObjectMeta: m, Spec: appsv1.DeploymentSpec{Replicas: o.Spec.Replicas, Template: template}, Status: status}
}

func slimCronJob(o *batchv1.CronJob, m metav1.ObjectMeta) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: m, Status: batchv1.CronJobStatus{
		Active: o.Status.Active, LastScheduleTime: o.Status.LastScheduleTime, LastSuccessfulTime: o.Status.LastSuccessfulTime,
	}}
}

func slimRoute(o *gatewayv1.HTTPRoute, m metav1.ObjectMeta) *gatewayv1.HTTPRoute {
	return &gatewayv1.HTTPRoute{ObjectMeta: m, Status: gatewayv1.HTTPRouteStatus{RouteStatus: gatewayv1.RouteStatus{
		Parents: routeVerdicts(o.Status.Parents),
	}}}
}

// DeploymentCondition is the Deployment's condition of type t, nil when it
// has none.
func DeploymentCondition(d *appsv1.Deployment, t appsv1.DeploymentConditionType) *appsv1.DeploymentCondition {
	for i := range d.Status.Conditions {
		if d.Status.Conditions[i].Type == t {
			return &d.Status.Conditions[i]
		}
	}
	return nil
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
// namespace's reconcile reads: slimNamespace keeps it there). Any other
// owner reference is dropped.
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

// cachedTemplateHash is the template hash Slim kept on a cached
// Deployment, behind appliedHashPrefix in its pod template's generateName
// (which means nothing in a Deployment's template and is never sent), and
// whether it kept one.
func cachedTemplateHash(d *appsv1.Deployment) (string, bool) {
	return strings.CutPrefix(d.Spec.Template.GenerateName, appliedHashPrefix)
}

// TemplateHash is intentHash of a desired Deployment's pod template.
func TemplateHash(d *appsv1.Deployment) (string, error) {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&d.Spec.Template)
	if err != nil {
		return "", err
	}
	return intentHash(u)
}

// AppliedTemplateHash is intentHash of the pod template the operator
// applied to a Deployment and still owns: kept by Slim for a cached
// one, else read from its managed fields. "" when it cannot be told, which
// no template hashes to, so the change is treated as a rollout.
func AppliedTemplateHash(d *appsv1.Deployment) string {
	if h, ok := cachedTemplateHash(d); ok {
		return h
	}
	applied, err := appliedBy(d, render.FieldOwner)
	if err != nil {
		return ""
	}
	b, err := json.Marshal(applied)
	if err != nil {
		return ""
	}
	var m struct {
		Spec struct {
			Template map[string]any `json:"template"`
		} `json:"spec"`
	}
	if err := json.Unmarshal(b, &m); err != nil || m.Spec.Template == nil {
		return ""
	}
	h, err := intentHash(m.Spec.Template)
	if err != nil {
		return ""
	}
	return h
}
