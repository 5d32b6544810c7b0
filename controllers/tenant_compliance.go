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
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// retentionGraceDays is how many days past the plan's window the oldest raw
// event day may be before the tenant is RetentionCompliant=False. A day
// leaves the window at 00:00 UTC, but retention deletes it only at its next
// run, once a day at a time between 01:00 and 05:59 UTC spread per tenant:
// until then it is one day past, as it should be. The second day allows for
// one run that fails (its Job's retries spent) or does not happen, which
// the next day's run catches up on. Older than that, retention has missed
// two runs in a row and the policy's promise is broken.
const retentionGraceDays = 2

// retentionRecheck is how often a converged tenant's oldest raw event day
// is read again. Most changes are seen sooner: a retention run ending
// updates the CronJob's status, whose watch reconciles the tenant at once.
// The re-check sees the rest: a day ageing past the grace because no run
// happened at all, the first events of a new tenant, a run by hand. An
// hour is well inside the two-day grace, and keeps a converged tenant at
// one reconcile an hour at rest, as the scale target asks.
const retentionRecheck = time.Hour

// checkRetentionCompliance reads from the tenant's region the oldest UTC day
// still holding raw events and judges it against the plan's window. It owns
// RetentionCompliant and status.retention.oldestRawEvent. It runs only once
// storage is provisioned; a failed read is a transient failure of the
// reconcile, which keeps what was last observed.
func (r *TenantReconciler) checkRetentionCompliance(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	if s.store == nil {
		// Storage could not be provisioned now; StorageReady says why.
		return ctrl.Result{}, nil
	}
	if wait := r.retentionCheckDue(s); wait > 0 {
		// Read less than retentionRecheck ago, and nothing it depends on
		// changed since: what status says still stands.
		return ctrl.Result{RequeueAfter: wait}, nil
	}
	oldest, err := s.store.OldestRawEventDay(ctx, s.tenant.Name)
	if err != nil {
		return ctrl.Result{}, fmt.Errorf("reading the oldest raw event of AnalyticsTenant %s in region %s (StorageRegion %s): %w",
			s.tenant.Name, s.spec.Region, s.region.Name, err)
	}
	s.oldestRawEventRead = true
	if oldest != nil {
		day := metav1.NewTime(*oldest)
		s.oldestRawEvent = &day
	}
	v := judgeRetention(oldest, r.now(), s.spec.RetentionDays, render.NamespaceName(s.render()))
	s.set(analyticsv1alpha1.ConditionRetentionCompliant, v.status, v.reason, v.message)
	retentionOverdueDays.WithLabelValues(s.tenant.Name).Set(float64(v.overdueDays))
	age := 0.0
	if oldest != nil {
		age = max(r.now().Sub(*oldest).Seconds(), 0)
	}
	oldestRawEventAge.WithLabelValues(s.tenant.Name).Set(age)
	r.retentionChecked.Store(s.tenant.Name, r.now())
	return ctrl.Result{RequeueAfter: retentionRecheck}, nil
}

// retentionCheckDue is how long until the tenant's oldest raw event day is
// to be read again, 0 when it is due now: never read by this instance, read
// retentionRecheck ago, a full reconcile requested, or something it depends
// on changed since status recorded it (the spec, a retention run, the
// condition missing or Unknown: status holds no verdict, as when the status
// write of the reconcile that read it failed).
func (r *TenantReconciler) retentionCheckDue(s *tenantScope) time.Duration {
	last, ok := r.retentionChecked.Load(s.tenant.Name)
	st := s.original.Status
	if c := meta.FindStatusCondition(st.Conditions, analyticsv1alpha1.ConditionRetentionCompliant); !ok || s.requested != "" ||
		st.ObservedGeneration != s.tenant.Generation || st.Retention == nil || c == nil || c.Status == metav1.ConditionUnknown {
		return 0
	}
	if cj := s.cronJob; cj != nil && (!timesEqual(cj.Status.LastScheduleTime, st.Retention.LastScheduleTime) ||
		!timesEqual(cj.Status.LastSuccessfulTime, st.Retention.LastSuccessfulTime)) {
		return 0
	}
	return max(last.(time.Time).Add(retentionRecheck).Sub(r.now()), 0)
}

func timesEqual(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(b)
}

// retentionVerdict is what the oldest raw event day says of the retention
// promise.
type retentionVerdict struct {
	status          metav1.ConditionStatus
	reason, message string
	// overdueDays is how many days past the window the oldest raw event
	// day is when it is past the grace too; else 0.
	overdueDays int
}

// judgeRetention judges oldest, the oldest UTC day holding raw events (nil:
// none), at now against a window of days, by the rule retention deletes
// by (storage.KeepFrom): the raw events of a day are overdue when the day is
// more than retentionGraceDays before the first day the window keeps. Messages
// change at most once a day, so status is not rewritten more often.
func judgeRetention(oldest *time.Time, now time.Time, days int32, namespace string) retentionVerdict {
	if oldest == nil {
		return retentionVerdict{status: metav1.ConditionTrue, reason: analyticsv1alpha1.ReasonWithinWindow,
			message: "no raw event is stored"}
	}
	past := storage.DaysPastWindow(*oldest, now, int(days))
	from := oldest.UTC().Format(time.DateOnly)
	switch {
	case past <= 0:
		return retentionVerdict{status: metav1.ConditionTrue, reason: analyticsv1alpha1.ReasonWithinWindow,
			message: fmt.Sprintf("the oldest raw event is from %s, within the %d-day window", from, days)}
	case past <= retentionGraceDays:
		return retentionVerdict{status: metav1.ConditionTrue, reason: analyticsv1alpha1.ReasonWithinWindow,
			message: fmt.Sprintf("the oldest raw event is from %s, %s past the %d-day window, within the %d-day grace for the daily retention run to delete it",
				from, dayCount(past), days, retentionGraceDays)}
	default:
		return retentionVerdict{status: metav1.ConditionFalse, reason: analyticsv1alpha1.ReasonRetentionOverdue, overdueDays: past,
			message: fmt.Sprintf("the oldest raw event is from %s, %s past the %d-day window (the grace is %d days): retention is not deleting expired raw events; check CronJob %s/%s and its Jobs (kubectl -n %s get cronjobs,jobs)",
				from, dayCount(past), days, retentionGraceDays, namespace, render.RetentionName, namespace)}
	}
}

// recordRetentionTransition records RetentionCompliant turning False (a
// Warning) or back to True (a Normal event). It runs after the status
// saying so was written, so each transition is recorded once.
func (r *TenantReconciler) recordRetentionTransition(ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant, was, now *metav1.Condition) {
	switch {
	case now == nil:
	case now.Status == metav1.ConditionFalse && (was == nil || was.Status != metav1.ConditionFalse):
		r.event(ctx, tenant, corev1.EventTypeWarning, analyticsv1alpha1.ReasonRetentionOverdue, "CheckRetention", now.Message)
	case now.Status == metav1.ConditionTrue && was != nil && was.Status == metav1.ConditionFalse:
		r.event(ctx, tenant, corev1.EventTypeNormal, analyticsv1alpha1.ReasonWithinWindow, "CheckRetention",
			"raw events are within the plan's window again: "+now.Message)
	}
}

// dayCount is "1 day" or "n days".
func dayCount(n int) string {
	if n == 1 {
		return "1 day"
	}
	return fmt.Sprintf("%d days", n)
}
