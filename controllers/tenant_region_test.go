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
	"testing"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// A StorageRegion that exists but has not been checked yet (every region
// right after the operator starts) is waited for: the tenant is
// Progressing, with no RegionUnavailable warning. One that was checked and
// failed is RegionUnavailable, with the warning. The API server is faked:
// what is tested is the verdict and the event, and the timing of a real
// region check would make the first case a race.
func TestARegionNotCheckedYetIsWaitedForWithoutAWarning(t *testing.T) {
	for _, tt := range []struct {
		name   string
		ready  *metav1.Condition
		reason string
		events int
	}{
		{"not checked yet", nil, analyticsv1alpha1.ReasonProgressing, 0},
		{"checked and failing", &metav1.Condition{
			Type: analyticsv1alpha1.ConditionReady, Status: metav1.ConditionFalse,
			Reason: analyticsv1alpha1.ReasonConnectionFailed, Message: "connection refused",
		}, analyticsv1alpha1.ReasonRegionUnavailable, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ctx := context.Background()
			scheme := runtime.NewScheme()
			g.Expect(analyticsv1alpha1.AddToScheme(scheme)).To(Succeed())
			region := &analyticsv1alpha1.StorageRegion{
				ObjectMeta: metav1.ObjectMeta{Name: "eu"},
				Spec:       analyticsv1alpha1.StorageRegionSpec{Region: analyticsv1alpha1.RegionEU},
			}
			if tt.ready != nil {
				meta.SetStatusCondition(&region.Status.Conditions, *tt.ready)
			}
			tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "acme", Generation: 1}}
			c := fake.NewClientBuilder().WithScheme(scheme).
				WithObjects(region, tenant).WithStatusSubresource(tenant).Build()
			recorder := events.NewFakeRecorder(10)
			r := &TenantReconciler{Client: c, Recorder: recorder, Settings: render.DefaultSettings()}

			s := newTenantScope(tenant, r.Settings)
			_, err := r.resolveRegion(ctx, s)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(s.regionUnavailable).To(BeTrue(), "the tenant must wait for its region")
			g.Expect(s.region).NotTo(BeNil(), "the only StorageRegion of the region is known, Ready or not")
			g.Expect(r.updateStatus(ctx, s, nil)).To(Succeed())

			got := &analyticsv1alpha1.AnalyticsTenant{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tenant), got)).To(Succeed())
			ready := meta.FindStatusCondition(got.Status.Conditions, analyticsv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(metav1.ConditionFalse))
			g.Expect(ready.Reason).To(Equal(tt.reason))
			g.Expect(ready.Message).To(ContainSubstring("StorageRegion eu"))
			g.Expect(meta.IsStatusConditionTrue(got.Status.Conditions, analyticsv1alpha1.ConditionReconciling)).To(BeTrue())
			g.Expect(recorder.Events).To(HaveLen(tt.events))
		})
	}
}
