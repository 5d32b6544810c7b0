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
	"fmt"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// ownerCredentials are the tenant's schema owner's credentials, from its
// storage Secret, for the test PostgreSQL without TLS.
func ownerCredentials(g Gomega, ns, region string) storage.Credentials {
	secret := get(&corev1.Secret{}, ns, render.StorageSecretName)()
	g.Expect(secret).NotTo(BeNil())
	return storage.Credentials{Host: "127.0.0.1", Port: int32(pg.Port), Database: pg.Databases[region],
		SSLMode: storage.SSLModeDisable, Schema: string(secret.Data["schema"]),
		Username: string(secret.Data["username"]), Password: string(secret.Data["password"])}
}

// heldRows counts the rows of the tenant's tables, as the administrator.
func heldRows(g Gomega, store storage.Store, tenant string) int64 {
	left, err := store.Verify(context.Background(), tenant)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left.Schema).To(BeTrue(), "the schema of %s is gone", tenant)
	return left.Rows
}

func TestRetainedDataGoesOnlyToATenantThatNamesTheDeletedTenantsUID(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const name, ns = "held", "tenant-held"
	spec := analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS, Domains: []analyticsv1alpha1.Domain{"held.example.com"},
		DeletionPolicy: analyticsv1alpha1.DeletionPolicyRetain, RetainDays: ptr.To[int32](3)}
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	g.Expect(k8s.Create(ctx, tenant)).To(Succeed())
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Eventually(func() *corev1.Secret { return get(&corev1.Secret{}, ns, render.StorageSecretName)() }, wait, tick).ShouldNot(BeNil())
	uid := string(tenant.UID)
	creds := ownerCredentials(g, ns, "US")
	conn, err := storage.ConnectTenant(ctx, creds)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.events (received_at, event_name) VALUES (now(), 'pageview')`)
	g.Expect(err).NotTo(HaveOccurred())
	_ = conn.Close(ctx)

	deleteTenant(t, tenant)
	g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(And(
		HaveField("Reason", "Retained"), HaveField("Note", And(ContainSubstring("can no longer log in"), ContainSubstring("adoptRetainedFrom is this tenant's uid, "+uid))))))
	_, err = storage.ConnectTenant(ctx, creds)
	g.Expect(err).To(HaveOccurred(), "the retained tenant's owner can still log in after deletion")
	store, err := storage.Open(ctx, pg.AdminConfig("US"))
	g.Expect(err).NotTo(HaveOccurred())
	// Closed after the purge: a deferred Close would run before it.
	t.Cleanup(store.Close)
	t.Cleanup(func() {
		if err := store.Purge(ctx, name); err != nil {
			t.Errorf("purging %s: %v", name, err)
		}
	})
	endHoldAfter(t, name)
	g.Expect(store.Hold(ctx, name)).To(And(HaveField("UID", uid), HaveField("Hold()", 3*24*time.Hour)))
	g.Expect(heldRows(g, store, name)).To(BeEquivalentTo(1))

	t.Run("a tenant of the same name that does not ask for the data gets none of it and says why", func(t *testing.T) {
		g := NewWithT(t)
		other := newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
		g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(And(
			haveStatus(metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataExists),
			HaveField("Message", And(ContainSubstring("another AnalyticsTenant also named held (uid "+uid+")"),
				ContainSubstring("held until "), ContainSubstring("gets none of it"),
				ContainSubstring("set spec.storage.adoptRetainedFrom: "+uid)))))
		g.Expect(conditionOf(name, analyticsv1alpha1.ConditionReady)()).To(And(
			haveStatus(metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataExists)))
		g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(And(
			HaveField("Type", corev1.EventTypeWarning), HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataExists))))
		// envtest has no garbage collector: the deleted tenant's namespace
		// and Secrets stay. None was written for this tenant.
		for _, name := range []string{render.StorageSecretName, render.IngestSecretName} {
			if secret := get(&corev1.Secret{}, ns, name)(); secret != nil {
				g.Expect(secret.OwnerReferences).To(ConsistOf(HaveField("UID", tenant.UID)),
					"Secret %s was written for the tenant that did not ask for the held data", name)
			}
		}
		g.Expect(getTenant(name).Status.Storage.Schema).To(BeEmpty())
		g.Expect(store.Hold(ctx, name)).To(HaveField("UID", uid), "the hold is kept")
		_, err := storage.ConnectTenant(ctx, creds)
		g.Expect(err).To(HaveOccurred(), "the held owner can log in again")

		wrong := "00000000-0000-4000-8000-00000000dead"
		g.Eventually(func() error {
			t := getTenant(name)
			t.Spec.Storage = &analyticsv1alpha1.StorageSpec{AdoptRetainedFrom: wrong}
			return k8s.Update(ctx, t)
		}, wait, tick).Should(Succeed())
		g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(And(
			haveStatus(metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataMismatch),
			HaveField("Message", And(ContainSubstring("spec.storage.adoptRetainedFrom is "+wrong),
				ContainSubstring("is that of the deleted tenant with uid "+uid), ContainSubstring("nothing is adopted")))))
		g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataMismatch)))
		g.Expect(store.Hold(ctx, name)).To(HaveField("UID", uid), "the hold is kept")

		// Deleted (deletionPolicy Delete), it purges nothing: the data is
		// not its own.
		deleteTenant(t, other)
		g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(And(
			HaveField("Reason", "Purged"), HaveField("Note", ContainSubstring("not this tenant's; it stays held")))))
		g.Expect(store.Hold(ctx, name)).To(HaveField("UID", uid), "the hold is kept")
		g.Expect(heldRows(g, store, name)).To(BeEquivalentTo(1))
	})

	t.Run("a tenant of the same name that names the deleted tenant's uid adopts the data", func(t *testing.T) {
		g := NewWithT(t)
		newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS,
			Storage: &analyticsv1alpha1.StorageSpec{AdoptRetainedFrom: uid}})
		g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
		g.Eventually(func() *metav1.Time {
			if t := getTenant(name); t != nil && t.Status.Storage != nil {
				return t.Status.Storage.AdoptedFrom
			}
			return nil
		}, wait, tick).ShouldNot(BeNil(), "status.storage.adoptedFrom")
		g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(And(
			HaveField("Reason", "Adopted"), HaveField("Note", ContainSubstring("uid "+uid)))))
		g.Eventually(func() error {
			c, err := storage.ConnectTenant(ctx, ownerCredentials(g, ns, "US"))
			if err != nil {
				return err
			}
			defer func() { _ = c.Close(ctx) }()
			var n int
			// The held schema, adopted under the name it was recorded with.
			if err := c.QueryRow(ctx, `SELECT count(*) FROM `+creds.Schema+`.events`).Scan(&n); err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("the adopted tenant has %d events, want its 1", n)
			}
			return nil
		}, wait, tick).Should(Succeed())
		g.Expect(store.Hold(ctx, name)).To(BeNil(), "an adopted tenant is no longer held")
	})
}

func TestATenantThatAsksForRetainedDataThatIsNotHeldIsNotProvisionedEmpty(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const name = "nothing-held"
	asked := "00000000-0000-4000-8000-0000000000aa"
	newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS,
		Storage: &analyticsv1alpha1.StorageSpec{AdoptRetainedFrom: asked}})
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(And(
		haveStatus(metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataNotFound),
		HaveField("Message", And(ContainSubstring("uid "+asked), ContainSubstring("holds no data under the name "+name),
			ContainSubstring("remove spec.storage.adoptRetainedFrom to start empty")))))
	g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(HaveField("Reason", analyticsv1alpha1.ReasonRetainedDataNotFound)))

	g.Eventually(func() error {
		t := getTenant(name)
		t.Spec.Storage = nil
		return k8s.Update(ctx, t)
	}, wait, tick).Should(Succeed())
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
}

func TestATenantIsNeverGivenARoleMadeByHandUnderItsName(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const name = "squatted"
	// The name an operator from before opaque names would have given it.
	role := "tenant_" + name
	// Made by someone else with CREATEROLE, with a member of their own.
	conn, err := pg.Connect(ctx, "US")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = conn.Close(ctx) })
	for _, stmt := range []string{`CREATE ROLE ` + role + ` NOLOGIN`, `CREATE ROLE spy_squatted NOLOGIN`, `GRANT ` + role + ` TO spy_squatted`} {
		_, err := conn.Exec(ctx, stmt)
		g.Expect(err).NotTo(HaveOccurred())
	}
	t.Cleanup(func() { _, _ = conn.Exec(ctx, `DROP ROLE IF EXISTS spy_squatted; DROP ROLE IF EXISTS `+role) })

	// A new tenant's names are drawn at random, so no role made in
	// advance can be its: it is provisioned under its own, and the
	// hand-made role is left as it was.
	newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	st := getTenant(name).Status.Storage
	g.Expect(st.Schema).To(MatchRegexp(`^t_[a-z2-7]{26}$`))
	g.Expect(st.IngestRole).To(Equal("i_" + st.Schema[2:]))
	var login bool
	g.Expect(conn.QueryRow(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, role).Scan(&login)).To(Succeed())
	g.Expect(login).To(BeFalse(), "the hand-made role was taken over")
	g.Expect(ownerCredentials(g, "tenant-"+name, "US").Username).To(Equal(st.Schema), "credentials were written for another role")
}
