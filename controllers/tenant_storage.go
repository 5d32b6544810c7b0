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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

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
		if err := r.apply.Apply(ctx, secret); err != nil {
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

// storageTLS identifies the TLS in force for the region's connections,
// which the tenant's Secrets carry (sslmode, ca.crt): the effective
// sslMode and a hash of the admin Secret's CA bundle. It is part of the
// storage fingerprint, so a change of either re-provisions the tenants at
// once instead of at their next verification, hours later.
func storageTLS(cfg storage.AdminConfig) string {
	ca := sha256.Sum256(cfg.CACert)
	return cfg.SSLMode + "\x00" + hex.EncodeToString(ca[:])
}

// ingestMaxPods is the most ingest pods the tenant may run: the
// autoscaler's ceiling, or the fixed replicas.
func ingestMaxPods(spec analyticsv1alpha1.EffectiveTenantSpec) int {
	if spec.Autoscaling != nil {
		return int(max(spec.Autoscaling.MaxReplicas, spec.Replicas))
	}
	return int(spec.Replicas)
}
