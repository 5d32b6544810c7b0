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

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// reconcileWorkloads applies the ingest ServiceAccount, ConfigMap,
// Deployment, Service, the HPA and PDB when wanted (removing them when not),
// and the ResourceQuota. It owns IngestAvailable, from the Deployment's
// status.
func (r *TenantReconciler) reconcileWorkloads(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	t := s.render()
	for _, obj := range []client.Object{
		render.ResourceQuota(t),
		render.IngestServiceAccount(t),
		render.IngestConfigMap(t),
		render.IngestDeployment(t),
		render.IngestService(t),
	} {
		if err := r.apply.apply(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	ns := render.NamespaceName(t)
	if hpa := render.IngestHPA(t); hpa != nil {
		if err := r.apply.apply(ctx, hpa); err != nil {
			return ctrl.Result{}, err
		}
	} else if err := r.apply.remove(ctx, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.IngestName}}); err != nil {
		return ctrl.Result{}, fmt.Errorf("removing the HorizontalPodAutoscaler of %s: %w", ns, err)
	}
	if pdb := render.IngestPDB(t); pdb != nil {
		if err := r.apply.apply(ctx, pdb); err != nil {
			return ctrl.Result{}, err
		}
	} else if err := r.apply.remove(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.IngestName}}); err != nil {
		return ctrl.Result{}, fmt.Errorf("removing the PodDisruptionBudget of %s: %w", ns, err)
	}

	deploy := &appsv1.Deployment{}
	if err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestName}, deploy); err != nil {
		// Just applied; the cache has not seen it yet. Its watch event
		// brings the next reconcile.
		s.set(analyticsv1alpha1.ConditionIngestAvailable, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the ingest Deployment is being created")
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.deployment = deploy
	status, reason, msg := deploymentAvailability(deploy, s.spec.Suspend)
	s.set(analyticsv1alpha1.ConditionIngestAvailable, status, reason, msg)
	return ctrl.Result{}, nil
}

// deploymentAvailability reads whether ingest is serving at its desired
// size, as `kubectl rollout status` would.
func deploymentAvailability(d *appsv1.Deployment, suspended bool) (metav1.ConditionStatus, string, string) {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	switch {
	case d.Status.ObservedGeneration < d.Generation:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the ingest Deployment's latest change has not been observed yet"
	case suspended && want == 0:
		return metav1.ConditionTrue, analyticsv1alpha1.ReasonSuspended, "the tenant is suspended: ingest is scaled to zero, data is kept"
	case d.Status.UpdatedReplicas < want:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, fmt.Sprintf("ingest is rolling out: %d of %d pods updated", d.Status.UpdatedReplicas, want)
	case d.Status.AvailableReplicas < want:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonDeploymentUnavailable, fmt.Sprintf("%d of %d ingest pods are available", d.Status.AvailableReplicas, want)
	default:
		return metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, fmt.Sprintf("%d of %d ingest pods are available", d.Status.AvailableReplicas, want)
	}
}

// reconcileNetwork applies the tenant's NetworkPolicies: deny by default,
// ingest reachable only from the edge, egress only to DNS and the region's
// storage. It owns NetworkIsolated.
func (r *TenantReconciler) reconcileNetwork(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	for _, np := range render.NetworkPolicies(s.render()) {
		if err := r.apply.apply(ctx, np); err != nil {
			return ctrl.Result{}, err
		}
	}
	msg := "all traffic is denied except edge to ingest, and DNS and storage from the tenant's pods"
	if s.region.Spec.Egress == nil || len(s.region.Spec.Egress.To) == 0 {
		msg = fmt.Sprintf("all traffic is denied except edge to ingest and DNS; StorageRegion %s lists no egress peers, so tenant pods cannot reach storage", s.region.Name)
	}
	s.set(analyticsv1alpha1.ConditionNetworkIsolated, metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, msg)
	return ctrl.Result{}, nil
}

// reconcileRetention applies the retention ServiceAccount and CronJob. It
// owns RetentionScheduled, from the CronJob's status.
func (r *TenantReconciler) reconcileRetention(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	t := s.render()
	if err := r.apply.apply(ctx, render.RetentionServiceAccount(t)); err != nil {
		return ctrl.Result{}, err
	}
	desired := render.RetentionCronJob(t)
	if err := r.apply.apply(ctx, desired); err != nil {
		return ctrl.Result{}, err
	}
	cj := &batchv1.CronJob{}
	if err := r.Get(ctx, client.ObjectKeyFromObject(desired), cj); err != nil {
		s.set(analyticsv1alpha1.ConditionRetentionScheduled, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the retention CronJob is being created")
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.cronJob = cj
	if ok := cj.Status.LastSuccessfulTime; ok != nil {
		retentionLastSuccess.WithLabelValues(s.tenant.Name).Set(float64(ok.Unix()))
	} else {
		retentionLastSuccess.DeleteLabelValues(s.tenant.Name)
	}
	status, reason, msg := retentionState(cj, s.spec)
	s.set(analyticsv1alpha1.ConditionRetentionScheduled, status, reason, msg)
	return ctrl.Result{}, nil
}

// retentionState reads the retention CronJob: scheduled, or failing (its
// last run did not succeed and none is running). A suspended tenant's
// retention runs like any other's: suspending pauses collection, not the
// deletion the policy promises.
func retentionState(cj *batchv1.CronJob, spec analyticsv1alpha1.EffectiveTenantSpec) (metav1.ConditionStatus, string, string) {
	last, ok := cj.Status.LastScheduleTime, cj.Status.LastSuccessfulTime
	switch {
	case last != nil && len(cj.Status.Active) == 0 && (ok == nil || ok.Before(last)):
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonRetentionFailing,
			fmt.Sprintf("the retention run started %s did not succeed; see the Jobs in namespace %s", last.UTC().Format("2006-01-02T15:04:05Z"), cj.Namespace)
	default:
		return metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled,
			fmt.Sprintf("raw events older than %d days are rolled up and deleted daily at %q UTC", spec.RetentionDays, cj.Spec.Schedule)
	}
}
