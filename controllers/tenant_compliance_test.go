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
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

func TestRetentionIsJudgedByTheOldestRawEventDayAgainstTheWindowAndTheGrace(t *testing.T) {
	now := time.Date(2026, 5, 17, 10, 30, 0, 0, time.UTC)
	ago := func(days int) *time.Time { return ptr.To(now.Truncate(24*time.Hour).AddDate(0, 0, -days)) }
	for _, tt := range []struct {
		name    string
		oldest  *time.Time
		now     time.Time
		days    int32
		status  metav1.ConditionStatus
		overdue int
		message string
	}{
		{"no raw event at all is compliant", nil, now, 30, metav1.ConditionTrue, 0, "no raw event is stored"},
		{"today's events are compliant", ago(0), now, 30, metav1.ConditionTrue, 0, "from 2026-05-17, within the 30-day window"},
		{"the window's oldest day is compliant", ago(30), now, 30, metav1.ConditionTrue, 0, "within the 30-day window"},
		{"a day just out of the window waits for the night's run", ago(31), now, 30, metav1.ConditionTrue, 0, "1 day past the 30-day window, within the 2-day grace"},
		{"a day two days out is still within the grace: one run may fail", ago(32), now, 30, metav1.ConditionTrue, 0, "2 days past"},
		{"a day three days out is overdue", ago(33), now, 30, metav1.ConditionFalse, 3, "3 days past the 30-day window"},
		{"events 40 days old on a 30-day plan are ten days overdue", ago(40), now, 30, metav1.ConditionFalse, 10, "check CronJob tenant-acme/retention and its Jobs"},
		{"events 40 days old on a 90-day plan are compliant", ago(40), now, 90, metav1.ConditionTrue, 0, "within the 90-day window"},
		{"a 365-day plan keeps a year", ago(365), now, 365, metav1.ConditionTrue, 0, "within the 365-day window"},
		{"days are UTC days, whatever the clock's zone",
			ago(32), time.Date(2026, 5, 17, 22, 0, 0, 0, time.FixedZone("UTC-3", -3*3600)), 30, metav1.ConditionFalse, 3, "3 days past"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			v := judgeRetention(tt.oldest, tt.now, tt.days, "tenant-acme")
			g.Expect(v.status).To(Equal(tt.status))
			g.Expect(v.overdueDays).To(Equal(tt.overdue))
			g.Expect(v.message).To(ContainSubstring(tt.message))
			if tt.status == metav1.ConditionFalse {
				g.Expect(v.reason).To(Equal(analyticsv1alpha1.ReasonRetentionOverdue))
			} else {
				g.Expect(v.reason).To(Equal(analyticsv1alpha1.ReasonWithinWindow))
			}
		})
	}
}

// oldestDayStore is a region's storage that knows only its oldest raw event
// day: what is tested here is the reconciler's verdict over time, its
// events and its metric, not the reading (which storage's tests prove on
// PostgreSQL).
type oldestDayStore struct {
	RegionStore
	oldest *time.Time
}

func (s *oldestDayStore) OldestRawEventDay(context.Context, string) (*time.Time, error) {
	return s.oldest, nil
}

// tenantGauge reads the tenant's series of a per-tenant gauge from the
// registry the manager serves; ok is false when it has none.
func tenantGauge(t testing.TB, name, tenant string) (value float64, ok bool) {
	t.Helper()
	families, err := metrics.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "tenant" && l.GetValue() == tenant {
					return m.GetGauge().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// The clock moves a day at a time over a tenant whose retention stopped
// working, then retention catches up.
func TestRetentionCompliantTurnsFalseOnceWithAWarningAndBackWithANormalEvent(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	scheme := runtime.NewScheme()
	g.Expect(analyticsv1alpha1.AddToScheme(scheme)).To(Succeed())
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "clocked", Generation: 1}}
	// The other parts were observed True; only retention compliance moves.
	for _, condType := range partConditions {
		if condType != analyticsv1alpha1.ConditionRetentionCompliant {
			meta.SetStatusCondition(&tenant.Status.Conditions, metav1.Condition{Type: condType, Status: metav1.ConditionTrue,
				Reason: analyticsv1alpha1.ReasonReconciled, ObservedGeneration: 1})
		}
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(tenant).WithStatusSubresource(tenant).Build()
	recorder := events.NewFakeRecorder(10)
	oldest := time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
	store := &oldestDayStore{oldest: &oldest}
	var now time.Time
	r := &TenantReconciler{Client: c, Recorder: recorder, Settings: render.DefaultSettings(), Now: func() time.Time { return now }}
	region := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: "eu"}}
	t.Cleanup(func() { forgetTenantMetrics("clocked") })
	// When retention last ran, once it has.
	var lastRun *metav1.Time

	for _, step := range []struct {
		name       string
		now        time.Time
		oldest     time.Time
		status     metav1.ConditionStatus
		overdue    float64
		event      string
		noWrite    bool
		oldestSeen time.Time
		// ran is whether a retention run ended just before (the CronJob's
		// status says so), which has the day read again at once.
		ran bool
	}{
		{"on the window's last day the tenant is compliant", oldest.AddDate(0, 0, 30).Add(3 * time.Hour), oldest,
			metav1.ConditionTrue, 0, "", false, oldest, false},
		{"two days past the window it is still within the grace", oldest.AddDate(0, 0, 32).Add(7 * time.Hour), oldest,
			metav1.ConditionTrue, 0, "", false, oldest, false},
		{"three days past it is overdue, with a warning", oldest.AddDate(0, 0, 33), oldest,
			metav1.ConditionFalse, 3, "Warning RetentionOverdue the oldest raw event is from 2026-04-01, 3 days past the 30-day window", false, oldest, false},
		{"a day later it is still overdue, with no second warning", oldest.AddDate(0, 0, 34), oldest,
			metav1.ConditionFalse, 4, "", false, oldest, false},
		{"once retention has run it is compliant again, with a normal event", oldest.AddDate(0, 0, 34), oldest.AddDate(0, 0, 20),
			metav1.ConditionTrue, 0, "Normal WithinWindow raw events are within the plan's window again: the oldest raw event is from 2026-04-21", false, oldest.AddDate(0, 0, 20), true},
		{"a reconcile later the same day writes nothing and records nothing", oldest.AddDate(0, 0, 34).Add(5 * time.Hour), oldest.AddDate(0, 0, 20),
			metav1.ConditionTrue, 0, "", true, oldest.AddDate(0, 0, 20), false},
	} {
		t.Run(step.name, func(t *testing.T) {
			g := NewWithT(t)
			now, store.oldest = step.now, &step.oldest
			current := &analyticsv1alpha1.AnalyticsTenant{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tenant), current)).To(Succeed())
			s := newTenantScope(current, r.Settings)
			s.region, s.store = region, store
			if step.ran {
				lastRun = &metav1.Time{Time: now}
			}
			if lastRun != nil {
				s.cronJob = &batchv1.CronJob{Status: batchv1.CronJobStatus{LastScheduleTime: lastRun, LastSuccessfulTime: lastRun}}
			}

			res, err := r.checkRetentionCompliance(ctx, s)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(res.RequeueAfter).To(Equal(retentionRecheck), "a converged tenant is re-checked")
			g.Expect(r.updateStatus(ctx, s, nil)).To(Succeed())

			got := &analyticsv1alpha1.AnalyticsTenant{}
			g.Expect(c.Get(ctx, client.ObjectKeyFromObject(tenant), got)).To(Succeed())
			compliant := meta.FindStatusCondition(got.Status.Conditions, analyticsv1alpha1.ConditionRetentionCompliant)
			g.Expect(compliant).NotTo(BeNil())
			g.Expect(compliant.Status).To(Equal(step.status))
			g.Expect(got.Status.Retention.OldestRawEvent).NotTo(BeNil())
			g.Expect(got.Status.Retention.OldestRawEvent.Time).To(BeTemporally("==", step.oldestSeen))
			if step.noWrite {
				g.Expect(got.ResourceVersion).To(Equal(current.ResourceVersion), "status was rewritten")
			}
			ready := meta.FindStatusCondition(got.Status.Conditions, analyticsv1alpha1.ConditionReady)
			g.Expect(ready).NotTo(BeNil())
			g.Expect(ready.Status).To(Equal(step.status), "Ready follows RetentionCompliant")
			if step.status == metav1.ConditionFalse {
				g.Expect(ready.Reason).To(Equal(analyticsv1alpha1.ReasonRetentionOverdue))
			}
			value, ok := tenantGauge(t, "millimetric_tenant_retention_overdue_days", "clocked")
			g.Expect(ok).To(BeTrue())
			g.Expect(value).To(Equal(step.overdue))
			age, ok := tenantGauge(t, "millimetric_tenant_oldest_raw_event_age_seconds", "clocked")
			g.Expect(ok).To(BeTrue())
			g.Expect(age).To(Equal(step.now.Sub(step.oldest).Seconds()), "the age of the oldest raw event day by the reconciler's clock")

			if step.event == "" {
				g.Expect(recorder.Events).To(BeEmpty())
			} else {
				g.Expect(recorder.Events).To(Receive(HavePrefix(step.event)))
				g.Expect(recorder.Events).To(BeEmpty(), "more than one event")
			}
		})
	}

	t.Run("the tenant's series go with the tenant", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(c.Delete(ctx, tenant)).To(Succeed())
		_, err := r.Reconcile(ctx, ctrl.Request{NamespacedName: client.ObjectKeyFromObject(tenant)})
		g.Expect(err).NotTo(HaveOccurred())
		for _, name := range []string{"millimetric_tenant_retention_overdue_days", "millimetric_tenant_oldest_raw_event_age_seconds"} {
			_, ok := tenantGauge(t, name, "clocked")
			g.Expect(ok).To(BeFalse(), "the %s series of a deleted tenant is still served", name)
		}
	})
}
