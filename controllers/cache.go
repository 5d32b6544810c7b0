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
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// annotationAppliedHash exists only on cached children (slimChild puts it
// there, it is never written to the API server): the intentHash of what
// the operator applied to the child and still owns.
const annotationAppliedHash = "cache.analytics.millimetric.ai/applied-hash"

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
func CacheOptions(shard labels.Selector, adminSecretNamespace string) cache.Options {
	owned := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	if shard != nil && !shard.Empty() {
		reqs, _ := shard.Requirements()
		owned = owned.Add(reqs...)
	}
	byObject := map[client.Object]cache.ByObject{}
	for _, obj := range OwnedObjects() {
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
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()}
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
// reads of it: its name, owner references (which map its events to the
// tenant), generation and deletion (not even its UID or resourceVersion),
// and in annotationAppliedHash the hash of what the operator applied to it
// and still owns (computed here, from the managed fields, which are then
// dropped with the spec). Besides that:
// the Deployment's replicas and rollout status, the CronJob's run times,
// and from a credentials Secret its password (passed back to provisioning),
// whether it holds a CA, and its render.CredentialsHash in
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
		Name:              o.GetName(),
		Namespace:         o.GetNamespace(),
		Generation:        o.GetGeneration(),
		DeletionTimestamp: o.GetDeletionTimestamp(),
		OwnerReferences:   o.GetOwnerReferences(),
		Annotations:       map[string]string{annotationAppliedHash: appliedHash(o)},
	}
	switch o := o.(type) {
	case *corev1.Namespace:
		return &corev1.Namespace{ObjectMeta: m}, nil
	case *corev1.ServiceAccount:
		return &corev1.ServiceAccount{ObjectMeta: m}, nil
	case *corev1.ConfigMap:
		return &corev1.ConfigMap{ObjectMeta: m}, nil
	case *corev1.Secret:
		m.Annotations[render.AnnotationCredentialsHash] = render.CredentialsHash(o)
		data := map[string][]byte{}
		if pw, ok := o.Data[render.SecretKeyPassword]; ok {
			data[render.SecretKeyPassword] = pw
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
		return &appsv1.Deployment{ObjectMeta: m, Spec: appsv1.DeploymentSpec{Replicas: o.Spec.Replicas}, Status: status}, nil
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
	}
	o.SetManagedFields(nil)
	return o, nil
}

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
