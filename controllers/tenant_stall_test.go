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

package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// The kubelet, the scheduler and the Deployment controller do not run in
// envtest; these tests write what they would (a pod's status, the
// Deployment's), as the tests are about what the operator makes of it.

// startIngestRollout plays the Deployment controller: the tenant's
// Deployment has observed its generation and runs one pod of the latest
// template, not available.
func startIngestRollout(t *testing.T, ns string) *appsv1.Deployment {
	t.Helper()
	g := NewWithT(t)
	d := &appsv1.Deployment{}
	g.Eventually(func() error {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.IngestName}, d); err != nil {
			return err
		}
		n := ptr.Deref(d.Spec.Replicas, 1)
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: n, UpdatedReplicas: n}
		return k8s.Status().Update(context.Background(), d)
	}, wait, tick).Should(Succeed())
	return d
}

// ingestPod creates an ingest pod of the Deployment's template, with the
// status the kubelet or the scheduler would write.
func ingestPod(t *testing.T, d *appsv1.Deployment, name string, podStatus corev1.PodStatus) {
	t.Helper()
	g := NewWithT(t)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: d.Namespace, Name: name, Labels: d.Spec.Template.Labels},
		Spec:       *d.Spec.Template.Spec.DeepCopy(),
	}
	g.Expect(k8s.Create(context.Background(), pod)).To(Succeed())
	pod.Status = podStatus
	g.Expect(k8s.Status().Update(context.Background(), pod)).To(Succeed())
}

// setPodStatus rewrites a pod's status, as the kubelet would.
func setPodStatus(t *testing.T, ns, name string, podStatus corev1.PodStatus) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		pod := &corev1.Pod{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, pod); err != nil {
			return err
		}
		pod.Status = podStatus
		return k8s.Status().Update(context.Background(), pod)
	}, wait, tick).Should(Succeed())
}

// pullingFailsSince is a scheduled pod whose ingest container cannot pull
// its image, its conditions last changed at since.
func pullingFailsSince(since time.Time, image string) corev1.PodStatus {
	at := metav1.NewTime(since)
	return corev1.PodStatus{
		Phase: corev1.PodPending,
		Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: at},
			{Type: corev1.PodReady, Status: corev1.ConditionFalse, Reason: "ContainersNotReady", LastTransitionTime: at},
		},
		ContainerStatuses: []corev1.ContainerStatus{{
			Name: "ingest", Image: image,
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{
				Reason: "ImagePullBackOff", Message: `Back-off pulling image "` + image + `"`,
			}},
		}},
	}
}

func TestAnIngestImageThatNeverPullsStallsTheTenantAfterTheGrace(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	const image = "registry.example.com/ingest:typo"
	newTenant(t, "bad-image", analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Image: image}})
	ns := "tenant-bad-image"
	g.Eventually(get(&appsv1.Deployment{}, ns, render.IngestName), wait, tick).ShouldNot(BeNil())
	d := startIngestRollout(t, ns)

	// Within the grace a registry may still catch up: InProgress.
	ingestPod(t, d, "ingest-1", pullingFailsSince(time.Now(), image))
	g.Eventually(conditionOf("bad-image", analyticsv1alpha1.ConditionIngestAvailable), wait, tick).
		Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonDeploymentUnavailable))
	g.Consistently(conditionOf("bad-image", analyticsv1alpha1.ConditionStalled), "2s", tick).Should(BeNil())
	g.Expect(kstatusOf("bad-image")()).To(Equal(status.InProgressStatus))

	// Past it, Failed, with the image and the kubelet's words.
	setPodStatus(t, ns, "ingest-1", pullingFailsSince(time.Now().Add(-10*time.Minute), image))
	// Nothing the operator watches changed: the reconcile that looks again
	// is the one it requeued for the end of the grace (5 minutes), brought
	// forward here as a person would (the reconcile-requested annotation).
	requestReconcile(t, "bad-image")
	g.Eventually(conditionOf("bad-image", analyticsv1alpha1.ConditionStalled), wait, tick).Should(And(
		haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonImagePullFailed),
		HaveField("Message", And(ContainSubstring(image), ContainSubstring("ImagePullBackOff"), ContainSubstring("ingest-1")))))
	g.Expect(conditionOf("bad-image", analyticsv1alpha1.ConditionReady)()).To(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonImagePullFailed))
	g.Expect(conditionOf("bad-image", analyticsv1alpha1.ConditionReconciling)()).To(BeNil())
	g.Expect(kstatusOf("bad-image")()).To(Equal(status.FailedStatus))
	g.Eventually(eventsAbout("bad-image"), wait, tick).Should(ContainElement(And(
		HaveField("Reason", analyticsv1alpha1.ReasonImagePullFailed), HaveField("Type", corev1.EventTypeWarning))))

	// The image pulls after all: no longer Stalled, and Current once ready.
	g.Expect(k8s.Delete(context.Background(), &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "ingest-1"}},
		client.GracePeriodSeconds(0))).To(Succeed())
	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("bad-image", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Expect(conditionOf("bad-image", analyticsv1alpha1.ConditionStalled)()).To(BeNil())
	g.Expect(kstatusOf("bad-image")()).To(Equal(status.CurrentStatus))
}

func TestIngestPodsNoNodeTakesStallTheTenantAfterTheGrace(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	newTenant(t, "no-node", analyticsv1alpha1.AnalyticsTenantSpec{})
	ns := "tenant-no-node"
	g.Eventually(get(&appsv1.Deployment{}, ns, render.IngestName), wait, tick).ShouldNot(BeNil())
	d := startIngestRollout(t, ns)
	unschedulable := func(since time.Time) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{
			Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: corev1.PodReasonUnschedulable,
			Message:            "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector.",
			LastTransitionTime: metav1.NewTime(since),
		}}}
	}

	ingestPod(t, d, "ingest-1", unschedulable(time.Now()))
	g.Eventually(conditionOf("no-node", analyticsv1alpha1.ConditionIngestAvailable), wait, tick).
		Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonDeploymentUnavailable))
	g.Consistently(conditionOf("no-node", analyticsv1alpha1.ConditionStalled), "2s", tick).Should(BeNil())
	g.Expect(kstatusOf("no-node")()).To(Equal(status.InProgressStatus))

	setPodStatus(t, ns, "ingest-1", unschedulable(time.Now().Add(-10*time.Minute)))
	requestReconcile(t, "no-node")
	g.Eventually(conditionOf("no-node", analyticsv1alpha1.ConditionStalled), wait, tick).Should(And(
		haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonUnschedulable),
		HaveField("Message", And(ContainSubstring("didn't match Pod's node affinity/selector"), ContainSubstring("spec.placement")))))
	g.Expect(kstatusOf("no-node")()).To(Equal(status.FailedStatus))
}

func TestAnIngestRolloutPastItsProgressDeadlineStallsTheTenant(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	newTenant(t, "deadline", analyticsv1alpha1.AnalyticsTenantSpec{})
	ns := "tenant-deadline"
	g.Eventually(get(&appsv1.Deployment{}, ns, render.IngestName), wait, tick).ShouldNot(BeNil())
	d := startIngestRollout(t, ns)
	g.Eventually(kstatusOf("deadline"), wait, tick).Should(Equal(status.InProgressStatus))

	g.Eventually(func() error {
		if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(d), d); err != nil {
			return err
		}
		d.Status.Conditions = []appsv1.DeploymentCondition{{
			Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse, Reason: "ProgressDeadlineExceeded",
			Message: `ReplicaSet "ingest-5c7d" has timed out progressing.`,
		}}
		return k8s.Status().Update(context.Background(), d)
	}, wait, tick).Should(Succeed())
	g.Eventually(conditionOf("deadline", analyticsv1alpha1.ConditionStalled), wait, tick).Should(And(
		haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonProgressDeadlineExceeded),
		HaveField("Message", ContainSubstring("has timed out progressing"))))
	g.Expect(kstatusOf("deadline")()).To(Equal(status.FailedStatus))
}

func TestANewTenantIsInProgressBeforeTheOperatorSeesIt(t *testing.T) {
	g := NewWithT(t)
	// No operator of these tests reconciles this shard.
	newTenant(t, "unseen", analyticsv1alpha1.AnalyticsTenantSpec{}, shardLabel, "nobody")
	tenant := getTenant("unseen")
	g.Expect(tenant.Status.ObservedGeneration).To(BeEquivalentTo(-1))
	g.Expect(kstatusOf("unseen")()).To(Equal(status.InProgressStatus))
}
