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

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// tenantScope is one reconcile of one tenant: its inputs, and what each
// phase observed, from which updateStatus computes the status once.
type tenantScope struct {
	// original is the tenant as read, to diff the status against.
	original *analyticsv1alpha1.AnalyticsTenant
	tenant   *analyticsv1alpha1.AnalyticsTenant
	spec     analyticsv1alpha1.EffectiveTenantSpec
	settings render.Settings
	// requested is the value of the tenant's ReconcileRequestedAnnotation
	// when it asks for a full reconcile not handled yet, else "".
	requested string

	// region is the StorageRegion serving the tenant, once resolved, or
	// the one last known while the region is unavailable (nil when none
	// is): placement and egress are rendered from it.
	region *analyticsv1alpha1.StorageRegion
	// regionUnavailable says the region cannot be used now: nothing is
	// provisioned or dialled.
	regionUnavailable bool
	// conditions are the conditions the phases that ran decided.
	conditions map[string]metav1.Condition
	// refusal, once set, is why the operator does not act on the tenant
	// at all: no later phase runs, and Ready carries its reason and
	// message (see refuse).
	refusal *refusal
	// namespaceNotOurs says a namespace of the tenant's namespace's name
	// exists and is not the tenant's: status names no namespace.
	namespaceNotOurs bool

	schema string
	// ingestRole is the tenant's ingest role, named with schema.
	ingestRole string
	// fingerprint and verifiedAt are what status.storage records of the
	// last provisioning, once storage is known to be converged.
	fingerprint string
	verifiedAt  *metav1.Time
	// adoptedFrom is when the earlier tenant of the same name, whose
	// retained data this reconcile adopted, was deleted.
	adoptedFrom *metav1.Time
	// store is the region's storage, once the tenant is provisioned in it.
	store RegionStore
	// storageCA is whether the tenant's credentials carry a private CA.
	storageCA bool
	// storageTLS is the region's TLS in force (storageTLS), once its
	// admin configuration is read.
	storageTLS string
	// storageSecret and ingestSecret are the credentials Secrets in force:
	// as this reconcile applied them, or as cached when storage could not
	// be provisioned now; nil when there is none.
	storageSecret *corev1.Secret
	ingestSecret  *corev1.Secret
	// credentialsRead is whether storageSecret and ingestSecret are known.
	credentialsRead bool
	deployment      *appsv1.Deployment
	cronJob         *batchv1.CronJob
	// routeObserved is whether the route phase ran; ingestURL is the
	// status.ingest.url it decided ("" when no route is rendered).
	routeObserved bool
	ingestURL     string
	// oldestRawEventRead is whether this reconcile read the oldest raw
	// event day, and oldestRawEvent is that day (nil: no raw event).
	oldestRawEventRead bool
	oldestRawEvent     *metav1.Time
}

func newTenantScope(tenant *analyticsv1alpha1.AnalyticsTenant, settings render.Settings) *tenantScope {
	requested := tenant.Annotations[analyticsv1alpha1.ReconcileRequestedAnnotation]
	if requested == tenant.Status.LastHandledReconcileAt {
		requested = ""
	}
	return &tenantScope{
		requested:  requested,
		original:   tenant.DeepCopy(),
		tenant:     tenant,
		spec:       tenant.Spec.Effective(),
		settings:   settings,
		conditions: map[string]metav1.Condition{},
	}
}

// render is the builders' view of the tenant; valid once region is set.
func (s *tenantScope) render() render.Tenant {
	return render.Tenant{
		Object: s.tenant, Spec: s.spec, Region: s.region, Settings: s.settings, StorageCA: s.storageCA,
		StorageCredentialsHash: credentialsHash(s.storageSecret),
		IngestCredentialsHash:  credentialsHash(s.ingestSecret),
	}
}

// set records a condition decided by a phase.
func (s *tenantScope) set(condType string, status metav1.ConditionStatus, reason, message string) {
	s.conditions[condType] = metav1.Condition{
		Type:               condType,
		Status:             status,
		Reason:             reason,
		Message:            message,
		ObservedGeneration: s.tenant.Generation,
	}
}

// refusal is why the operator does not act on a tenant now: a reason of
// api/v1alpha1 and a message that says what a person must do, or what
// the tenant waits for.
type refusal struct {
	reason, message string
	// warn records a Warning event: a person has to act.
	warn bool
}

// refuse stops the reconcile after the current phase: what the tenant
// asks for cannot be done as it stands, and no retry changes that. Ready
// is False with the reason, the parts not observed are Unknown with it,
// and a Warning event says it once.
func (s *tenantScope) refuse(reason, message string) {
	s.refusal = &refusal{reason: reason, message: message, warn: true}
}

// wait stops the reconcile after the current phase as refuse does, but
// for something that resolves on its own: Ready is False with reason
// Progressing, and no event is recorded.
func (s *tenantScope) wait(message string) {
	s.refusal = &refusal{reason: analyticsv1alpha1.ReasonProgressing, message: message}
}

// failingSince is when the tenant's recorded condition became False, or
// now if it is not False: the start of the failure a backoff is timed from.
func (s *tenantScope) failingSince(condType string) time.Time {
	for _, c := range s.original.Status.Conditions {
		if c.Type == condType && c.Status == metav1.ConditionFalse {
			return c.LastTransitionTime.Time
		}
	}
	return time.Now()
}

// credentialsHash is render.CredentialsHash of a credentials Secret, as
// rendered or as cached: the cache keeps only the hash (children.Slim).
func credentialsHash(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	if h, ok := secret.Annotations[render.AnnotationCredentialsHash]; ok {
		return h
	}
	return render.CredentialsHash(secret)
}
