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
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// Event reasons of the tenant reconciler, besides the condition reasons.
const (
	eventProvisioned  = "Provisioned"
	eventPurged       = "Purged"
	eventRetained     = "Retained"
	eventRetainFailed = "RetainFailed"
	eventAdopted      = "Adopted"
	eventPurgeFailed  = "PurgeFailed"
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

// reconcileStorage provisions the tenant's schema and roles in its region
// and applies the two Secrets with their credentials: the schema owner's
// (for retention) and the ingest role's (for ingest). It owns StorageReady.
func (r *TenantReconciler) reconcileStorage(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	if s.regionUnavailable {
		// resolveRegion said why; nothing is dialled.
		return ctrl.Result{}, nil
	}
	t := s.render()
	store, cfg, err := r.regionStoreAndConfig(ctx, s.region)
	if err != nil {
		return r.storageFailed(s, err)
	}
	s.storageTLS = storageTLS(cfg)
	ns := render.NamespaceName(t)
	if err := r.readCredentials(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	if due, converged := r.storageConverged(s); converged {
		// What was provisioned is what is wanted, and was verified not
		// long ago: no round trip to the database.
		s.schema, s.ingestRole, s.store = s.original.Status.Storage.Schema, s.original.Status.Storage.IngestRole, store
		s.fingerprint, s.verifiedAt = s.original.Status.Storage.Fingerprint, s.original.Status.Storage.VerifiedAt
		s.set(analyticsv1alpha1.ConditionStorageReady, metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, storageReadyMessage(s))
		return ctrl.Result{RequeueAfter: due}, nil
	}

	// The passwords in our Secrets are passed back so provisioning keeps
	// them, and so is the visitor key: a new one would make every
	// returning visitor a new one.
	ownerSecret, err := r.existingSecret(ctx, ns, render.StorageSecretName)
	if err != nil {
		return ctrl.Result{}, err
	}
	ingestSecret, err := r.existingSecret(ctx, ns, render.IngestSecretName)
	if err != nil {
		return ctrl.Result{}, err
	}
	ownerPassword, ingestPassword := passwordIn(ownerSecret), passwordIn(ingestSecret)
	visitorKey := render.VisitorKeyOf(ingestSecret)
	if visitorKey == nil {
		if visitorKey, err = render.NewVisitorKey(); err != nil {
			return ctrl.Result{}, err
		}
	}
	// A tenant not provisioned yet (a new object; its status names no
	// schema) or without its owner's Secret may have the name of a deleted
	// tenant whose data is held under deletionPolicy Retain. It takes that
	// data over only when it names the deleted tenant's uid
	// (spec.storage.adoptRetainedFrom), visibly; otherwise it waits, not
	// provisioned, until the hold ends and the data is purged. Before
	// Provision, which would otherwise take the held schema by its name and
	// let its roles log in again. The status, not the Secret, says "new":
	// the old namespace and its Secrets may still be terminating.
	if st := s.original.Status.Storage; st == nil || st.Schema == "" || ownerPassword == "" {
		held, err := store.Adopt(ctx, s.tenant.Name, s.spec.AdoptRetainedFrom)
		var refused *storage.RetainedDataError
		if errors.As(err, &refused) {
			return r.retainedDataRefused(ctx, s, refused)
		}
		if err != nil {
			return r.storageFailed(s, err)
		}
		if held != nil {
			s.adoptedFrom = &metav1.Time{Time: held.DeletedAt}
			r.event(ctx, s.tenant, corev1.EventTypeNormal, eventAdopted, "Provision", fmt.Sprintf(
				"adopted schema %s and its data, held since the tenant of the same name with uid %s was deleted at %s (deletionPolicy Retain), as spec.storage.adoptRetainedFrom asks",
				held.Schema, held.UID, held.DeletedAt.Format(time.RFC3339)))
		}
	}
	start := time.Now()
	roles, err := store.Provision(ctx, s.tenant.Name, storage.ProvisionOptions{
		UID:                    string(s.tenant.UID),
		ExistingPassword:       ownerPassword,
		ExistingIngestPassword: ingestPassword,
		IngestConnectionLimit:  storage.IngestConnections(ingestMaxPods(s.spec)),
	})
	observeOutcome(provisionDuration, s.spec.Region, start, err)
	var refused *storage.RetainedDataError
	if errors.As(err, &refused) {
		return r.retainedDataRefused(ctx, s, refused)
	}
	if err != nil {
		return r.storageFailed(s, err)
	}
	s.storageCA = len(roles.Owner.CACert) > 0
	t = s.render()
	s.storageSecret, s.ingestSecret = render.StorageSecret(t, roles.Owner), render.IngestSecret(t, roles.Ingest, visitorKey)
	s.credentialsRead = true
	for _, secret := range []*corev1.Secret{s.storageSecret, s.ingestSecret} {
		if err := r.apply.apply(ctx, secret); err != nil {
			return ctrl.Result{}, err
		}
	}
	// The names Provision recorded in the region's database, which go
	// into status too.
	s.schema, s.ingestRole = roles.Owner.Schema, roles.Ingest.Username
	s.store = store
	s.fingerprint, s.verifiedAt = storageFingerprint(s), &metav1.Time{Time: r.now().Truncate(time.Second)}
	msg := storageReadyMessage(s)
	// Recorded when credentials are new. Not keyed on the status: the
	// reconcile that the Secrets' creation triggers can still read the
	// tenant from before this one's status write, and would record it twice.
	if ownerPassword == "" || ingestPassword == "" {
		r.event(ctx, s.tenant, corev1.EventTypeNormal, eventProvisioned, "Provision", msg)
	}
	s.set(analyticsv1alpha1.ConditionStorageReady, metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, msg)
	return ctrl.Result{RequeueAfter: storageVerifyAfter(s.tenant.Name)}, nil
}

// storageReadyMessage says where the tenant's storage is and which Secret
// holds whose credentials.
func storageReadyMessage(s *tenantScope) string {
	ns := render.NamespaceName(s.render())
	return fmt.Sprintf("schema %s is provisioned in region %s (StorageRegion %s); the owner's credentials are in Secret %s/%s, for retention, and the ingest role %s's in Secret %s/%s",
		s.schema, s.spec.Region, s.region.Name, ns, render.StorageSecretName, s.ingestRole, ns, render.IngestSecretName)
}

// retainedDataRefused records why the tenant is not provisioned: data held
// under its name is not given to it (it did not ask, or asked for another
// deleted tenant's), or it asked for data that is not held. StorageReady is
// False with a reason of its own and a message that says what to do, and a
// Warning event is recorded when the reason is new. The tenant is looked at
// again when the hold ends, which changes what it can have, or after a
// backoff; a change of its spec reconciles it at once.
func (r *TenantReconciler) retainedDataRefused(ctx context.Context, s *tenantScope, refused *storage.RetainedDataError) (ctrl.Result, error) {
	where := fmt.Sprintf("region %s (StorageRegion %s)", s.spec.Region, s.region.Name)
	var reason, msg string
	held := refused.Held
	when, schema := "", ""
	if held != nil {
		schema = held.Schema
		when = held.ExpiresAt.Format(time.RFC3339)
		if !r.now().Before(held.ExpiresAt) {
			when += ", which has passed: it is being purged"
		}
	}
	switch {
	case held == nil:
		reason = analyticsv1alpha1.ReasonRetainedDataNotFound
		msg = fmt.Sprintf("spec.storage.adoptRetainedFrom asks for the retained data of the deleted tenant with uid %s, but %s holds no data under the name %s: its hold ended and it was purged, or it was never retained. This tenant is not provisioned empty unasked: remove spec.storage.adoptRetainedFrom to start empty",
			refused.UID, where, s.tenant.Name)
	case held.UID == "":
		reason = analyticsv1alpha1.ReasonRetainedDataExists
		msg = fmt.Sprintf("%s holds schema %s, the data of a deleted tenant also named %s, deleted at %s under deletionPolicy Retain and held until %s. It was held by an operator that did not record the deleted tenant's uid, so it cannot be adopted; this tenant is provisioned, empty, once the hold has ended and the data is purged",
			where, schema, s.tenant.Name, held.DeletedAt.Format(time.RFC3339), when)
	case refused.UID == "":
		reason = analyticsv1alpha1.ReasonRetainedDataExists
		msg = fmt.Sprintf("%s holds schema %s, the data of another AnalyticsTenant also named %s (uid %s), deleted at %s under deletionPolicy Retain and held until %s. This tenant gets none of it and is provisioned, empty, once the hold has ended and the data is purged. If this tenant is the same customer, adopt the data instead: set spec.storage.adoptRetainedFrom: %s",
			where, schema, s.tenant.Name, held.UID, held.DeletedAt.Format(time.RFC3339), when, held.UID)
	default:
		reason = analyticsv1alpha1.ReasonRetainedDataMismatch
		msg = fmt.Sprintf("spec.storage.adoptRetainedFrom is %s, but the data %s holds under the name %s (schema %s, held until %s) is that of the deleted tenant with uid %s: nothing is adopted and this tenant is not provisioned. Set it to %s to adopt that data, or remove it to start empty once the hold has ended and the data is purged",
			refused.UID, where, s.tenant.Name, schema, when, held.UID, held.UID)
	}
	if old := meta.FindStatusCondition(s.original.Status.Conditions, analyticsv1alpha1.ConditionStorageReady); old == nil || old.Reason != reason {
		r.event(ctx, s.tenant, corev1.EventTypeWarning, reason, "Provision", msg)
	}
	s.set(analyticsv1alpha1.ConditionStorageReady, metav1.ConditionFalse, reason, msg)
	retry := failingBackoff(s.failingSince(analyticsv1alpha1.ConditionStorageReady))
	if held != nil {
		if until := held.ExpiresAt.Sub(r.now()); until > 0 {
			// The region's sweep runs when the hold ends; a little after.
			retry = until + regionSweepMinWait
		}
	}
	return ctrl.Result{RequeueAfter: retry}, nil
}

// storageVerifyEvery is how often a converged tenant's storage is
// provisioned again although nothing the operator knows of changed: the
// verification that repairs what changed in the database behind its back
// (a dropped table, a role option altered by hand). Each tenant waits
// between 3/4 of it and all of it, at a point fixed by its name, so the
// tenants of a region are not all verified at once.
const storageVerifyEvery = 6 * time.Hour

// storageVerifyAfter is how long after a provisioning the tenant's next
// verification is due.
func storageVerifyAfter(tenant string) time.Duration {
	sum := sha256.Sum256([]byte(tenant))
	quarter := int64(storageVerifyEvery / 4)
	return storageVerifyEvery - time.Duration(int64(binary.BigEndian.Uint64(sum[:8])%uint64(quarter)))
}

// storageFingerprint identifies what provisioning makes for the tenant:
// the schema version, the roles' connection limits and session defaults, the StorageRegion and
// its database, the TLS in force (sslMode and the CA's hash, storageTLS),
// and the credentials in the Secrets (a lost or changed Secret changes it).
func storageFingerprint(s *tenantScope) string {
	pg := s.region.Spec.Postgres.Effective()
	h := sha256.New()
	fmt.Fprintf(h, "%d\x00%d\x00%d\x00%s\x00%s\x00%s\x00%s\x00%d\x00%s\x00%s\x00%s\x00%s",
		storage.SchemaVersion(), storage.DefaultConnectionLimit, storage.IngestConnections(ingestMaxPods(s.spec)), storage.RoleSettings(),
		s.region.Name, s.region.UID, pg.Host, pg.Port, pg.Database, s.storageTLS,
		credentialsHash(s.storageSecret), credentialsHash(s.ingestSecret))
	return hex.EncodeToString(h.Sum(nil)[:16])
}

// storageConverged says whether the tenant's storage is known to be as
// wanted: its status records the same fingerprint and the tenant's names
// (a status from before the ingest role was recorded, or one wiped, is
// provisioned again, which reads the names the region's database recorded
// and writes them back), both Secrets exist (the
// ingest one with a visitor key: one written by an operator from before
// visitor keys is not), the last verification is recent and no full reconcile is requested. due is
// then when the next verification is.
func (r *TenantReconciler) storageConverged(s *tenantScope) (due time.Duration, converged bool) {
	st := s.original.Status.Storage
	if s.requested != "" || st == nil || st.Schema == "" || st.IngestRole == "" || st.VerifiedAt == nil || s.storageSecret == nil || s.ingestSecret == nil ||
		render.VisitorKeyOf(s.ingestSecret) == nil || st.Fingerprint != storageFingerprint(s) {
		return 0, false
	}
	due = st.VerifiedAt.Add(storageVerifyAfter(s.tenant.Name)).Sub(r.now())
	return due, due > 0
}

// existingSecret is the tenant's credentials Secret name in namespace ns,
// nil when there is no such Secret.
func (r *TenantReconciler) existingSecret(ctx context.Context, ns, name string) (*corev1.Secret, error) {
	existing := &corev1.Secret{}
	key := types.NamespacedName{Namespace: ns, Name: name}
	err := r.Get(ctx, key, existing)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		// The cache may not have seen the Secret a reconcile just wrote yet;
		// provisioning without its password would set a new one under the
		// running pods. Only a miss costs this uncached read.
		err = r.APIReader.Get(ctx, key, existing)
	}
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading Secret %s: %w", key, err)
	}
	return existing, nil
}

// passwordIn is the password in a credentials Secret, "" without one.
func passwordIn(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	return string(secret.Data[render.SecretKeyPassword])
}

// storageFailed records a failure to reach or provision the region's
// database and retries with backoff. Storage errors never carry passwords.
func (r *TenantReconciler) storageFailed(s *tenantScope, err error) (ctrl.Result, error) {
	reason := storageReason(err, analyticsv1alpha1.ReasonStorageFailed)
	var missing *secretMissingError
	if errors.As(err, &missing) {
		reason = analyticsv1alpha1.ReasonSecretMissing
	}
	var refused *regionRefusal
	if errors.As(err, &refused) {
		reason = refused.reason
	}
	msg := fmt.Sprintf("provisioning in region %s (StorageRegion %s) failed: %v", s.spec.Region, s.region.Name, err)
	s.set(analyticsv1alpha1.ConditionStorageReady, metav1.ConditionFalse, reason, msg)
	return ctrl.Result{RequeueAfter: failingBackoff(s.failingSince(analyticsv1alpha1.ConditionStorageReady))}, nil
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

// storageTLS identifies the TLS in force for the region's connections,
// which the tenant's Secrets carry (sslmode, ca.crt): the effective
// sslMode and a hash of the admin Secret's CA bundle. It is part of the
// storage fingerprint, so a change of either re-provisions the tenants at
// once instead of at their next verification, hours later.
func storageTLS(cfg storage.AdminConfig) string {
	ca := sha256.Sum256(cfg.CACert)
	return cfg.SSLMode + "\x00" + hex.EncodeToString(ca[:])
}

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

// event records an event about the tenant, if there is a recorder, and
// logs it: the operator's log then tells the same story as the events.
// Notes never carry credentials.
func (r *TenantReconciler) event(ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant, eventType, reason, action, note string) {
	log.FromContext(ctx).Info(note, "event", reason, "type", eventType)
	if r.Recorder != nil {
		r.Recorder.Eventf(tenant, nil, eventType, reason, action, "%s", note)
	}
}

// ingestMaxPods is the most ingest pods the tenant may run: the
// autoscaler's ceiling, or the fixed replicas.
func ingestMaxPods(spec analyticsv1alpha1.EffectiveTenantSpec) int {
	if spec.Autoscaling != nil {
		return int(max(spec.Autoscaling.MaxReplicas, spec.Replicas))
	}
	return int(spec.Replicas)
}
