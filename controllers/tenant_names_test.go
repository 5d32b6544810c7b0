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
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

func TestATenantsNamesAreRecordedInStatusAndSurviveAStatusWipe(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const name, ns = "wiped", "tenant-wiped"
	tenant := newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	// Opaque names, in status, saying nothing of the tenant.
	recorded := *getTenant(name).Status.Storage
	g.Expect(recorded.Schema).To(MatchRegexp(`^t_[a-z2-7]{26}$`))
	g.Expect(recorded.IngestRole).To(Equal("i_" + recorded.Schema[len("t_"):]))
	g.Expect(strings.Contains(recorded.Schema+recorded.IngestRole, name)).To(BeFalse())

	// The same names in the region's mapping, with the tenant's uid.
	conn, err := pg.Connect(ctx, "EU")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = conn.Close(ctx) })
	var schema, ingestRole, uid string
	g.Expect(conn.QueryRow(ctx, `SELECT schema, ingest_role, tenant_uid FROM `+storage.OperatorSchema+`.tenant_names WHERE tenant = $1`, name).
		Scan(&schema, &ingestRole, &uid)).To(Succeed())
	g.Expect([]string{schema, ingestRole, uid}).To(Equal([]string{recorded.Schema, recorded.IngestRole, string(tenant.UID)}))

	// The tenant's data, written as its owner.
	creds := ownerCredentials(g, ns, "EU")
	g.Expect(creds.Username).To(Equal(recorded.Schema))
	owner, err := storage.ConnectTenant(ctx, creds)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = owner.Exec(ctx, `INSERT INTO `+recorded.Schema+`.events (received_at, event_name) VALUES (now(), 'pageview')`)
	g.Expect(err).NotTo(HaveOccurred())
	_ = owner.Close(ctx)

	// The status is lost (a restore without status, an edit by hand), and
	// so are the Secrets, the only other places the names are written:
	// the operator finds the names in the region's mapping and writes them
	// back. Deleting the Secrets is what sets off the reconcile.
	g.Eventually(func() error {
		wiped := getTenant(name)
		wiped.Status = analyticsv1alpha1.AnalyticsTenantStatus{}
		return k8s.Status().Update(ctx, wiped)
	}, wait, tick).Should(Succeed())
	g.Eventually(func() *analyticsv1alpha1.StorageStatus { return getTenant(name).Status.Storage }, wait, tick).Should(BeNil())
	for _, secret := range []string{render.StorageSecretName, render.IngestSecretName} {
		g.Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: secret}})).To(Succeed())
	}
	names := func() []string {
		st := getTenant(name).Status.Storage
		if st == nil {
			return nil
		}
		return []string{st.Schema, st.IngestRole}
	}
	g.Eventually(names, wait, tick).Should(Equal([]string{recorded.Schema, recorded.IngestRole}))
	g.Consistently(names, time.Second, tick).Should(Equal([]string{recorded.Schema, recorded.IngestRole}))
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Eventually(func() *corev1.Secret { return get(&corev1.Secret{}, ns, render.IngestSecretName)() }, wait, tick).ShouldNot(BeNil())
	g.Expect(string(get(&corev1.Secret{}, ns, render.IngestSecretName)().Data[render.SecretKeyUsername])).To(Equal(recorded.IngestRole))
	after := ownerCredentials(g, ns, "EU")
	g.Expect(after.Username).To(Equal(recorded.Schema))
	g.Expect(after.Schema).To(Equal(recorded.Schema))
	_, err = storage.ConnectTenant(ctx, after)
	g.Expect(err).NotTo(HaveOccurred(), "the new credentials log in as the recorded owner")
	var n int
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM `+recorded.Schema+`.events`).Scan(&n)).To(Succeed())
	g.Expect(n).To(Equal(1), "the tenant's data is where it was")
}
