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
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// regionUnavailable explains why no StorageRegion can serve the region.
type regionUnavailable struct {
	msg string
	// pending is a StorageRegion that has not been checked yet: not a
	// failure, the tenant just waits for the check.
	pending bool
}

func (e *regionUnavailable) Error() string { return e.msg }

// findRegion returns the one Ready StorageRegion of the region, or a
// *regionUnavailable saying what is wrong. With that error it still returns
// the StorageRegion the tenant's objects are rendered with (placement,
// egress), when one is known: the only claim of the region, Ready or not,
// or, among duplicate claims, the one named prefer (the tenant's
// status.storage.regionRef), so a second StorageRegion appearing does not
// move a running tenant's pods or cut its egress.
func (r *TenantReconciler) findRegion(ctx context.Context, region analyticsv1alpha1.Region, prefer string) (*analyticsv1alpha1.StorageRegion, error) {
	claims, err := regionClaims(ctx, r, region)
	if err != nil {
		return nil, err
	}
	switch len(claims) {
	case 0:
		return nil, &regionUnavailable{msg: fmt.Sprintf("no StorageRegion serves region %s: the platform team must create one before this tenant can be provisioned", region)}
	case 1:
	default:
		names := make([]string, 0, len(claims))
		var known *analyticsv1alpha1.StorageRegion
		for i, c := range claims {
			names = append(names, c.Name)
			if c.Name == prefer {
				known = &claims[i]
			}
		}
		return known, &regionUnavailable{msg: fmt.Sprintf("StorageRegions %s all claim region %s: delete all but one", strings.Join(names, ", "), region)}
	}
	sr := &claims[0]
	ready := meta.FindStatusCondition(sr.Status.Conditions, analyticsv1alpha1.ConditionReady)
	switch {
	case ready == nil:
		return sr, &regionUnavailable{msg: fmt.Sprintf("waiting for StorageRegion %s serving region %s to be checked", sr.Name, region), pending: true}
	case ready.Status != metav1.ConditionTrue:
		return sr, &regionUnavailable{msg: fmt.Sprintf("StorageRegion %s serving region %s is not Ready (%s: %s)", sr.Name, region, ready.Reason, ready.Message)}
	}
	return sr, nil
}

// resolveRegion finds the StorageRegion serving the tenant. While the
// region is unavailable it owns StorageReady, and the chain goes on with
// the StorageRegion last known, if any: the namespace and its isolation do
// not wait for storage.
func (r *TenantReconciler) resolveRegion(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	prefer := ""
	if st := s.original.Status.Storage; st != nil {
		prefer = st.RegionRef
	}
	region, err := r.findRegion(ctx, s.spec.Region, prefer)
	s.region = region
	var unavailable *regionUnavailable
	if errors.As(err, &unavailable) {
		s.regionUnavailable = true
		reason := analyticsv1alpha1.ReasonRegionUnavailable
		if unavailable.pending {
			reason = analyticsv1alpha1.ReasonProgressing
		}
		s.set(analyticsv1alpha1.ConditionStorageReady, metav1.ConditionFalse, reason, unavailable.msg)
		// A region appearing or becoming Ready triggers a reconcile through
		// the StorageRegion watch; the backoff is the safety net.
		return ctrl.Result{RequeueAfter: failingBackoff(s.failingSince(analyticsv1alpha1.ConditionStorageReady))}, nil
	}
	return ctrl.Result{}, err
}

// regionBeingDeleted returns the one Ready StorageRegion of the region
// that is being deleted and held back by RegionFinalizer, nil when there is
// none. findRegion passes it over, as no tenant is provisioned in a region
// being deleted; a tenant being deleted still needs it, as the region waits
// for it.
func (r *TenantReconciler) regionBeingDeleted(ctx context.Context, region analyticsv1alpha1.Region) (*analyticsv1alpha1.StorageRegion, error) {
	var list analyticsv1alpha1.StorageRegionList
	if err := r.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing StorageRegions: %w", err)
	}
	var going *analyticsv1alpha1.StorageRegion
	for i, sr := range list.Items {
		if sr.Spec.Region != region || sr.DeletionTimestamp.IsZero() ||
			!controllerutil.ContainsFinalizer(&sr, analyticsv1alpha1.RegionFinalizer) ||
			!meta.IsStatusConditionTrue(sr.Status.Conditions, analyticsv1alpha1.ConditionReady) {
			continue
		}
		if going != nil {
			return nil, nil
		}
		going = &list.Items[i]
	}
	return going, nil
}

// regionStore returns the open store of a StorageRegion.
func (r *TenantReconciler) regionStore(ctx context.Context, region *analyticsv1alpha1.StorageRegion) (RegionStore, error) {
	store, _, err := r.regionStoreAndConfig(ctx, region)
	return store, err
}

// regionStoreAndConfig returns the open store of a StorageRegion and the
// admin configuration it was opened with.
func (r *TenantReconciler) regionStoreAndConfig(ctx context.Context, region *analyticsv1alpha1.StorageRegion) (RegionStore, storage.AdminConfig, error) {
	// A region edited to point elsewhere can still be Ready in the cache.
	if refused := r.Policy.admit(region); refused != nil {
		return nil, storage.AdminConfig{}, refused
	}
	cfg, err := adminConfig(ctx, r.Client, r.APIReader, region)
	if err != nil {
		return nil, storage.AdminConfig{}, err
	}
	store, err := r.stores.get(ctx, region.Name, cfg)
	return store, cfg, err
}
