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
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// operatorMetrics are the names of the operator's own metrics.
var operatorMetrics = []string{
	"millimetric_tenants",
	"millimetric_tenant_ingest_rollouts",
	"millimetric_storage_regions",
	"millimetric_storage_region_database_up",
	"millimetric_storage_region_overdue_hold_seconds",
	"millimetric_provision_duration_seconds",
	"millimetric_purge_duration_seconds",
	"millimetric_reconcile_phase_duration_seconds",
	"millimetric_tenant_retention_overdue_days",
	"millimetric_tenant_retention_last_success_timestamp_seconds",
	"millimetric_tenant_oldest_raw_event_age_seconds",
}

// tenantPhases are the phases of the tenant reconciler, in order.
var tenantPhases = []string{"region", "namespace", "isolation", "storage", "workloads", "retention", "compliance"}

// sample is one series as gathered: a gauge's value, or a histogram's
// sample count.
type sample struct {
	value float64
	count uint64
}

// series gathers a metric from the registry the manager serves, by its
// labels as seriesKey writes them.
func series(name string) map[string]sample {
	out := map[string]sample{}
	families, err := metrics.Registry.Gather()
	if err != nil {
		panic(fmt.Sprintf("gathering metrics: %v", err))
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			var kv []string
			for _, l := range m.GetLabel() {
				kv = append(kv, l.GetName(), l.GetValue())
			}
			out[seriesKey(kv...)] = sample{value: m.GetGauge().GetValue(), count: m.GetHistogram().GetSampleCount()}
		}
	}
	return out
}

// seriesKey names a series by its labels, given as name, value pairs in any
// order: `name="value",...` sorted by name.
func seriesKey(kv ...string) string {
	var pairs []string
	for i := 0; i+1 < len(kv); i += 2 {
		pairs = append(pairs, fmt.Sprintf("%s=%q", kv[i], kv[i+1]))
	}
	slices.Sort(pairs)
	return strings.Join(pairs, ",")
}

// gauge reads one series of a gauge; ok is false when it has none.
func gauge(name string, kv ...string) func() (float64, bool) {
	return func() (float64, bool) {
		s, ok := series(name)[seriesKey(kv...)]
		return s.value, ok
	}
}

// gaugeValue is gauge's value alone, -1 when the series is absent.
func gaugeValue(name string, kv ...string) func() float64 {
	return func() float64 {
		v, ok := gauge(name, kv...)()
		if !ok {
			return -1
		}
		return v
	}
}

// observations reads how many samples one series of a histogram has.
func observations(name string, kv ...string) func() uint64 {
	return func() uint64 { return series(name)[seriesKey(kv...)].count }
}

// tenantSeries are the tenant's series of the per-tenant gauges.
func tenantSeries(tenant string) []string {
	var present []string
	for _, name := range operatorMetrics {
		if _, ok := series(name)[seriesKey("tenant", tenant)]; ok {
			present = append(present, name)
		}
	}
	return present
}

// tenantsFromAPI counts the suite instance's tenants as the API server has
// them, as millimetric_tenants should: by region, Ready status and reason.
func tenantsFromAPI() map[string]float64 {
	var list analyticsv1alpha1.AnalyticsTenantList
	unsharded, _ := labels.Parse("!" + shardLabel)
	if err := k8s.List(context.Background(), &list, client.MatchingLabelsSelector{Selector: unsharded}); err != nil {
		return nil
	}
	counts := map[string]float64{}
	for _, t := range list.Items {
		ready, reason := "Unknown", ""
		if c := meta.FindStatusCondition(t.Status.Conditions, analyticsv1alpha1.ConditionReady); c != nil {
			ready, reason = string(c.Status), c.Reason
		}
		counts[seriesKey("region", string(t.Spec.Effective().Region), "ready", ready, "reason", reason)]++
	}
	return counts
}

// tenantsGathered is millimetric_tenants as gathered.
func tenantsGathered() map[string]float64 {
	counts := map[string]float64{}
	for k, s := range series("millimetric_tenants") {
		counts[k] = s.value
	}
	return counts
}

// haveTheTenantsOfTheAPI passes when millimetric_tenants counts the tenants
// the API server has, series by series.
func haveTheTenantsOfTheAPI(g Gomega) {
	g.Eventually(func() error {
		want, have := tenantsFromAPI(), tenantsGathered()
		if fmt.Sprint(want) != fmt.Sprint(have) {
			return fmt.Errorf("millimetric_tenants is %v, the API server has %v", have, want)
		}
		return nil
	}, wait, tick).Should(Succeed())
}

func TestTheOperatorsMetricsFollowATenantFromCreationToDeletion(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	phase := func(controller, name string) func() uint64 {
		return observations("millimetric_reconcile_phase_duration_seconds", "controller", controller, "phase", name)
	}
	provisioned := observations("millimetric_provision_duration_seconds", "region", "EU", "outcome", "success")
	purged := observations("millimetric_purge_duration_seconds", "region", "EU", "outcome", "success")
	phasesBefore := map[string]uint64{}
	for _, p := range tenantPhases {
		phasesBefore[p] = phase("analyticstenant", p)()
	}
	checksBefore, provisionedBefore, purgedBefore := phase("storageregion", "check")(), provisioned(), purged()

	withRegions(t)
	tenant := newTenant(t, "metered", analyticsv1alpha1.AnalyticsTenantSpec{})
	ns := "tenant-metered"
	g.Eventually(conditionOf("metered", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	t.Run("a tenant not Ready yet is counted by its Ready reason", func(t *testing.T) {
		g := NewWithT(t)
		// Its ingest Deployment is not available: envtest runs no
		// Deployment controller.
		ready := conditionOf("metered", analyticsv1alpha1.ConditionReady)()
		g.Expect(ready).To(haveStatus(metav1.ConditionFalse))
		haveTheTenantsOfTheAPI(g)
		g.Expect(tenantsGathered()).To(HaveKeyWithValue(
			seriesKey("region", "EU", "ready", "False", "reason", ready.Reason), BeNumerically(">=", 1)))
	})

	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("metered", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	t.Run("once Ready it is counted as Ready in its region", func(t *testing.T) {
		g := NewWithT(t)
		haveTheTenantsOfTheAPI(g)
		g.Expect(tenantsGathered()).To(HaveKeyWithValue(
			seriesKey("region", "EU", "ready", "True", "reason", analyticsv1alpha1.ReasonReconciled), BeNumerically(">=", 1)))
	})

	t.Run("each region is reported once, Ready, with its database up", func(t *testing.T) {
		g := NewWithT(t)
		for name, region := range map[string]string{"eu": "EU", "us": "US"} {
			g.Eventually(gaugeValue("millimetric_storage_regions", "region", region, "name", name, "ready", "True", "reason", "Connected"),
				wait, tick).Should(BeEquivalentTo(1), name)
			g.Expect(gaugeValue("millimetric_storage_region_database_up", "name", name)()).To(BeEquivalentTo(1), name)
		}
		regions := 0
		for k := range series("millimetric_storage_regions") {
			if strings.Contains(k, `name="eu"`) {
				regions++
			}
		}
		g.Expect(regions).To(Equal(1), "StorageRegion eu has more than one series")
	})

	t.Run("its provisioning, every phase of its reconciles and the regions' checks are timed", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(provisioned()).To(BeNumerically(">", provisionedBefore), "millimetric_provision_duration_seconds{region=EU,outcome=success}")
		for _, p := range tenantPhases {
			g.Expect(phase("analyticstenant", p)()).To(BeNumerically(">", phasesBefore[p]), "phase %s", p)
		}
		g.Expect(phase("storageregion", "check")()).To(BeNumerically(">", checksBefore), "the StorageRegion check")
	})

	t.Run("its retention facts are reported: no raw event, not overdue, no successful run yet", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(gaugeValue("millimetric_tenant_oldest_raw_event_age_seconds", "tenant", "metered")()).To(BeZero())
		g.Expect(gaugeValue("millimetric_tenant_retention_overdue_days", "tenant", "metered")()).To(BeZero())
		_, ok := gauge("millimetric_tenant_retention_last_success_timestamp_seconds", "tenant", "metered")()
		g.Expect(ok).To(BeFalse(), "a last success is reported before any run")

		// Play the CronJob controller: a run succeeded.
		ran := metav1.NewTime(time.Now().Add(-time.Minute).Truncate(time.Second))
		g.Eventually(func() error {
			cj := get(&batchv1.CronJob{}, ns, render.RetentionName)()
			if cj == nil {
				return context.DeadlineExceeded
			}
			cj.Status.LastScheduleTime, cj.Status.LastSuccessfulTime = &ran, &ran
			return k8s.Status().Update(ctx, cj)
		}, wait, tick).Should(Succeed())
		g.Eventually(gaugeValue("millimetric_tenant_retention_last_success_timestamp_seconds", "tenant", "metered"), wait, tick).
			Should(BeEquivalentTo(ran.Unix()))
	})

	t.Run("every metric has help text and a conventional name", func(t *testing.T) {
		g := NewWithT(t)
		// promlint, as testutil.GatherAndLint runs it, without testutil's
		// dependencies.
		families, err := metrics.Registry.Gather()
		g.Expect(err).NotTo(HaveOccurred())
		ours := families[:0]
		for _, f := range families {
			if slices.Contains(operatorMetrics, f.GetName()) {
				ours = append(ours, f)
			}
		}
		g.Expect(ours).NotTo(BeEmpty())
		problems, err := promlint.NewWithMetricFamilies(ours).Lint()
		g.Expect(err).NotTo(HaveOccurred())
		var unexpected []string
		for _, p := range problems {
			// Kept in days, the unit of the plans, for the alert rules
			// already written against it.
			if p.Metric == "millimetric_tenant_retention_overdue_days" && strings.Contains(p.Text, "base unit") {
				continue
			}
			unexpected = append(unexpected, p.Metric+": "+p.Text)
		}
		g.Expect(unexpected).To(BeEmpty())
	})

	t.Run("once deleted, its purge is timed, it is no longer counted and its series are gone", func(t *testing.T) {
		g := NewWithT(t)
		deleteTenant(t, tenant)
		g.Expect(purged()).To(BeNumerically(">", purgedBefore), "millimetric_purge_duration_seconds{region=EU,outcome=success}")
		haveTheTenantsOfTheAPI(g)
		g.Eventually(func() []string { return tenantSeries("metered") }, wait, tick).Should(BeEmpty())
	})
}
