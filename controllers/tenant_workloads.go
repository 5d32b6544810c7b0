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

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/children"
	"github.com/millimetric/tenant-operator/internal/render"
)

// readCredentials makes the credentials Secrets in force known to the
// scope: those the storage phase applied or, when it could not provision
// now, those cached, so the workloads keep their pod templates (and a
// private CA) while the database is away.
func (r *TenantReconciler) readCredentials(ctx context.Context, s *tenantScope) error {
	if s.credentialsRead {
		return nil
	}
	ns := render.NamespaceName(s.render())
	read := func(name string) (*corev1.Secret, error) {
		secret := &corev1.Secret{}
		err := r.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, secret)
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading Secret %s/%s: %w", ns, name, err)
		}
		return secret, nil
	}
	var err error
	if s.storageSecret, err = read(render.StorageSecretName); err != nil {
		return err
	}
	if s.ingestSecret, err = read(render.IngestSecretName); err != nil {
		return err
	}
	for _, secret := range []*corev1.Secret{s.storageSecret, s.ingestSecret} {
		if secret != nil {
			_, s.storageCA = secret.Data[render.SecretKeyCACert]
		}
	}
	s.credentialsRead = true
	return nil
}

// workloadsWait says why the workload reading the Secret named cannot be
// applied now, "" when it can: it needs its credentials, and its region's
// placement and egress.
func workloadsWait(s *tenantScope, secret *corev1.Secret, name string) string {
	switch {
	case s.region == nil:
		return fmt.Sprintf("waiting for a StorageRegion serving region %s", s.spec.Region)
	case secret == nil:
		return fmt.Sprintf("waiting for storage to be provisioned, which writes Secret %s", name)
	}
	return ""
}

// reconcileWorkloads applies the ingest ServiceAccount, ConfigMap,
// Deployment and Service, and the HPA and PDB when wanted (removing them
// when not). It owns IngestAvailable, from the Deployment's status. The
// Deployment waits only for what it needs: its credentials Secret and a
// StorageRegion; once it has them, a database outage does not stop it
// being kept.
func (r *TenantReconciler) reconcileWorkloads(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	if err := r.readCredentials(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	t := s.render()
	for _, obj := range []client.Object{
		render.IngestServiceAccount(t),
		render.IngestConfigMap(t),
		render.IngestService(t),
	} {
		if err := r.apply.Apply(ctx, obj); err != nil {
			return ctrl.Result{}, err
		}
	}
	ns := render.NamespaceName(t)
	key := client.ObjectKey{Namespace: ns, Name: render.IngestName}
	waiting := workloadsWait(s, s.ingestSecret, render.IngestSecretName)
	queued := false

	// What was applied: its generation is the one the Deployment must
	// have observed, whatever the cache says yet.
	var applied *appsv1.Deployment
	if waiting == "" {
		hpa := render.IngestHPA(t)
		applied = render.IngestDeployment(t)
		handover := r.handOverReplicas(hpa)
		// The gate goes first: a queued rollout writes nothing, not even
		// the replicas' hand-over.
		before := []children.BeforeWrite{handover.before}
		if !s.spec.Suspend {
			before = []children.BeforeWrite{r.beforeTemplateChange(s.tenant.Name, applied), handover.before}
		}
		switch err := r.apply.Apply(ctx, applied, before...); {
		case errors.Is(err, errRolloutQueued):
			queued, applied = true, nil
		case err != nil:
			return ctrl.Result{}, err
		default:
			if err := handover.after(ctx); err != nil {
				return ctrl.Result{}, err
			}
		}
		if hpa != nil {
			if err := r.apply.Apply(ctx, hpa); err != nil {
				return ctrl.Result{}, err
			}
		} else if err := r.apply.Remove(ctx, &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.IngestName}}); err != nil {
			return ctrl.Result{}, fmt.Errorf("removing the HorizontalPodAutoscaler of %s: %w", ns, err)
		}
		if pdb := render.IngestPDB(t); pdb != nil {
			if err := r.apply.Apply(ctx, pdb); err != nil {
				return ctrl.Result{}, err
			}
		} else if err := r.apply.Remove(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.IngestName}}); err != nil {
			return ctrl.Result{}, fmt.Errorf("removing the PodDisruptionBudget of %s: %w", ns, err)
		}
	}

	deploy := &appsv1.Deployment{}
	switch err := r.Get(ctx, key, deploy); {
	case apierrors.IsNotFound(err) && waiting != "":
		s.set(analyticsv1alpha1.ConditionIngestAvailable, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "ingest is "+waiting)
		return ctrl.Result{}, nil
	case apierrors.IsNotFound(err):
		// Just applied; the cache has not seen it yet. Its watch event
		// brings the next reconcile.
		s.set(analyticsv1alpha1.ConditionIngestAvailable, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the ingest Deployment is being created")
		return ctrl.Result{}, nil
	case err != nil:
		return ctrl.Result{}, fmt.Errorf("reading Deployment %s: %w", key, err)
	}
	s.deployment = deploy
	var appliedGeneration int64
	if applied != nil {
		appliedGeneration = applied.Generation
	}
	status, reason, msg := deploymentAvailability(deploy, appliedGeneration, s.spec.Suspend)
	switch {
	case queued:
		// Ingest serves on as it was; Ready says the tenant is not yet
		// what it should be, and why.
		s.set(analyticsv1alpha1.ConditionIngestAvailable, metav1.ConditionFalse, analyticsv1alpha1.ReasonRolloutQueued, fmt.Sprintf(
			"ingest's pod template is to change and its rollout waits its turn: %d tenants roll at once (--max-concurrent-tenant-rollouts); ingest serves on its previous template meanwhile",
			r.rollouts.max))
		return ctrl.Result{RequeueAfter: rolloutRetry}, nil
	case status == metav1.ConditionTrue:
		r.rollouts.done(s.tenant.Name)
	}
	var result ctrl.Result
	if status == metav1.ConditionFalse && deploy.Status.ObservedGeneration >= deploy.Generation {
		// Not available on an observed generation: say why, when its pods
		// cannot start for a reason waiting does not resolve.
		podReason, podMsg, recheck, err := r.ingestPodsStall(ctx, ns, s.tenant.Name)
		if err != nil {
			return ctrl.Result{}, err
		}
		if podReason != "" {
			reason, msg = podReason, podMsg
		}
		result.RequeueAfter = recheck
	}
	s.set(analyticsv1alpha1.ConditionIngestAvailable, status, reason, msg)
	return result, nil
}

// replicasHandover hands the Deployment's replicas over to the
// HorizontalPodAutoscaler without a dip. Applied without replicas, a
// Deployment whose replicas we set before (fixed, or 0 while suspended)
// would lose the field and fall to the default of 1, and an autoscaler
// does not scale a target at 0 at all. So, before our apply gives the
// field up, another field manager of ours (handoverFieldOwner) applies
// replicas alone, at the current count kept within the autoscaler's
// bounds; that manager keeps it set until the autoscaler, writing the
// scale, takes it over. A Deployment being created gets the autoscaler's
// minimum the same way, right after.
type replicasHandover struct {
	before children.BeforeWrite
	after  func(context.Context) error
}

// handoverFieldOwner is the field manager of the replicas hand-over.
const handoverFieldOwner = render.FieldOwner + "-handover"

func (r *TenantReconciler) handOverReplicas(hpa *autoscalingv2.HorizontalPodAutoscaler) replicasHandover {
	h := replicasHandover{
		before: func(context.Context, client.Object) error { return nil },
		after:  func(context.Context) error { return nil },
	}
	if hpa == nil {
		return h
	}
	lo, hi := ptr.Deref(hpa.Spec.MinReplicas, 1), hpa.Spec.MaxReplicas
	set := func(ctx context.Context, replicas int32) error {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion("apps/v1")
		u.SetKind("Deployment")
		u.SetNamespace(hpa.Namespace)
		u.SetName(hpa.Spec.ScaleTargetRef.Name)
		if err := unstructured.SetNestedField(u.Object, int64(replicas), "spec", "replicas"); err != nil {
			return err
		}
		if err := r.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(handoverFieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("handing the replicas of Deployment %s/%s over to its autoscaler: %w", hpa.Namespace, u.GetName(), err)
		}
		return nil
	}
	created := false
	h.before = func(ctx context.Context, live client.Object) error {
		if live == nil {
			created = true
			return nil
		}
		current := ptr.Deref(live.(*appsv1.Deployment).Spec.Replicas, 1)
		return set(ctx, min(max(current, lo), hi))
	}
	h.after = func(ctx context.Context) error {
		if !created {
			return nil
		}
		return set(ctx, lo)
	}
	return h
}

// deploymentAvailability reads whether ingest is serving at its desired
// size on its latest template, as `kubectl rollout status` would. applied
// is the generation this reconcile's apply gave the Deployment (0 when it
// wrote nothing): a cached Deployment older than that has not even been
// seen by its controller yet.
func deploymentAvailability(d *appsv1.Deployment, applied int64, suspended bool) (metav1.ConditionStatus, string, string) {
	want := ptr.Deref(d.Spec.Replicas, 1)
	progressing := children.DeploymentCondition(d, appsv1.DeploymentProgressing)
	switch {
	case d.Generation < applied || d.Status.ObservedGeneration < d.Generation:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the ingest Deployment's latest change has not been observed yet"
	case suspended && want == 0:
		return metav1.ConditionTrue, analyticsv1alpha1.ReasonSuspended,
			"the tenant is suspended: ingest is scaled to zero by design and that is its ready state; data is kept and retention keeps running"
	case progressing != nil && progressing.Reason == "ProgressDeadlineExceeded":
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressDeadlineExceeded,
			fmt.Sprintf("the ingest rollout is stuck: %s", progressing.Message)
	case d.Status.UpdatedReplicas < want:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, fmt.Sprintf("ingest is rolling out: %d of %d pods updated", d.Status.UpdatedReplicas, want)
	case d.Status.Replicas > d.Status.UpdatedReplicas:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing,
			fmt.Sprintf("ingest is rolling out: %d old pods are still to be replaced", d.Status.Replicas-d.Status.UpdatedReplicas)
	case d.Status.AvailableReplicas < want:
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonDeploymentUnavailable, fmt.Sprintf("%d of %d ingest pods are available", d.Status.AvailableReplicas, want)
	default:
		return metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, fmt.Sprintf("%d of %d ingest pods are available, all on the latest template", d.Status.AvailableReplicas, want)
	}
}
