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
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/children"
	"github.com/millimetric/tenant-operator/internal/render"
)

// CacheOptions limits the manager's cache to what the reconcilers read, so
// its memory grows with the tenants, not with the cluster, and by as little
// as can be per tenant:
//   - the kinds the operator creates only when they carry its managed-by
//     label (and, with a shard selector, only the children of the shard's
//     tenants: render puts the shard's label keys on every child), each
//     slimmed by children.Slim to what a reconcile reads (slimChild);
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
	for _, obj := range children.Served(gatewayAPI) {
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

// slimChild is the cache's transform of the kinds of children.Kinds: an
// admin Secret (a Secret without the operator's managed-by label, cached
// only in the admin Secrets' namespace) keeps only the keys of an admin
// Secret; any other object is the operator's child, slimmed by
// children.Slim.
func slimChild(obj any) (any, error) {
	if secret, ok := obj.(*corev1.Secret); ok && secret.Labels[render.LabelManagedBy] != render.ManagedBy {
		return adminSecretKeys(secret), nil
	}
	return children.Slim(obj)
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
