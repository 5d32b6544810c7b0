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
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// IngestAvailable is read from the Deployment as `kubectl rollout status`
// reads it, plus what only the reconcile knows: the generation it applied.
func TestDeploymentAvailability(t *testing.T) {
	deployment := func(replicas int32, generation int64, status appsv1.DeploymentStatus) *appsv1.Deployment {
		return &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Generation: generation},
			Spec:       appsv1.DeploymentSpec{Replicas: ptr.To(replicas)},
			Status:     status,
		}
	}
	done := appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}
	stuck := done
	stuck.UpdatedReplicas = 1
	stuck.Replicas = 3
	stuck.Conditions = []appsv1.DeploymentCondition{{
		Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
		Message: `ReplicaSet "ingest-7d9" has timed out progressing.`,
	}}
	for _, tt := range []struct {
		name      string
		d         *appsv1.Deployment
		applied   int64
		suspended bool
		status    metav1.ConditionStatus
		reason    string
		message   string
	}{
		{"rolled out and available", deployment(2, 3, done), 0, false, metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, "2 of 2"},
		{"just applied, the cache still has the generation before", deployment(2, 3, done), 4, false,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "not been observed"},
		{"applied, not observed by the Deployment controller yet", deployment(2, 4, done), 4, false,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "not been observed"},
		{"new pods being created",
			deployment(2, 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 1, AvailableReplicas: 2}), 0, false,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "1 of 2 pods updated"},
		{"every pod updated, an old one still running",
			deployment(2, 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 3, UpdatedReplicas: 2, AvailableReplicas: 2}), 0, false,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "1 old pods"},
		{"updated but not available",
			deployment(2, 3, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2, UpdatedReplicas: 2, AvailableReplicas: 1}), 0, false,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonDeploymentUnavailable, "1 of 2"},
		{"stuck past its progress deadline", deployment(2, 3, stuck), 0, false,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressDeadlineExceeded, "timed out progressing"},
		{"suspended", deployment(0, 3, appsv1.DeploymentStatus{ObservedGeneration: 3}), 0, true,
			metav1.ConditionTrue, analyticsv1alpha1.ReasonSuspended, "by design"},
		{"suspended, not observed yet", deployment(0, 4, appsv1.DeploymentStatus{ObservedGeneration: 3, Replicas: 2}), 0, true,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing, "not been observed"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, reason, message := deploymentAvailability(tt.d, tt.applied, tt.suspended)
			if status != tt.status || reason != tt.reason || !strings.Contains(message, tt.message) {
				t.Errorf("got %s/%s %q, want %s/%s containing %q", status, reason, message, tt.status, tt.reason, tt.message)
			}
		})
	}
}
