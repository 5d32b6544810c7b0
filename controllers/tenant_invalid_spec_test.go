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

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// spinningQuantity is a memory amount apimachinery's quantity parser
// spends more than 10 s on; the API server refuses it today.
const spinningQuantity = "1e-2147483648"

// withUnboundedMemoryLimit gives the AnalyticsTenant CRD, until the
// returned function runs (and after the test at the latest), the schema of
// spec.ingest.resources.limits.memory from before it was bounded, so a
// tenant can be stored as it could be then. It waits until the API server
// enforces each schema.
func withUnboundedMemoryLimit(t *testing.T) (restore func()) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	path := []string{"properties", "spec", "properties", "ingest", "properties", "resources", "properties", "limits", "properties", "memory"}
	crd := func() *unstructured.Unstructured {
		u := &unstructured.Unstructured{}
		u.SetGroupVersionKind(schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"})
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: "analyticstenants.analytics.millimetric.ai"}, u)).To(Succeed())
		return u
	}
	memorySchema := func(u *unstructured.Unstructured) map[string]any {
		versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
		s, _, _ := unstructured.NestedMap(versions[0].(map[string]any), append([]string{"schema", "openAPIV3Schema"}, path...)...)
		return s
	}
	setMemorySchema := func(s map[string]any) {
		g.Eventually(func() error {
			u := crd()
			versions, _, _ := unstructured.NestedSlice(u.Object, "spec", "versions")
			if err := unstructured.SetNestedMap(versions[0].(map[string]any), s, append([]string{"schema", "openAPIV3Schema"}, path...)...); err != nil {
				return err
			}
			if err := unstructured.SetNestedSlice(u.Object, versions, "spec", "versions"); err != nil {
				return err
			}
			return k8s.Update(ctx, u)
		}, wait, tick).Should(Succeed())
	}
	probe := &analyticsv1alpha1.AnalyticsTenant{
		ObjectMeta: metav1.ObjectMeta{Name: "schema-probe"},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{"probe.example.com"}, Ingest: &analyticsv1alpha1.IngestSpec{Resources: &analyticsv1alpha1.IngestResources{
			Limits: &analyticsv1alpha1.ComputeResources{Memory: spinningQuantity},
		}}},
	}
	accepted := func() bool { return k8s.Create(ctx, probe.DeepCopy(), client.DryRunAll) == nil }

	bounded := memorySchema(crd())
	unbounded := map[string]any{"x-kubernetes-int-or-string": true}
	setMemorySchema(unbounded)
	g.Eventually(accepted, wait, tick).Should(BeTrue(), "the API server still enforces the bounded schema")
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		setMemorySchema(bounded)
		g.Eventually(accepted, wait, tick).Should(BeFalse(), "the API server still enforces the unbounded schema")
	}
	t.Cleanup(restore)
	return restore
}

func TestATenantStoredWithAnUnboundedQuantityIsRefusedAndNeverParsed(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	restore := withUnboundedMemoryLimit(t)
	newTenant(t, "stored-spin", analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Resources: &analyticsv1alpha1.IngestResources{
		Limits: &analyticsv1alpha1.ComputeResources{Memory: spinningQuantity},
	}}})
	restore()

	// Refused at once, with the field and what to write instead; nothing
	// of it is made.
	g.Eventually(conditionOf("stored-spin", analyticsv1alpha1.ConditionReady), wait, tick).Should(And(
		haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonInvalidSpec),
		HaveField("Message", And(
			ContainSubstring("spec.ingest.resources.limits.memory: "+`"`+spinningQuantity+`" `+analyticsv1alpha1.QuantityMessage),
			ContainSubstring("stored before")))))
	g.Expect(conditionOf("stored-spin", analyticsv1alpha1.ConditionStorageReady)()).To(haveReady(metav1.ConditionUnknown, analyticsv1alpha1.ReasonInvalidSpec))
	g.Expect(getTenant("stored-spin").Status.ObservedGeneration).To(Equal(getTenant("stored-spin").Generation))
	// No retry fixes it, so GitOps is told at once: Stalled, kstatus Failed.
	g.Expect(conditionOf("stored-spin", analyticsv1alpha1.ConditionStalled)()).To(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonInvalidSpec))
	g.Expect(conditionOf("stored-spin", analyticsv1alpha1.ConditionReconciling)()).To(BeNil())
	g.Expect(kstatusOf("stored-spin")()).To(Equal(status.FailedStatus))
	g.Eventually(eventsAbout("stored-spin"), wait, tick).Should(ContainElement(And(
		HaveField("Reason", analyticsv1alpha1.ReasonInvalidSpec), HaveField("Type", corev1.EventTypeWarning))))
	g.Consistently(get(&corev1.Namespace{}, "", "tenant-stored-spin"), "2s", tick).Should(BeNil(), "a refused tenant's namespace was made")

	// The operator is not stuck on it: another tenant is reconciled.
	newTenant(t, "beside-spin", analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(conditionOf("beside-spin", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	// Corrected, it is reconciled like any other.
	updateTenant(t, "stored-spin", func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Ingest.Resources.Limits.Memory = "512Mi" })
	g.Eventually(conditionOf("stored-spin", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Expect(conditionOf("stored-spin", analyticsv1alpha1.ConditionStalled)()).To(BeNil(), "still Stalled once corrected")
	g.Expect(kstatusOf("stored-spin")()).To(Equal(status.InProgressStatus))
	g.Eventually(func() string {
		d := ingestDeployment("tenant-stored-spin")()
		if d == nil {
			return ""
		}
		return d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String()
	}, wait, tick).Should(Equal("512Mi"))
}
