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
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/source"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// watchHostnameClaims sets where the reconciler finds the claimants of a
// hostname (r.claims, indexed by hostnameIndex) and adds to b the watch
// that wakes the other claimants of a tenant's names when they change
// (tenantsSharingHostnames).
//
// An instance that owns every tenant, or routes none, reads the claimants
// from the manager's cache, as the rest of a reconcile reads its tenant.
// A sharded instance that routes tenants cannot: its cache holds only its
// shard's tenants, so a name claimed first in another shard would be given
// to the later tenant as well, both routes would carry it, and the gateway
// would pick one without a word to either tenant. Such an instance keeps a
// second view of every AnalyticsTenant, cut down to what decides a claim
// (newClaimsCache), and reads the claimants from it; its watch enqueues
// only the claimants this instance owns (the others are not in its cache,
// and their own instance wakes them from its own view).
func (r *TenantReconciler) watchHostnameClaims(mgr ctrl.Manager, b *builder.Builder) (*builder.Builder, error) {
	if !r.sharded() || !r.routesTenants() {
		if err := mgr.GetFieldIndexer().IndexField(context.Background(), &analyticsv1alpha1.AnalyticsTenant{}, hostnameIndex, tenantHostnames); err != nil {
			return nil, fmt.Errorf("indexing AnalyticsTenants by hostname: %w", err)
		}
		r.claims = r.Client
		return b.Watches(&analyticsv1alpha1.AnalyticsTenant{}, tenantsSharingHostnames(mgr.GetClient(), nil)), nil
	}
	claims, err := newClaimsCache(mgr, r.TenantSelector)
	if err != nil {
		return nil, err
	}
	r.claims = claims
	return b.WatchesRawSource(source.Kind(claims, client.Object(&analyticsv1alpha1.AnalyticsTenant{}), tenantsSharingHostnames(claims, r.TenantSelector))), nil
}

// sharded says whether the instance owns only some tenants (--tenant-selector).
func (r *TenantReconciler) sharded() bool {
	return r.TenantSelector != nil && !r.TenantSelector.Empty()
}

// routesTenants says whether the instance renders the tenants' HTTPRoutes,
// the only thing hostname claims decide (reconcileRoute).
func (r *TenantReconciler) routesTenants() bool {
	return r.Settings.IngestGateway != nil && r.GatewayAPI
}

// newClaimsCache is a cache of every AnalyticsTenant, whatever the shard,
// holding of each only what claimsBefore, tenantHostnames and the shard
// selector read (claimOnly), with hostnameIndex on it. The manager starts
// it with its own cache, before any controller, and waits until it has
// listed every tenant (claimsCacheRunnable); the controller's watch of it
// holds the first reconcile until then too, so no reconcile judges a claim
// on a partial list. The ready check hostname-claims-synced says whether it
// has.
func newClaimsCache(mgr ctrl.Manager, shard labels.Selector) (cache.Cache, error) {
	var keys []string
	reqs, _ := shard.Requirements()
	for _, req := range reqs {
		keys = append(keys, req.Key())
	}
	claims, err := cache.New(mgr.GetConfig(), cache.Options{
		HTTPClient: mgr.GetHTTPClient(),
		Scheme:     mgr.GetScheme(),
		Mapper:     mgr.GetRESTMapper(),
		ByObject: map[client.Object]cache.ByObject{
			&analyticsv1alpha1.AnalyticsTenant{}: {Transform: claimOnly(keys)},
		},
		// Only the tenants: a read of another kind is a mistake, not a
		// reason for a second informer of it.
		ReaderFailOnMissingInformer: true,
		NewInformer:                 withoutNamespaceIndex,
	})
	if err != nil {
		return nil, fmt.Errorf("creating the cache of hostname claims: %w", err)
	}
	if err := claims.IndexField(context.Background(), &analyticsv1alpha1.AnalyticsTenant{}, hostnameIndex, tenantHostnames); err != nil {
		return nil, fmt.Errorf("indexing the hostname claims: %w", err)
	}
	if err := mgr.Add(claimsCacheRunnable{claims}); err != nil {
		return nil, err
	}
	if err := mgr.AddReadyzCheck("hostname-claims-synced", func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !claims.WaitForCacheSync(ctx) {
			return errors.New("the view of every AnalyticsTenant's hostnames has not synced: see the log for why AnalyticsTenants cannot be listed or watched")
		}
		return nil
	}); err != nil {
		return nil, err
	}
	return claims, nil
}

// claimsCacheRunnable is the claims cache as the manager's runnable. A
// runnable with GetCache is started and waited for as the manager's own
// cache is (as a cluster.Cluster added to it would be): on every replica,
// leading or not, and synced before the controllers start.
type claimsCacheRunnable struct{ cache.Cache }

// GetCache is the cache the manager waits on.
func (c claimsCacheRunnable) GetCache() cache.Cache { return c.Cache }

// claimOnly is the claims cache's transform: of a tenant it keeps its
// name, UID and creationTimestamp (claimsBefore), its resourceVersion (the
// informer tells a change from a resync by it, and delivers no resync to
// the watch), the labels of keys (the shard selector's, to tell this
// instance's tenants from the others') and spec.ingest.hostnames;
// everything else (the rest of the spec, the status, annotations,
// finalizers, managed fields) is dropped. The labels are interned: the
// tenants with the same values of keys (one shard's, with a selector of
// shard names) share one map, kept for as long as the instance runs: a
// map of one label of its own costs a tenant about 340 bytes, a quarter of
// its claim (BenchmarkHeapPerClaim). Nothing writes to a cached object, so
// they may share it.
func claimOnly(keys []string) toolscache.TransformFunc {
	var mu sync.Mutex
	interned := map[string]map[string]string{}
	intern := func(all map[string]string) map[string]string {
		kept := labels.Set{}
		for _, k := range keys {
			if v, ok := all[k]; ok {
				kept[k] = v
			}
		}
		if len(kept) == 0 {
			return nil
		}
		mu.Lock()
		defer mu.Unlock()
		id := kept.String()
		if m, ok := interned[id]; ok {
			return m
		}
		interned[id] = kept
		return kept
	}
	return func(obj any) (any, error) {
		t, ok := obj.(*analyticsv1alpha1.AnalyticsTenant)
		if !ok {
			return obj, nil
		}
		claim := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{
			Name: t.Name, UID: t.UID, ResourceVersion: t.ResourceVersion, CreationTimestamp: t.CreationTimestamp,
			Labels: intern(t.Labels),
		}}
		if t.Spec.Ingest != nil && len(t.Spec.Ingest.Hostnames) > 0 {
			// A copy of their own: the decoded list has room to spare.
			claim.Spec.Ingest = &analyticsv1alpha1.IngestSpec{Hostnames: slices.Clone(t.Spec.Ingest.Hostnames)}
		}
		return claim, nil
	}
}
