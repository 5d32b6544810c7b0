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
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// partConditions are the conditions the phases own, in the order Ready
// reports the first one that is not True.
var partConditions = []string{
	analyticsv1alpha1.ConditionStorageReady,
	analyticsv1alpha1.ConditionIngestAvailable,
	analyticsv1alpha1.ConditionRetentionScheduled,
	analyticsv1alpha1.ConditionRetentionCompliant,
	analyticsv1alpha1.ConditionNetworkIsolated,
	analyticsv1alpha1.ConditionRouted,
}

// updateStatus computes the whole status once from what the phases observed
// and writes it only if it changed. reconcileErr is a transient failure of
// this reconcile: the generation is then not marked observed.
func (r *TenantReconciler) updateStatus(ctx context.Context, s *tenantScope, reconcileErr error) error {
	status := s.original.Status.DeepCopy()
	t := s.render()
	status.Namespace = render.NamespaceName(t)
	if s.namespaceNotOurs {
		status.Namespace = ""
	}
	// Schema and Secret are named only once provisioned: deletion relies on
	// them to know whether there is anything to purge.
	status.Storage = &analyticsv1alpha1.StorageStatus{Region: s.spec.Region}
	if old := s.original.Status.Storage; old != nil {
		status.Storage.Schema, status.Storage.SecretName = old.Schema, old.SecretName
		status.Storage.IngestRole = old.IngestRole
		status.Storage.AdoptedFrom = old.AdoptedFrom
		status.Storage.Fingerprint, status.Storage.VerifiedAt = old.Fingerprint, old.VerifiedAt
	}
	if s.fingerprint != "" {
		status.Storage.Fingerprint, status.Storage.VerifiedAt = s.fingerprint, s.verifiedAt
	}
	if s.adoptedFrom != nil {
		status.Storage.AdoptedFrom = s.adoptedFrom
	}
	if s.region != nil {
		status.Storage.RegionRef = s.region.Name
	}
	if s.schema != "" {
		status.Storage.Schema, status.Storage.SecretName = s.schema, render.StorageSecretName
		status.Storage.IngestRole = s.ingestRole
	}
	status.Retention = &analyticsv1alpha1.RetentionStatus{Days: s.spec.RetentionDays, Schedule: render.RetentionSchedule(s.tenant.Name)}
	if cj := s.cronJob; cj != nil {
		status.Retention.LastScheduleTime = cj.Status.LastScheduleTime
		status.Retention.LastSuccessfulTime = cj.Status.LastSuccessfulTime
	}
	// Like the conditions, the oldest raw event day is kept as last read
	// when this reconcile did not read it.
	if s.oldestRawEventRead {
		status.Retention.OldestRawEvent = s.oldestRawEvent
	} else if old := s.original.Status.Retention; old != nil {
		status.Retention.OldestRawEvent = old.OldestRawEvent
	}
	if d := s.deployment; d != nil {
		status.Ingest = &analyticsv1alpha1.IngestStatus{
			ReadyReplicas: d.Status.ReadyReplicas,
			Service:       render.IngestServiceAddress(t),
		}
		if d.Spec.Replicas != nil {
			status.Ingest.Replicas = *d.Spec.Replicas
		}
	}
	if s.routeObserved {
		if status.Ingest == nil && s.ingestURL != "" {
			status.Ingest = &analyticsv1alpha1.IngestStatus{Service: render.IngestServiceAddress(t)}
		}
		if status.Ingest != nil {
			status.Ingest.URL = s.ingestURL
		}
	}

	// A part whose phase did not run keeps what was last observed, or is
	// Unknown; it never turns True without being observed. When the
	// tenant is refused, what was observed before no longer holds.
	for _, condType := range partConditions {
		if c, ok := s.conditions[condType]; ok {
			meta.SetStatusCondition(&status.Conditions, c)
			continue
		}
		if s.refusal != nil {
			meta.SetStatusCondition(&status.Conditions, metav1.Condition{
				Type: condType, Status: metav1.ConditionUnknown, Reason: s.refusal.reason,
				Message: "not reconciled: " + s.refusal.message, ObservedGeneration: s.tenant.Generation,
			})
			continue
		}
		if reconcileErr == nil && meta.FindStatusCondition(status.Conditions, condType) == nil {
			meta.SetStatusCondition(&status.Conditions, metav1.Condition{
				Type: condType, Status: metav1.ConditionUnknown, Reason: analyticsv1alpha1.ReasonProgressing,
				Message: "waiting for the tenant's storage", ObservedGeneration: s.tenant.Generation,
			})
		}
	}
	switch {
	case reconcileErr != nil:
		// The API server or the database failed this reconcile; say so on
		// Ready without touching what the parts last observed.
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: analyticsv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: analyticsv1alpha1.ReasonApplyFailed,
			Message: reconcileErr.Error(), ObservedGeneration: s.tenant.Generation,
		})
	case s.refusal != nil:
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: analyticsv1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: s.refusal.reason,
			Message: s.refusal.message, ObservedGeneration: s.tenant.Generation,
		})
		// This generation was looked at, and refused.
		status.ObservedGeneration = s.tenant.Generation
	default:
		meta.SetStatusCondition(&status.Conditions, summarize(status.Conditions, s.tenant.Generation))
		status.ObservedGeneration = s.tenant.Generation
		if s.requested != "" {
			status.LastHandledReconcileAt = s.requested
		}
	}
	// Stalled and Reconciling exclude each other, as kstatus reads them:
	// a stalled tenant is Failed, not InProgress, until a person acts.
	stalled := stalledCondition(status.Conditions, s.tenant.Generation)
	if stalled != nil {
		meta.SetStatusCondition(&status.Conditions, *stalled)
	} else {
		meta.RemoveStatusCondition(&status.Conditions, analyticsv1alpha1.ConditionStalled)
	}
	if ready := meta.FindStatusCondition(status.Conditions, analyticsv1alpha1.ConditionReady); ready.Status == metav1.ConditionTrue || stalled != nil {
		meta.RemoveStatusCondition(&status.Conditions, analyticsv1alpha1.ConditionReconciling)
	} else {
		meta.SetStatusCondition(&status.Conditions, metav1.Condition{
			Type: analyticsv1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: ready.Reason, Message: ready.Message,
			ObservedGeneration: s.tenant.Generation,
		})
	}

	if equality.Semantic.DeepEqual(&s.original.Status, status) {
		return nil
	}
	wasReady := meta.FindStatusCondition(s.original.Status.Conditions, analyticsv1alpha1.ConditionReady)
	nowReady := meta.FindStatusCondition(status.Conditions, analyticsv1alpha1.ConditionReady)
	wasCompliant := meta.FindStatusCondition(s.original.Status.Conditions, analyticsv1alpha1.ConditionRetentionCompliant)
	nowCompliant := meta.FindStatusCondition(status.Conditions, analyticsv1alpha1.ConditionRetentionCompliant)
	patch := client.MergeFrom(s.original)
	updated := s.original.DeepCopy()
	updated.Status = *status
	if err := r.Status().Patch(ctx, updated, patch); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("writing status of AnalyticsTenant %s: %w", s.tenant.Name, err))
	}
	if wasReady == nil || wasReady.Status != nowReady.Status || wasReady.Reason != nowReady.Reason {
		log.FromContext(ctx).Info("Ready is "+string(nowReady.Status), "reason", nowReady.Reason, "message", nowReady.Message)
	}
	if nowReady.Status == metav1.ConditionFalse && nowReady.Reason == analyticsv1alpha1.ReasonRegionUnavailable &&
		(wasReady == nil || wasReady.Reason != nowReady.Reason) {
		r.event(ctx, s.tenant, "Warning", analyticsv1alpha1.ReasonRegionUnavailable, "Provision", nowReady.Message)
	}
	if s.refusal != nil && s.refusal.warn && (wasReady == nil || wasReady.Reason != nowReady.Reason || wasReady.Message != nowReady.Message) {
		r.event(ctx, s.tenant, "Warning", s.refusal.reason, "Reconcile", s.refusal.message)
	}
	if wasStorage, nowStorage := meta.FindStatusCondition(s.original.Status.Conditions, analyticsv1alpha1.ConditionStorageReady),
		meta.FindStatusCondition(status.Conditions, analyticsv1alpha1.ConditionStorageReady); nowStorage != nil &&
		nowStorage.Reason == analyticsv1alpha1.ReasonRoleConflict && (wasStorage == nil || wasStorage.Reason != nowStorage.Reason) {
		r.event(ctx, s.tenant, corev1.EventTypeWarning, analyticsv1alpha1.ReasonRoleConflict, "Provision", nowStorage.Message)
	}
	// Refusals and role conflicts record their own event; ingest's stalls
	// are recorded here, once per reason.
	if wasStalled := meta.FindStatusCondition(s.original.Status.Conditions, analyticsv1alpha1.ConditionStalled); stalled != nil &&
		ingestStallReasons[stalled.Reason] && (wasStalled == nil || wasStalled.Reason != stalled.Reason) {
		r.event(ctx, s.tenant, corev1.EventTypeWarning, stalled.Reason, "Rollout", stalled.Message)
	}
	r.recordRetentionTransition(ctx, s.tenant, wasCompliant, nowCompliant)
	r.recordHostnameRefusal(ctx, s.tenant, meta.FindStatusCondition(s.original.Status.Conditions, analyticsv1alpha1.ConditionRouted),
		meta.FindStatusCondition(status.Conditions, analyticsv1alpha1.ConditionRouted))
	return nil
}

// summarize is Ready: True when every part is, else the first part that is
// not, with its reason and message. A Routed that says the operator routes
// no tenant (routingNotInForce) is not a part.
func summarize(conditions []metav1.Condition, generation int64) metav1.Condition {
	routed := false
	for _, condType := range partConditions {
		c := meta.FindStatusCondition(conditions, condType)
		if c != nil && condType == analyticsv1alpha1.ConditionRouted && slices.Contains(routingNotInForce, c.Reason) {
			continue
		}
		routed = routed || condType == analyticsv1alpha1.ConditionRouted
		if c == nil || c.Status != metav1.ConditionTrue {
			ready := metav1.Condition{
				Type: analyticsv1alpha1.ConditionReady, Status: metav1.ConditionFalse, ObservedGeneration: generation,
				Reason: analyticsv1alpha1.ReasonProgressing, Message: condType + " is not yet observed",
			}
			if c != nil {
				ready.Reason, ready.Message = c.Reason, fmt.Sprintf("%s: %s", condType, c.Message)
			}
			return ready
		}
	}
	msg := "storage is provisioned, ingest is available, retention is scheduled and no raw event outlives the window, and the network is isolated"
	if routed {
		msg += "; the gateway routes ingest's hostnames to it"
	}
	return metav1.Condition{
		Type: analyticsv1alpha1.ConditionReady, Status: metav1.ConditionTrue, ObservedGeneration: generation,
		Reason: analyticsv1alpha1.ReasonReconciled, Message: msg,
	}
}
