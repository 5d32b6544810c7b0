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

	batchv1 "k8s.io/api/batch/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// reconcileRetention applies the retention ServiceAccount and CronJob. It
// owns RetentionScheduled, from the CronJob's status.
func (r *TenantReconciler) reconcileRetention(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	if err := r.readCredentials(ctx, s); err != nil {
		return ctrl.Result{}, err
	}
	t := s.render()
	if err := r.apply.Apply(ctx, render.RetentionServiceAccount(t)); err != nil {
		return ctrl.Result{}, err
	}
	desired := render.RetentionCronJob(t)
	waiting := workloadsWait(s, s.storageSecret, render.StorageSecretName)
	if waiting == "" {
		if err := r.apply.Apply(ctx, desired); err != nil {
			return ctrl.Result{}, err
		}
	}
	cj := &batchv1.CronJob{}
	switch err := r.Get(ctx, client.ObjectKeyFromObject(desired), cj); {
	case apierrors.IsNotFound(err) && waiting != "":
		s.set(analyticsv1alpha1.ConditionRetentionScheduled, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "retention is "+waiting)
		return ctrl.Result{}, nil
	case err != nil:
		s.set(analyticsv1alpha1.ConditionRetentionScheduled, metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "the retention CronJob is being created")
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	s.cronJob = cj
	if ok := cj.Status.LastSuccessfulTime; ok != nil {
		retentionLastSuccess.WithLabelValues(s.tenant.Name).Set(float64(ok.Unix()))
	} else {
		retentionLastSuccess.DeleteLabelValues(s.tenant.Name)
	}
	status, reason, msg := retentionState(cj, s.spec, render.RetentionSchedule(s.tenant.Name))
	s.set(analyticsv1alpha1.ConditionRetentionScheduled, status, reason, msg)
	return ctrl.Result{}, nil
}

// retentionState reads the retention CronJob: scheduled, or failing (its
// last run did not succeed and none is running). A suspended tenant's
// retention runs like any other's: suspending pauses collection, not the
// deletion the policy promises.
func retentionState(cj *batchv1.CronJob, spec analyticsv1alpha1.EffectiveTenantSpec, schedule string) (metav1.ConditionStatus, string, string) {
	last, ok := cj.Status.LastScheduleTime, cj.Status.LastSuccessfulTime
	switch {
	case last != nil && len(cj.Status.Active) == 0 && (ok == nil || ok.Before(last)):
		return metav1.ConditionFalse, analyticsv1alpha1.ReasonRetentionFailing,
			fmt.Sprintf("the retention run started %s did not succeed; see the Jobs in namespace %s", last.UTC().Format("2006-01-02T15:04:05Z"), cj.Namespace)
	default:
		return metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled,
			fmt.Sprintf("raw events older than %d days are rolled up and deleted daily at %q UTC", spec.RetentionDays, schedule)
	}
}
