//go:build e2e

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

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// The tests of this file hold Ready to what really runs, with the real
// Deployment, ReplicaSet and autoscaling controllers of the local cluster.

// changeTenant changes a tenant's spec, retrying on conflicts with the
// operator's status writes, and returns the tenant's new generation.
func changeTenant(t testing.TB, name string, change func(*analyticsv1alpha1.AnalyticsTenantSpec)) int64 {
	t.Helper()
	ctx := context.Background()
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	NewWithT(t).Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, tenant); err != nil {
			return err
		}
		change(&tenant.Spec)
		return k8s.Update(ctx, tenant)
	}, wait, tick).Should(Succeed())
	return tenant.Generation
}

// ingestOf reads a tenant's ingest Deployment.
func ingestOf(t testing.TB, ns string) *appsv1.Deployment {
	t.Helper()
	d := &appsv1.Deployment{}
	NewWithT(t).Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: render.IngestName}, d)).To(Succeed())
	return d
}

// ingestPods lists a tenant's ingest pods that are not being deleted.
func ingestPods(t testing.TB, ns string) []corev1.Pod {
	t.Helper()
	pods := &corev1.PodList{}
	NewWithT(t).Expect(k8s.List(context.Background(), pods, client.InNamespace(ns),
		client.MatchingLabels{render.LabelComponent: render.ComponentIngest})).To(Succeed())
	var out []corev1.Pod
	for _, p := range pods.Items {
		if p.DeletionTimestamp.IsZero() {
			out = append(out, p)
		}
	}
	return out
}

// readyAt says whether the tenant is Ready at exactly generation.
func readyAt(name string, generation int64) func() string {
	return func() string {
		tenant := &analyticsv1alpha1.AnalyticsTenant{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tenant); err != nil {
			return err.Error()
		}
		return fmt.Sprintf("%s at generation %d of %d", readyCondition(name), tenant.Status.ObservedGeneration, generation)
	}
}

func TestAfterAnImageChangeATenantIsNotReadyUntilItsNewPodsAreAvailable(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	const name, ns = "e2e-rollout", "tenant-e2e-rollout"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	// With every node cordoned the new ReplicaSet's pod stays Pending,
	// while the old pods go on serving (maxUnavailable 0).
	cordon(t, true)
	t.Cleanup(func() { cordon(t, false) })
	generation := changeTenant(t, name, func(s *analyticsv1alpha1.AnalyticsTenantSpec) {
		s.Ingest = &analyticsv1alpha1.IngestSpec{Image: "ghcr.io/millimetric/ingest:e2e-next"}
	})
	notReady := fmt.Sprintf("False/%s at generation %d of %d", analyticsv1alpha1.ReasonProgressing, generation, generation)
	g.Eventually(readyAt(name, generation), wait, tick).Should(Equal(notReady))
	g.Eventually(func() string {
		d := ingestOf(t, ns)
		return fmt.Sprintf("observed %t, updated %d, available %d", d.Status.ObservedGeneration == d.Generation, d.Status.UpdatedReplicas, d.Status.AvailableReplicas)
	}, wait, tick).Should(Equal(fmt.Sprintf("observed true, updated 1, available %d", analyticsv1alpha1.DefaultReplicas)),
		"the Deployment has created one new pod (maxSurge 1), and the old ones are still available (maxUnavailable 0)")
	g.Consistently(readyAt(name, generation), 5*time.Second, tick).Should(Equal(notReady),
		"Ready at the new generation while only the old template's pod is available")

	cordon(t, false)
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	d := ingestOf(t, ns)
	g.Expect(d.Status.UpdatedReplicas).To(BeEquivalentTo(analyticsv1alpha1.DefaultReplicas))
	g.Expect(d.Status.Replicas).To(BeEquivalentTo(analyticsv1alpha1.DefaultReplicas), "Ready while an old pod was still there")
	for _, p := range ingestPods(t, ns) {
		g.Expect(p.Spec.Containers[0].Image).To(Equal("ghcr.io/millimetric/ingest:e2e-next"))
	}
}

func TestAnAutoscaledTenantSuspendedAndResumedRunsItsMinimumAgain(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-resume", "tenant-e2e-resume"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{
		Autoscaling: &analyticsv1alpha1.AutoscalingSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 4},
	}})
	available := func() int32 { return ingestOf(t, ns).Status.AvailableReplicas }
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	g.Expect(available()).To(BeEquivalentTo(2))

	changeTenant(t, name, func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Suspend = true })
	g.Eventually(func() int { return len(ingestPods(t, ns)) }, wait, tick).Should(BeZero())
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue(), "a suspended tenant is Ready by design")
	g.Expect(conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable)).To(Equal("True/" + analyticsv1alpha1.ReasonSuspended))

	// Resumed: the autoscaler takes over from the minimum, never from 0 or 1.
	changeTenant(t, name, func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Suspend = false })
	seen := map[int32]bool{}
	g.Eventually(func() bool {
		d := ingestOf(t, ns)
		seen[ptr.Deref(d.Spec.Replicas, 1)] = true
		return isReady(name) && d.Status.AvailableReplicas == 2
	}, wait, tick).Should(BeTrue(), "resumed at the autoscaler's minimum of 2 pods, and Ready")
	g.Expect(seen).NotTo(HaveKey(int32(1)), "the Deployment was left at 1 replica while the autoscaler took over")
	hpa := &autoscalingv2.HorizontalPodAutoscaler{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestName}, hpa)).To(Succeed())
	g.Consistently(available, 3*time.Second, tick).Should(BeEquivalentTo(2))
}

func TestDeletingTheIngestCredentialsRollsIngestAndTheTenantIsReadyAgain(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-rotate", "tenant-e2e-rotate"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	hash := func() string { return ingestOf(t, ns).Spec.Template.Annotations[render.AnnotationCredentialsHash] }
	before := hash()
	g.Expect(before).NotTo(BeEmpty())
	var old []string
	for _, p := range ingestPods(t, ns) {
		old = append(old, p.Name)
	}
	g.Expect(old).NotTo(BeEmpty())

	g.Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.IngestSecretName}})).To(Succeed())
	g.Eventually(hash, wait, tick).ShouldNot(Equal(before), "new credentials change the pod template")
	g.Eventually(func() string {
		var names []string
		for _, p := range ingestPods(t, ns) {
			names = append(names, p.Name)
		}
		return strings.Join(names, ",")
	}, wait, tick).ShouldNot(ContainSubstring(old[0]), "the pods holding the old password are replaced")
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	d := ingestOf(t, ns)
	g.Expect(d.Status.UpdatedReplicas).To(Equal(d.Status.Replicas), "no pod of the old template is left")
}
