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

package render

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strconv"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The retention window: every tenant's retention runs once a day at a
// minute between RetentionWindowStartHour:00 and
// RetentionWindowStartHour+RetentionWindowHours:00 in RetentionTimeZone,
// when traffic is low, at a time spread per tenant so the region's database
// does not see every tenant's run at once.
const (
	RetentionWindowStartHour = 1
	RetentionWindowHours     = 5
	RetentionTimeZone        = "Etc/UTC"
)

// Bounds of one retention run.
const (
	// RetentionDeadlineSeconds bounds a Job's run, and how late a missed
	// schedule may still start.
	RetentionDeadlineSeconds int64 = 3600
	// RetentionBackoffLimit is how many times a failed run is retried.
	RetentionBackoffLimit int32 = 3
	// RetentionTTLSeconds keeps a finished Job, failed ones in particular,
	// visible for a day.
	RetentionTTLSeconds int32 = 86400
	// RetentionHistoryLimit is how many succeeded and how many failed Jobs
	// the CronJob keeps.
	RetentionHistoryLimit int32 = 3
)

// retentionExitUsage is the retention subcommand's exit code for bad flags
// or environment (retention.ExitUsage): retrying cannot fix it.
const retentionExitUsage = 2

// RetentionCommand is the retention container's command: the operator's
// binary in retention mode with the tenant's window.
func RetentionCommand(retentionDays int32) []string {
	return []string{"/manager", "retention", "--retention-days", strconv.Itoa(int(retentionDays))}
}

// RetentionSchedule is the daily cron schedule of a tenant's retention, in
// RetentionTimeZone: a minute and an hour in the retention window chosen by
// a hash of the tenant's name, so it never changes for a tenant and tenants
// are spread over the window's 300 minutes. For example "17 3 * * *".
func RetentionSchedule(tenantName string) string {
	sum := sha256.Sum256([]byte(tenantName))
	n := binary.BigEndian.Uint64(sum[:8])
	minute := n % 60
	hour := RetentionWindowStartHour + (n/60)%RetentionWindowHours
	return fmt.Sprintf("%d %d * * *", minute, hour)
}

// retentionResources are modest: a run is a few SQL statements.
func retentionResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("50m"),
			corev1.ResourceMemory: resource.MustParse("64Mi"),
		},
		Limits: corev1.ResourceList{
			// A CPU limit too, so the namespace's quota can bound
			// limits.cpu whenever ingest sets one.
			corev1.ResourceCPU:    resource.MustParse("500m"),
			corev1.ResourceMemory: resource.MustParse("256Mi"),
		},
	}
}

// RetentionServiceAccount is the identity of the retention pods. Its token
// is never mounted: retention talks only to the database.
func RetentionServiceAccount(t Tenant) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   objectMeta(t, RetentionName, componentLabels(t, ComponentRetention)),
		AutomountServiceAccountToken: ptr.To(false),
	}
}

// RetentionCronJob runs the operator's image in retention mode once a day
// (RetentionSchedule), with the tenant's effective window and the schema
// owner's credentials from the storage Secret (StorageSecretName), the only
// workload that gets them. Runs never overlap and are never paused, not
// even for a suspended tenant: suspending pauses collection, while the
// policy deletes raw events after the plan's window whatever the account's
// state. A failed run is retried up to RetentionBackoffLimit
// times, except when it failed on bad usage (exit code 2), which retrying
// cannot fix, and evictions do not count as failures. The pods are
// restricted like ingest's and placed on the region's nodes.
//
// The region's CA certificate, when the storage Secret has one, is mounted
// from an optional volume at StorageCADir; PGSSLROOTCERT points at it only
// when Tenant.StorageCA says it is there. The pod template carries the
// storage Secret's CredentialsHash, so the next Job after new credentials
// is visibly made from a new template.
func RetentionCronJob(t Tenant) *batchv1.CronJob {
	labels := componentLabels(t, ComponentRetention)
	nodeSelector, tolerations := placement(t)
	return &batchv1.CronJob{
		TypeMeta:   metav1.TypeMeta{APIVersion: "batch/v1", Kind: "CronJob"},
		ObjectMeta: objectMeta(t, RetentionName, labels),
		Spec: batchv1.CronJobSpec{
			Schedule:                   RetentionSchedule(t.Object.Name),
			TimeZone:                   ptr.To(RetentionTimeZone),
			StartingDeadlineSeconds:    ptr.To(RetentionDeadlineSeconds),
			ConcurrencyPolicy:          batchv1.ForbidConcurrent,
			Suspend:                    ptr.To(false),
			SuccessfulJobsHistoryLimit: ptr.To(RetentionHistoryLimit),
			FailedJobsHistoryLimit:     ptr.To(RetentionHistoryLimit),
			JobTemplate: batchv1.JobTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: componentLabels(t, ComponentRetention)},
				Spec: batchv1.JobSpec{
					BackoffLimit:            ptr.To(RetentionBackoffLimit),
					ActiveDeadlineSeconds:   ptr.To(RetentionDeadlineSeconds),
					TTLSecondsAfterFinished: ptr.To(RetentionTTLSeconds),
					PodFailurePolicy: &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
						{
							Action: batchv1.PodFailurePolicyActionFailJob,
							OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{
								ContainerName: ptr.To(RetentionName),
								Operator:      batchv1.PodFailurePolicyOnExitCodesOpIn,
								Values:        []int32{retentionExitUsage},
							},
						},
						{
							Action: batchv1.PodFailurePolicyActionIgnore,
							OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{
								Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
							}},
						},
					}},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{
							Labels:      componentLabels(t, ComponentRetention),
							Annotations: podAnnotations(AnnotationCredentialsHash, t.StorageCredentialsHash),
						},
						Spec: corev1.PodSpec{
							// Never, as a pod failure policy requires: the
							// Job makes a new pod for each retry.
							RestartPolicy:                corev1.RestartPolicyNever,
							ServiceAccountName:           RetentionName,
							AutomountServiceAccountToken: ptr.To(false),
							EnableServiceLinks:           ptr.To(false),
							ImagePullSecrets:             imagePullSecrets(t),
							SecurityContext:              podSecurityContext(),
							NodeSelector:                 nodeSelector,
							Tolerations:                  tolerations,
							Containers: []corev1.Container{{
								Name:    RetentionName,
								Image:   t.Settings.OperatorImage,
								Command: RetentionCommand(t.Spec.RetentionDays),
								Env:     storageEnv(t, StorageSecretName),
								// The run's error is its last stderr line:
								// show it in the pod's status.
								TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
								Resources:                retentionResources(),
								SecurityContext:          containerSecurityContext(),
								VolumeMounts:             []corev1.VolumeMount{storageCAVolumeMount()},
							}},
							Volumes: []corev1.Volume{storageCAVolume(StorageSecretName)},
						},
					},
				},
			},
		},
	}
}
