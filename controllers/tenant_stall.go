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
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// stallingReasons are the reasons of a False condition that no retry
// resolves: only a person's change (to the tenant's spec, to the image or
// the nodes, or to what conflicts with the tenant) does. A tenant with one
// of them is Stalled, which kstatus reports as Failed.
var stallingReasons = map[string]bool{
	analyticsv1alpha1.ReasonInvalidSpec:              true,
	analyticsv1alpha1.ReasonNamespaceConflict:        true,
	analyticsv1alpha1.ReasonRoleConflict:             true,
	analyticsv1alpha1.ReasonRetainedDataMismatch:     true,
	analyticsv1alpha1.ReasonRetainedDataNotFound:     true,
	analyticsv1alpha1.ReasonImagePullFailed:          true,
	analyticsv1alpha1.ReasonUnschedulable:            true,
	analyticsv1alpha1.ReasonProgressDeadlineExceeded: true,
}

// ingestStallReasons are the stalling reasons of IngestAvailable, which no
// other code records an event for.
var ingestStallReasons = map[string]bool{
	analyticsv1alpha1.ReasonImagePullFailed:          true,
	analyticsv1alpha1.ReasonUnschedulable:            true,
	analyticsv1alpha1.ReasonProgressDeadlineExceeded: true,
}

// stalledCondition is Stalled True with the reason and message of the
// first condition (Ready first, then the parts) that is False for a
// stalling reason, or nil when none is.
func stalledCondition(conditions []metav1.Condition, generation int64) *metav1.Condition {
	for _, condType := range append([]string{analyticsv1alpha1.ConditionReady}, partConditions...) {
		c := meta.FindStatusCondition(conditions, condType)
		if c == nil || c.Status != metav1.ConditionFalse || !stallingReasons[c.Reason] {
			continue
		}
		message := c.Message
		if condType != analyticsv1alpha1.ConditionReady {
			message = condType + ": " + message
		}
		return &metav1.Condition{
			Type: analyticsv1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: c.Reason,
			Message: message, ObservedGeneration: generation,
		}
	}
	return nil
}

// podStallGrace is how long an ingest pod may wait for its image or for a
// node before the tenant is Stalled: long enough for a registry or an
// autoscaled node pool to catch up, short of the Deployment's progress
// deadline (10 minutes), which would say the same thing with less detail.
const podStallGrace = 5 * time.Minute

// imagePullFailures are the kubelet's waiting reasons of a container whose
// image cannot be had.
var imagePullFailures = map[string]bool{
	"ErrImagePull":      true,
	"ImagePullBackOff":  true,
	"InvalidImageName":  true,
	"ErrImageNeverPull": true,
}

// podStall is why a pod cannot start that will not resolve by waiting: an
// image that does not pull, or no node to run on, for longer than
// podStallGrace. It returns the reason and message once the grace is past;
// before, an empty reason and how long is left of the grace (0 when the
// pod is not stuck at all). The grace runs from the pod's latest condition
// change (scheduled, turned unready), or its creation when it has none, so
// a pod that ran for weeks and then fails to pull its image again gets the
// whole grace too.
func podStall(pod *corev1.Pod, now time.Time) (reason, message string, left time.Duration) {
	var since time.Time
	for _, c := range pod.Status.Conditions {
		if c.LastTransitionTime.After(since) {
			since = c.LastTransitionTime.Time
		}
	}
	if since.IsZero() {
		since = pod.CreationTimestamp.Time
	}
	left = max(since.Add(podStallGrace).Sub(now), time.Nanosecond)
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
			if now.Sub(since) < podStallGrace {
				return "", "", left
			}
			return analyticsv1alpha1.ReasonUnschedulable, fmt.Sprintf(
				"ingest pod %s has found no node for %s: %s (its node selector and tolerations are the StorageRegion's spec.placement)",
				pod.Name, now.Sub(since).Round(time.Second), c.Message), 0
		}
	}
	statuses := append(append([]corev1.ContainerStatus{}, pod.Status.InitContainerStatuses...), pod.Status.ContainerStatuses...)
	for _, cs := range statuses {
		w := cs.State.Waiting
		if w == nil || !imagePullFailures[w.Reason] {
			continue
		}
		if now.Sub(since) < podStallGrace {
			return "", "", left
		}
		return analyticsv1alpha1.ReasonImagePullFailed, fmt.Sprintf(
			"ingest pod %s has not pulled image %q for %s: %s: %s (the image is spec.ingest.image or the operator's --ingest-image)",
			pod.Name, cs.Image, now.Sub(since).Round(time.Second), w.Reason, w.Message), 0
	}
	return "", "", 0
}

// ingestPodsStall looks at the tenant's ingest pods, read uncached (pods
// are not watched or cached: that would hold every pod of every tenant in
// memory; this runs only while ingest is not available). It returns the
// first pod's stall, or how long until the grace of the earliest stuck pod
// ends (0 when none is stuck), when the reconcile should look again: a pod
// stuck for good changes nothing the operator watches.
func (r *TenantReconciler) ingestPodsStall(ctx context.Context, namespace string, tenant string) (reason, message string, recheck time.Duration, err error) {
	if r.APIReader == nil {
		return "", "", 0, nil
	}
	var pods corev1.PodList
	if err := r.APIReader.List(ctx, &pods, client.InNamespace(namespace), client.MatchingLabels{
		render.LabelTenant: tenant, render.LabelComponent: render.ComponentIngest,
	}); err != nil {
		return "", "", 0, fmt.Errorf("listing the ingest pods of %s: %w", namespace, err)
	}
	now := time.Now()
	for i := range pods.Items {
		if !pods.Items[i].DeletionTimestamp.IsZero() {
			continue
		}
		reason, message, left := podStall(&pods.Items[i], now)
		if reason != "" {
			return reason, message, 0, nil
		}
		if left > 0 && (recheck == 0 || left < recheck) {
			recheck = left
		}
	}
	return "", "", recheck, nil
}
