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

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// retentionOverdueDays reads millimetric_tenant_retention_overdue_days from
// the registry the manager serves, by tenant.
func retentionOverdueDays() map[string]float64 {
	series := map[string]float64{}
	families, err := metrics.Registry.Gather()
	if err != nil {
		return nil
	}
	for _, f := range families {
		if f.GetName() != "millimetric_tenant_retention_overdue_days" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" {
					series[l.GetValue()] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return series
}

// oldestRawEventOf reads the tenant's status.retention.oldestRawEvent.
func oldestRawEventOf(name string) func() *time.Time {
	return func() *time.Time {
		tenant := getTenant(name)
		if tenant == nil || tenant.Status.Retention == nil || tenant.Status.Retention.OldestRawEvent == nil {
			return nil
		}
		return ptr.To(tenant.Status.Retention.OldestRawEvent.UTC())
	}
}

// requestReconcile asks for a full reconcile of the tenant now, as a user
// does with analytics.millimetric.ai/reconcile-requested-at.
func requestReconcile(t testing.TB, name string) {
	t.Helper()
	stamp := time.Now().Format(time.RFC3339Nano)
	NewWithT(t).Eventually(func() error {
		tenant := getTenant(name)
		if tenant.Annotations == nil {
			tenant.Annotations = map[string]string{}
		}
		tenant.Annotations[analyticsv1alpha1.ReconcileRequestedAnnotation] = stamp
		return k8s.Update(context.Background(), tenant)
	}, wait, tick).Should(Succeed())
	NewWithT(t).Eventually(func() string { return getTenant(name).Status.LastHandledReconcileAt }, wait, tick).Should(Equal(stamp))
}

// ownerConn logs in with the tenant's owner credentials from its Secret, as
// the retention CronJob does.
func ownerConn(t testing.TB, ns string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	secret := get(&corev1.Secret{}, ns, render.StorageSecretName)()
	if secret == nil {
		t.Fatalf("no Secret %s/%s", ns, render.StorageSecretName)
	}
	conn, err := storage.ConnectTenant(ctx, storage.Credentials{Host: "127.0.0.1", Port: int32(pg.Port), Database: pg.Databases["EU"],
		SSLMode: storage.SSLModeDisable, Schema: string(secret.Data["schema"]),
		Username: string(secret.Data["username"]), Password: string(secret.Data["password"])})
	if err != nil {
		t.Fatalf("logging in as the owner of %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = conn.Close(ctx) })
	return conn
}

func TestRawEventsOlderThanTheWindowMakeATenantNonCompliantUntilRetentionDeletesThem(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	tenant := newTenant(t, "overdue", analyticsv1alpha1.AnalyticsTenantSpec{RetentionDays: ptr.To[int32](30)})
	ns := "tenant-overdue"
	g.Eventually(get(&appsv1.Deployment{}, ns, render.IngestName), wait, tick).ShouldNot(BeNil())
	var schema string
	g.Eventually(func() string {
		if st := getTenant("overdue").Status.Storage; st != nil {
			schema = st.Schema
		}
		return schema
	}, wait, tick).ShouldNot(BeEmpty())
	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("overdue", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	t.Run("a tenant with no raw event is compliant", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(conditionOf("overdue", analyticsv1alpha1.ConditionRetentionCompliant)()).To(And(
			haveStatus(metav1.ConditionTrue), HaveField("Reason", analyticsv1alpha1.ReasonWithinWindow)))
		g.Expect(oldestRawEventOf("overdue")()).To(BeNil())
		g.Expect(retentionOverdueDays()).To(HaveKeyWithValue("overdue", BeZero()))
	})

	// The CronJob does not run in envtest: the events it should have
	// deleted are written as the tenant, 40 and 10 days back on its 30-day
	// plan, as if retention had stopped running.
	conn := ownerConn(t, ns)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	dayAgo := func(n int) time.Time { return today.AddDate(0, 0, -n) }
	for _, age := range []int{40, 10} {
		_, err := storage.EnsureDayPartitions(ctx, conn, schema, dayAgo(age), dayAgo(age))
		g.Expect(err).NotTo(HaveOccurred())
		_, err = conn.Exec(ctx, `INSERT INTO `+schema+`.events (received_at, event_name, url_path)
			VALUES ($1, 'pageview', '/'), ($1, 'pageview', '/pricing')`, dayAgo(age).Add(13*time.Hour))
		g.Expect(err).NotTo(HaveOccurred())
	}
	// Found at the next hourly check, or at once when asked.
	requestReconcile(t, "overdue")

	t.Run("raw events 40 days old on a 30-day plan turn it RetentionOverdue and not Ready, with a warning", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(conditionOf("overdue", analyticsv1alpha1.ConditionRetentionCompliant), wait, tick).Should(And(
			haveStatus(metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRetentionOverdue),
			HaveField("Message", And(ContainSubstring("10 days past the 30-day window"), ContainSubstring("CronJob tenant-overdue/retention")))))
		g.Expect(conditionOf("overdue", analyticsv1alpha1.ConditionReady)()).To(And(
			haveStatus(metav1.ConditionFalse), HaveField("Reason", analyticsv1alpha1.ReasonRetentionOverdue)))
		g.Expect(oldestRawEventOf("overdue")()).To(HaveValue(BeTemporally("==", dayAgo(40))))
		g.Eventually(eventsAbout("overdue"), wait, tick).Should(ContainElement(And(
			HaveField("Type", corev1.EventTypeWarning), HaveField("Reason", analyticsv1alpha1.ReasonRetentionOverdue),
			HaveField("Note", ContainSubstring("10 days past the 30-day window")))))
		g.Expect(retentionOverdueDays()).To(HaveKeyWithValue("overdue", BeEquivalentTo(10)))
		g.Expect(gaugeValue("millimetric_tenant_oldest_raw_event_age_seconds", "tenant", "overdue")()).To(
			BeNumerically("~", time.Since(dayAgo(40)).Seconds(), time.Hour.Seconds()), "the age of the day 40 days ago")
	})

	t.Run("once retention has run, it is compliant and Ready again, with the day 10 days ago as its oldest", func(t *testing.T) {
		g := NewWithT(t)
		sum, err := storage.RunRetention(ctx, conn, schema, 30, time.Now())
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(sum.PartitionsDropped).To(Equal(1))
		// Play the CronJob controller: a run that succeeded updates the
		// CronJob's status, whose watch reconciles the tenant.
		ranAt := metav1.NewTime(time.Now().Truncate(time.Second))
		g.Eventually(func() error {
			cj := get(&batchv1.CronJob{}, ns, render.RetentionName)()
			if cj == nil {
				return context.DeadlineExceeded
			}
			ran := ranAt
			cj.Status.LastScheduleTime, cj.Status.LastSuccessfulTime = &ran, &ran
			return k8s.Status().Update(ctx, cj)
		}, wait, tick).Should(Succeed())

		g.Eventually(conditionOf("overdue", analyticsv1alpha1.ConditionRetentionCompliant), wait, tick).Should(And(
			haveStatus(metav1.ConditionTrue), HaveField("Reason", analyticsv1alpha1.ReasonWithinWindow)))
		g.Eventually(conditionOf("overdue", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
		g.Expect(oldestRawEventOf("overdue")()).To(HaveValue(BeTemporally("==", dayAgo(10))))
		g.Eventually(eventsAbout("overdue"), wait, tick).Should(ContainElement(And(
			HaveField("Type", corev1.EventTypeNormal), HaveField("Reason", analyticsv1alpha1.ReasonWithinWindow))))
		g.Expect(retentionOverdueDays()).To(HaveKeyWithValue("overdue", BeZero()))
		g.Expect(gaugeValue("millimetric_tenant_oldest_raw_event_age_seconds", "tenant", "overdue")()).To(
			BeNumerically("~", time.Since(dayAgo(10)).Seconds(), time.Hour.Seconds()), "the age of the day 10 days ago")
		g.Eventually(gaugeValue("millimetric_tenant_retention_last_success_timestamp_seconds", "tenant", "overdue"), wait, tick).Should(
			BeEquivalentTo(ranAt.Unix()), "the CronJob's last successful run")
		warnings := func() []eventsv1.Event {
			var out []eventsv1.Event
			for _, e := range eventsAbout("overdue")() {
				if e.Reason == analyticsv1alpha1.ReasonRetentionOverdue {
					out = append(out, e)
				}
			}
			return out
		}
		g.Expect(warnings()).To(HaveLen(1), "one transition, one warning")
		g.Expect(warnings()[0].Series).To(BeNil(), "the warning was recorded again")
	})

	t.Run("a reconcile with nothing changed still makes no write request", func(t *testing.T) {
		g := NewWithT(t)
		// Once the reconciler's cache has the status the last one wrote.
		g.Eventually(func() *analyticsv1alpha1.RetentionStatus {
			cached := &analyticsv1alpha1.AnalyticsTenant{}
			if err := tenants.Get(ctx, client.ObjectKeyFromObject(tenant), cached); err != nil {
				return nil
			}
			return cached.Status.Retention
		}, wait, tick).Should(HaveField("OldestRawEvent", HaveField("Time", BeTemporally("==", dayAgo(10)))))
		g.Consistently(func() int64 {
			before := writes.count()
			_, err := tenants.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tenant)})
			g.Expect(err).NotTo(HaveOccurred())
			return writes.count() - before
		}, time.Second, 200*time.Millisecond).Should(BeZero())
	})

	t.Run("the tenant's series go with the tenant", func(t *testing.T) {
		deleteTenant(t, tenant)
		NewWithT(t).Eventually(retentionOverdueDays, wait, tick).ShouldNot(HaveKey("overdue"))
		NewWithT(t).Eventually(func() []string { return tenantSeries("overdue") }, wait, tick).Should(BeEmpty())
	})
}
