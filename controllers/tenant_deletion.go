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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// finalize runs when the tenant is being deleted: it purges the tenant's
// data from its region (or keeps it with deletionPolicy Retain), records it
// in an event, then removes the finalizer so the namespace and everything in
// it are garbage-collected.
func (r *TenantReconciler) finalize(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(s.tenant, analyticsv1alpha1.TenantFinalizer) {
		return ctrl.Result{}, nil
	}
	// The schema as status records it, for the events; the store finds it
	// in the region's own record of the tenant's names.
	schema := "of tenant " + s.tenant.Name
	if st := s.tenant.Status.Storage; st != nil && st.Schema != "" {
		schema = st.Schema
	}
	retain := s.spec.DeletionPolicy == analyticsv1alpha1.DeletionPolicyRetain
	region, err := r.findRegion(ctx, s.spec.Region, "")
	var unavailable *regionUnavailable
	if region == nil && errors.As(err, &unavailable) {
		// A StorageRegion being deleted waits for its tenants to go
		// (RegionFinalizer): they are purged or retained through it.
		going, lerr := r.regionBeingDeleted(ctx, s.spec.Region)
		if lerr != nil {
			return ctrl.Result{}, lerr
		}
		if going != nil {
			region, err = going, nil
		}
	}
	var other *storage.RetainedTenant
	if err == nil {
		other, err = r.heldForAnother(ctx, s, region)
	}
	switch {
	case errors.As(err, &unavailable) && !r.wasProvisioned(ctx, s):
		r.event(ctx, s.tenant, corev1.EventTypeNormal, eventPurged, "Delete",
			fmt.Sprintf("nothing to purge or retain: the tenant was never provisioned in region %s", s.spec.Region))
	case other != nil:
		// It waited, never provisioned, for a hold under its name: that
		// data is not its own to purge or to hold again.
		r.event(ctx, s.tenant, corev1.EventTypeNormal, eventPurged, "Delete", fmt.Sprintf(
			"nothing to purge or retain: schema %s in region %s is the retained data of another deleted tenant of the same name (uid %s), not this tenant's; it stays held until %s",
			other.Schema, s.spec.Region, other.UID, other.ExpiresAt.Format(time.RFC3339)))
	case retain:
		var until time.Time
		if err == nil {
			until, err = r.retain(ctx, s, region)
		}
		if err != nil {
			msg := fmt.Sprintf("cannot hold schema %s in region %s yet; the tenant is kept until its roles are locked and the hold is recorded: %v", schema, s.spec.Region, err)
			r.event(ctx, s.tenant, corev1.EventTypeWarning, eventRetainFailed, "Delete", msg)
			return ctrl.Result{RequeueAfter: failingBackoff(s.tenant.DeletionTimestamp.Time)}, nil
		}
		r.event(ctx, s.tenant, corev1.EventTypeNormal, eventRetained, "Delete", fmt.Sprintf(
			"holding schema %s in region %s until %s (deletionPolicy Retain, %d days): its roles can no longer log in; a tenant created with the same name before then adopts the data only if its spec.storage.adoptRetainedFrom is this tenant's uid, %s; after that StorageRegion %s purges it",
			schema, s.spec.Region, until.UTC().Format(time.RFC3339), s.spec.RetainDays, s.tenant.UID, region.Name))
	default:
		if err == nil {
			err = r.purge(ctx, s, region)
		}
		if err != nil {
			msg := fmt.Sprintf("cannot purge schema %s from region %s yet; the tenant is kept until it is purged: %v", schema, s.spec.Region, err)
			r.event(ctx, s.tenant, corev1.EventTypeWarning, eventPurgeFailed, "Delete", msg)
			return ctrl.Result{RequeueAfter: failingBackoff(s.tenant.DeletionTimestamp.Time)}, nil
		}
		r.event(ctx, s.tenant, corev1.EventTypeNormal, eventPurged, "Delete",
			fmt.Sprintf("purged schema %s, its data and its roles from region %s (StorageRegion %s)", schema, s.spec.Region, region.Name))
	}
	if err := r.patchFinalizers(ctx, s.tenant, controllerutil.RemoveFinalizer); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	forgetTenantMetrics(s.tenant.Name)
	return ctrl.Result{}, nil
}

// retain holds the tenant's data for its RetainDays: its roles lose LOGIN
// at once and the hold is recorded in the region's database, where the
// StorageRegion's sweep purges it when the hold ends. It returns when the
// hold ends. A tenant with no schema has nothing to hold: whatever is left
// of it (its roles) is purged instead.
func (r *TenantReconciler) retain(ctx context.Context, s *tenantScope, region *analyticsv1alpha1.StorageRegion) (time.Time, error) {
	store, err := r.regionStore(ctx, region)
	if err != nil {
		return time.Time{}, err
	}
	deletedAt := s.tenant.DeletionTimestamp.Time
	hold := time.Duration(s.spec.RetainDays) * 24 * time.Hour
	if err := store.Retain(ctx, s.tenant.Name, string(s.tenant.UID), deletedAt, hold, int(s.spec.RetentionDays)); err != nil {
		return time.Time{}, err
	}
	left, err := store.Verify(ctx, s.tenant.Name)
	if err != nil {
		return time.Time{}, err
	}
	if !left.Schema && !left.Empty() {
		if err := r.purge(ctx, s, region); err != nil {
			return time.Time{}, err
		}
	}
	return deletedAt.Add(hold), nil
}

// heldForAnother is the hold under the tenant's name when it is not the
// tenant's own: the data of another deleted tenant of the same name (or
// held without a uid), which this tenant waited for and never got. nil
// when nothing is held or the hold is this tenant's (its Retain ran, its
// finalizer not yet removed).
func (r *TenantReconciler) heldForAnother(ctx context.Context, s *tenantScope, region *analyticsv1alpha1.StorageRegion) (*storage.RetainedTenant, error) {
	store, err := r.regionStore(ctx, region)
	if err != nil {
		return nil, err
	}
	held, err := store.Hold(ctx, s.tenant.Name)
	if err != nil || held == nil || held.UID == string(s.tenant.UID) {
		return nil, err
	}
	return held, nil
}

// purge deletes the tenant's data and role and checks nothing is left.
func (r *TenantReconciler) purge(ctx context.Context, s *tenantScope, region *analyticsv1alpha1.StorageRegion) error {
	store, err := r.regionStore(ctx, region)
	if err != nil {
		return err
	}
	start := time.Now()
	err = purgeAndVerify(ctx, store, s.tenant.Name)
	observeOutcome(purgeDuration, s.spec.Region, start, err)
	return err
}

// purgeAndVerify is the purge in the region's database, timed by purge.
func purgeAndVerify(ctx context.Context, store RegionStore, tenant string) error {
	if err := store.Purge(ctx, tenant); err != nil {
		return err
	}
	left, err := store.Verify(ctx, tenant)
	if err != nil {
		return err
	}
	if !left.Empty() {
		return fmt.Errorf("after purging, %s", left)
	}
	return nil
}

// wasProvisioned says whether the tenant may have storage: its status names
// a schema, or one of its credentials Secrets exists. When in doubt it says
// yes, so no data is ever left behind unpurged: a Secret the cache does not
// have (not synced yet, or behind a write) is looked for in the API server
// before the answer is no.
func (r *TenantReconciler) wasProvisioned(ctx context.Context, s *tenantScope) bool {
	if st := s.tenant.Status.Storage; st != nil && st.Schema != "" {
		return true
	}
	ns := render.NamespaceName(s.render())
	for _, name := range []string{render.StorageSecretName, render.IngestSecretName} {
		key := types.NamespacedName{Namespace: ns, Name: name}
		err := r.Get(ctx, key, &corev1.Secret{})
		if apierrors.IsNotFound(err) && r.APIReader != nil {
			err = r.APIReader.Get(ctx, key, &corev1.Secret{})
		}
		if !apierrors.IsNotFound(err) {
			return true
		}
	}
	return false
}
