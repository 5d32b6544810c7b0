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
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// deletionAllowedOf reads a StorageRegion's DeletionAllowed condition, nil
// when it has none or is gone.
func deletionAllowedOf(name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		sr := &analyticsv1alpha1.StorageRegion{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, sr); err != nil {
			return nil
		}
		return meta.FindStatusCondition(sr.Status.Conditions, analyticsv1alpha1.ConditionDeletionAllowed)
	}
}

func regionGone(name string) func() bool {
	return func() bool {
		return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKey{Name: name}, &analyticsv1alpha1.StorageRegion{}))
	}
}

// endHoldAfter removes the record of tenant's hold from the US database
// after the test, once its cleanup has purged the schema: Purge leaves the
// record to the sweep, and a record would hold back the region's deletion.
func endHoldAfter(t *testing.T, tenant string) {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pg.Connect(ctx, "US")
		if err != nil {
			t.Error(err)
			return
		}
		defer func() { _ = conn.Close(ctx) }()
		if _, err := conn.Exec(ctx, `DELETE FROM `+storage.OperatorSchema+`.retained_tenants WHERE tenant = $1`, tenant); err != nil {
			t.Error(err)
		}
	})
}

func TestAStorageRegionIsNotDeletedWhileItServesTenantsOrHoldsRetainedData(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)

	live := newTenant(t, "region-served", analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	g.Eventually(conditionOf(live.Name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	const held = "region-held"
	store := provisionedInUS(t, held)
	hold := 3 * 24 * time.Hour
	g.Expect(store.Retain(ctx, held, deletedUID, time.Now().UTC().Truncate(time.Second), hold, 30)).To(Succeed())

	g.Expect(k8s.Delete(ctx, getRegion("us"))).To(Succeed())
	g.Eventually(deletionAllowedOf("us"), wait, tick).Should(And(Not(BeNil()),
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRegionInUse),
		HaveField("Message", And(
			ContainSubstring("serves 1 tenant (region-served)"),
			ContainSubstring("holds the retained data of 1 deleted tenant (region-held)"),
			ContainSubstring("delete those tenants"), ContainSubstring("wait for the holds to end")))))
	g.Eventually(eventsAbout("us"), wait, tick).Should(ContainElement(And(
		HaveField("Type", corev1.EventTypeWarning), HaveField("Reason", analyticsv1alpha1.ReasonRegionInUse),
		HaveField("Note", ContainSubstring("1 tenant (region-served)")))))
	g.Consistently(regionGone("us"), 2*time.Second, tick).Should(BeFalse(), "a region that serves a tenant and holds data was deleted")

	// The tenant is purged through the region being deleted, which still
	// holds the retained tenant's data.
	deleteTenant(t, live)
	left, err := store.Verify(ctx, live.Name)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left.Empty()).To(BeTrue(), "the tenant deleted while its region was being deleted: %s", left)
	// Its deletion re-checks the region (no annotation needed).
	g.Eventually(deletionAllowedOf("us"), wait, tick).Should(HaveField("Message", Not(ContainSubstring("region-served"))))
	g.Expect(deletionAllowedOf("us")()).To(HaveField("Message", ContainSubstring("1 deleted tenant (region-held)")))
	g.Consistently(regionGone("us"), 2*time.Second, tick).Should(BeFalse(), "a region that holds retained data was deleted")

	// The hold ends: the region's sweep purges it, and then the region goes.
	regionClock.move(t, 4*24*time.Hour)
	recheck(t, "us")
	g.Eventually(regionGone("us"), wait, tick).Should(BeTrue(), "the region is still there once nothing is left")
	left, err = store.Verify(ctx, held)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left.Empty()).To(BeTrue(), "the held tenant the region swept before going: %s", left)
}

func TestAStorageRegionWhoseDatabaseCannotBeReachedIsHeldUntilItCanBeChecked(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	proxy := pg.NewProxy(t)
	t.Cleanup(proxy.Restore)
	adminSecret(t, "unchecked-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	sr := storageRegion(t, "unchecked", analyticsv1alpha1.RegionUS, proxy.Port, "unchecked-admin")
	g.Eventually(func() *int32 { return getRegion("unchecked").Status.Tenants }, wait, tick).ShouldNot(BeNil())

	proxy.Cut()
	g.Expect(k8s.Delete(ctx, sr)).To(Succeed())
	g.Eventually(deletionAllowedOf("unchecked"), wait, tick).Should(And(Not(BeNil()),
		HaveField("Status", metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRegionUnchecked),
		HaveField("Message", And(ContainSubstring("cannot be read"), ContainSubstring(analyticsv1alpha1.RegionFinalizer)))))
	g.Consistently(regionGone("unchecked"), 2*time.Second, tick).Should(BeFalse(), "a region whose database could not be checked was deleted")

	proxy.Restore()
	g.Eventually(regionGone("unchecked"), wait, tick).Should(BeTrue(), "the region is still there once it could be checked")
}

// getRegion reads a StorageRegion; an empty one when it cannot.
func getRegion(name string) *analyticsv1alpha1.StorageRegion {
	sr := &analyticsv1alpha1.StorageRegion{}
	_ = k8s.Get(context.Background(), client.ObjectKey{Name: name}, sr)
	return sr
}
