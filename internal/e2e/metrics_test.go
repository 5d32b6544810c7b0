//go:build e2e

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

package e2e

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// scrape is one GET of a metrics endpoint, as `curl` shows it, parsed.
type scrape map[string]*dto.MetricFamily

func scrapeMetrics(g Gomega, url string) scrape {
	resp, err := http.Get(url)
	g.Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	g.Expect(resp.StatusCode).To(Equal(http.StatusOK))
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	g.Expect(err).NotTo(HaveOccurred())
	return families
}

// series are a family's samples as "label=value,..." (sorted) to value;
// a histogram's value is its sample count.
func (s scrape) series(name string) map[string]float64 {
	out := map[string]float64{}
	f, ok := s[name]
	if !ok {
		return out
	}
	for _, m := range f.GetMetric() {
		var labels []string
		for _, l := range m.GetLabel() {
			labels = append(labels, l.GetName()+"="+l.GetValue())
		}
		sort.Strings(labels)
		switch {
		case m.Gauge != nil:
			out[strings.Join(labels, ",")] = m.GetGauge().GetValue()
		case m.Histogram != nil:
			out[strings.Join(labels, ",")] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	return out
}

// tenantsByReadiness is what millimetric_tenants must say of the tenants
// the API server has: their count by region, Ready status and reason.
func tenantsByReadiness(g Gomega) map[string]float64 {
	list := &analyticsv1alpha1.AnalyticsTenantList{}
	g.Expect(k8s.List(context.Background(), list)).To(Succeed())
	out := map[string]float64{}
	for _, t := range list.Items {
		region := t.Spec.Region
		if region == "" {
			region = analyticsv1alpha1.DefaultRegion
		}
		ready, reason := string(metav1.ConditionUnknown), ""
		if c := meta.FindStatusCondition(t.Status.Conditions, analyticsv1alpha1.ConditionReady); c != nil {
			ready, reason = string(c.Status), c.Reason
		}
		out[fmt.Sprintf("ready=%s,reason=%s,region=%s", ready, reason, region)]++
	}
	return out
}

// TestTheMetricsEndpointShowsTenantsAndRegionsAndFollowsARegionsDatabaseGoingDown
// scrapes the operator's metrics endpoint (plain HTTP on a loopback port)
// after a tenant turns Ready, and again after its region's database is
// stopped.
func TestTheMetricsEndpointShowsTenantsAndRegionsAndFollowsARegionsDatabaseGoingDown(t *testing.T) {
	port := freePort(t)
	startOperator(t, "a", fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--metrics-secure=false")
	withRegions(t)
	g := NewWithT(t)
	url := fmt.Sprintf("http://127.0.0.1:%d/metrics", port)
	const name = "e2e-metrics"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{
		Region: analyticsv1alpha1.RegionEU,
		Ingest: &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](1)},
	})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	t.Run("with the tenant Ready, the gauges count it Ready in its region and both regions' databases up", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			m := scrapeMetrics(g, url)
			tenants := m.series("millimetric_tenants")
			g.Expect(tenants).To(HaveKeyWithValue("ready=True,reason=Reconciled,region=EU", 1.0))
			g.Expect(tenants).To(Equal(tenantsByReadiness(g)), "millimetric_tenants against the API server's tenants")
			g.Expect(m.series("millimetric_storage_regions")).To(Equal(map[string]float64{
				"name=eu,ready=True,reason=Connected,region=EU": 1,
				"name=us,ready=True,reason=Connected,region=US": 1,
			}))
			g.Expect(m.series("millimetric_storage_region_database_up")).To(Equal(map[string]float64{"name=eu": 1, "name=us": 1}))
			g.Expect(m.series("millimetric_tenant_oldest_raw_event_age_seconds")).To(HaveKeyWithValue("tenant="+name, 0.0))
			g.Expect(m.series("millimetric_tenant_retention_overdue_days")).To(HaveKeyWithValue("tenant="+name, 0.0))
			g.Expect(m.series("millimetric_provision_duration_seconds")).To(HaveKeyWithValue("outcome=success,region=EU", BeNumerically(">=", 1)))
			// Every phase ran on the way to Ready, so each has observations.
			phases := m.series("millimetric_reconcile_phase_duration_seconds")
			g.Expect(phases).To(HaveKeyWithValue("controller=analyticstenant,phase=storage", BeNumerically(">=", 1)))
			g.Expect(phases).To(HaveKeyWithValue("controller=storageregion,phase=check", BeNumerically(">=", 1)))
			for series, n := range phases {
				g.Expect(n).To(BeNumerically(">=", 1), series)
			}
		}, wait, tick).Should(Succeed())
	})

	stopDatabase(t)
	for _, region := range regionNames {
		nudge(t, &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: region}})
	}

	t.Run("with the database stopped, both regions are down and not Ready", func(t *testing.T) {
		g := NewWithT(t)
		g.Eventually(func(g Gomega) {
			m := scrapeMetrics(g, url)
			g.Expect(m.series("millimetric_storage_region_database_up")).To(Equal(map[string]float64{"name=eu": 0, "name=us": 0}))
			g.Expect(m.series("millimetric_storage_regions")).To(Equal(map[string]float64{
				"name=eu,ready=False,reason=" + analyticsv1alpha1.ReasonConnectionFailed + ",region=EU": 1,
				"name=us,ready=False,reason=" + analyticsv1alpha1.ReasonConnectionFailed + ",region=US": 1,
			}))
		}, wait, tick).Should(Succeed())
	})

	t.Run("once the operator looks at the tenant again, it is counted not Ready with its region unavailable", func(t *testing.T) {
		g := NewWithT(t)
		nudge(t, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}})
		g.Eventually(func() string { return readyCondition(name) }, wait, tick).
			Should(Equal("False/" + analyticsv1alpha1.ReasonRegionUnavailable))
		g.Eventually(func(g Gomega) {
			tenants := scrapeMetrics(g, url).series("millimetric_tenants")
			g.Expect(tenants).To(HaveKeyWithValue("ready=False,reason="+analyticsv1alpha1.ReasonRegionUnavailable+",region=EU", 1.0))
			g.Expect(tenants).NotTo(HaveKey("ready=True,reason=Reconciled,region=EU"))
			g.Expect(tenants).To(Equal(tenantsByReadiness(g)))
		}, wait, tick).Should(Succeed())
	})
}
