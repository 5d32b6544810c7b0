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

func TestARetainedTenantIsLockedOutAtOnceAndItsDataAdoptedWhenRecreatedWithinTheHold(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const name, ns = "held", "tenant-held"
	spec := analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS,
		DeletionPolicy: analyticsv1alpha1.DeletionPolicyRetain, RetainDays: ptr.To[int32](3)}
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	g.Expect(k8s.Create(ctx, tenant)).To(Succeed())
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Eventually(func() *corev1.Secret { return get(&corev1.Secret{}, ns, render.StorageSecretName)() }, wait, tick).ShouldNot(BeNil())
	creds := ownerCredentials(g, ns, "US")
	conn, err := storage.ConnectTenant(ctx, creds)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = conn.Exec(ctx, `INSERT INTO tenant_held.events (received_at, event_name) VALUES (now(), 'pageview')`)
	g.Expect(err).NotTo(HaveOccurred())
	_ = conn.Close(ctx)

	deleteTenant(t, tenant)
	g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(And(
		HaveField("Reason", "Retained"), HaveField("Note", ContainSubstring("can no longer log in")))))
	_, err = storage.ConnectTenant(ctx, creds)
	g.Expect(err).To(HaveOccurred(), "the retained tenant's owner can still log in after deletion")
	store, err := storage.Open(ctx, pg.AdminConfig("US"))
	g.Expect(err).NotTo(HaveOccurred())
	defer store.Close()
	held, err := store.Retained(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(held).To(ContainElement(And(HaveField("Tenant", name), HaveField("Hold()", 3*24*time.Hour))))

	// Re-created within the hold: the data is adopted, visibly.
	newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Eventually(func() *metav1.Time {
		if t := getTenant(name); t != nil && t.Status.Storage != nil {
			return t.Status.Storage.AdoptedFrom
		}
		return nil
	}, wait, tick).ShouldNot(BeNil(), "status.storage.adoptedFrom")
	g.Eventually(eventsAbout(name), wait, tick).Should(ContainElement(HaveField("Reason", "Adopted")))
	g.Eventually(func() error {
		c, err := storage.ConnectTenant(ctx, ownerCredentials(g, ns, "US"))
		if err != nil {
			return err
		}
		defer func() { _ = c.Close(ctx) }()
		var n int
		if err := c.QueryRow(ctx, `SELECT count(*) FROM tenant_held.events`).Scan(&n); err != nil {
			return err
		}
		if n != 1 {
			return fmt.Errorf("the adopted tenant has %d events, want its 1", n)
		}
		return nil
	}, wait, tick).Should(Succeed())
	held, err = store.Retained(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(held).NotTo(ContainElement(HaveField("Tenant", name)), "an adopted tenant is no longer held")
}
