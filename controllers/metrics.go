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
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// The operator's own metrics. They are registered in controller-runtime's
// registry, so the manager serves them on its metrics endpoint beside
// controller-runtime's own. Every label is bounded: by the regions, the
// condition reasons, the phases, or (for the per-tenant gauges) the tenants
// of this instance's shard, whose series go with them (forgetTenantMetrics).

// Values of the controller label of millimetric_reconcile_phase_duration_seconds:
// the names the reconcilers are registered under, as in controller-runtime's
// own metrics.
const (
	controllerTenant = "analyticstenant"
	controllerRegion = "storageregion"
)

// Values of the outcome label of the provisioning and purge histograms.
const (
	outcomeSuccess = "success"
	outcomeError   = "error"
)

// scrapeTimeout bounds the wait for an informer at scrape time: the cache is
// synced by then, but the first scrape may create an informer no controller
// has asked for yet.
const scrapeTimeout = 10 * time.Second

var (
	// The gauges that describe objects (how many tenants are Ready, which
	// regions reach their database) are computed at scrape time from the
	// manager's cache, by tenantsCollector and regionsCollector, rather than
	// kept in gauges updated at each status write: such gauges would go stale
	// whenever an object changes without this instance writing its status (a
	// deletion, a tenant leaving the shard, a restart before the first
	// reconcile), and would each need its own bookkeeping to unwind. The
	// cache is what the reconcilers act on, and listing it makes no API
	// call.
	tenantsDesc = prometheus.NewDesc("millimetric_tenants",
		"Number of AnalyticsTenants this instance reconciles, by region (EU, US), Ready status (True, False, Unknown when "+
			"not yet reconciled) and Ready reason; a combination with no tenant has no series.",
		[]string{"region", "ready", "reason"}, nil)
	storageRegionsDesc = prometheus.NewDesc("millimetric_storage_regions",
		"1 for each StorageRegion, with the region it serves, its name, its Ready status (True, False, Unknown when not "+
			"yet checked) and its Ready reason.",
		[]string{"region", "name", "ready", "reason"}, nil)
	databaseUpDesc = prometheus.NewDesc("millimetric_storage_region_database_up",
		"1 when the StorageRegion's last check logged in to its database as the administrator (Ready reason Connected), "+
			"0 when it tried to and could not (ConnectionFailed, AuthenticationFailed, TLSFailed, DatabaseMissing, InvalidConfig, "+
			"...). No series "+
			"while the region is not checked or its check stops before connecting (DuplicateRegion, SecretMissing, "+
			"SecretNotAllowed, InsecureConnection): the database is then not known to be down.",
		[]string{"name"}, nil)
	overdueHoldDesc = prometheus.NewDesc("millimetric_storage_region_overdue_hold_seconds",
		"How long the first hold of a deleted tenant's data (deletionPolicy Retain) that the StorageRegion's last listing "+
			"of its database found has been past its end without being purged (status.nextRetainedExpiry before now): its "+
			"sweep fails, or the region has not been checked since. 0 when no hold is past its end; no series before the "+
			"region's holds were first listed.",
		[]string{"name"}, nil)

	ingestRolloutsDesc = prometheus.NewDesc("millimetric_tenant_ingest_rollouts",
		"Tenants whose ingest pod template change holds one of the --max-concurrent-tenant-rollouts slots (state "+
			"rolling) or waits for one (state queued: its Ready reason is RolloutQueued), as the leader's gate counts "+
			"them: rollouts a previous leader started are counted from the first template change this one makes. No "+
			"series without a limit (0).",
		[]string{"state"}, nil)

	provisionDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "millimetric_provision_duration_seconds",
		Help: "Time to provision a tenant's schema and roles in its region's database (when its storage fingerprint " +
			"changed, at its periodic verification, or on request), by region and outcome (success, error).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5ms to 10s
	}, []string{"region", "outcome"})
	purgeDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "millimetric_purge_duration_seconds",
		Help: "Time to purge a deleted tenant's schema, data and roles from its region's database and verify nothing is " +
			"left, by region and outcome (success, error).",
		Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5ms to 10s
	}, []string{"region", "outcome"})
	phaseDuration = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "millimetric_reconcile_phase_duration_seconds",
		Help: "Time each phase of a reconcile takes, by controller (analyticstenant, storageregion) and phase; a phase " +
			"after one that stopped the reconcile is not run, so not observed.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 14), // 0.5ms to 4s
	}, []string{"controller", "phase"})

	// retentionOverdueDays is for an alert on the retention promise itself
	// rather than on the CronJob.
	retentionOverdueDays = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "millimetric_tenant_retention_overdue_days",
		Help: "Days the tenant's oldest raw event is past its plan's retention window, when that is more than the " +
			"grace of the daily retention run (RetentionCompliant False); 0 when the tenant is compliant.",
	}, []string{"tenant"})
	retentionLastSuccess = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "millimetric_tenant_retention_last_success_timestamp_seconds",
		Help: "Unix time the tenant's retention CronJob last completed a run successfully (its status.lastSuccessfulTime); " +
			"no series until it has.",
	}, []string{"tenant"})
	oldestRawEventAge = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Name: "millimetric_tenant_oldest_raw_event_age_seconds",
		Help: "Age of the oldest UTC day still holding raw events of the tenant (from 00:00 of that day), as of the " +
			"last check (hourly, and at once after a retention run or a spec change); 0 when there is no raw event.",
	}, []string{"tenant"})

	tenantGauges  = &tenantsCollector{}
	regionGauges  = &regionsCollector{}
	rolloutGauges = &rolloutsCollector{}
)

func init() {
	metrics.Registry.MustRegister(Collectors()...)
}

// Collectors are the operator's own metrics, as the manager serves them
// beside controller-runtime's: the chart's Grafana dashboard may query
// only these and ingest's (internal/chart's
// TestTheDashboardQueriesOnlyMetricsTheCodeExports reads their names).
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{tenantGauges, regionGauges, rolloutGauges, provisionDuration, purgeDuration, phaseDuration,
		retentionOverdueDays, retentionLastSuccess, oldestRawEventAge, apiRequests}
}

// forgetTenantMetrics deletes the tenant's series: it is gone, or another
// instance owns it.
func forgetTenantMetrics(tenant string) {
	retentionOverdueDays.DeleteLabelValues(tenant)
	retentionLastSuccess.DeleteLabelValues(tenant)
	oldestRawEventAge.DeleteLabelValues(tenant)
}

// observeOutcome observes the time since start in h, labelled with the
// region and whether err says it failed.
func observeOutcome(h *prometheus.HistogramVec, region analyticsv1alpha1.Region, start time.Time, err error) {
	outcome := outcomeSuccess
	if err != nil {
		outcome = outcomeError
	}
	h.WithLabelValues(string(region), outcome).Observe(time.Since(start).Seconds())
}

// phaseTimer is the histogram of one phase of a controller, resolved once so
// a reconcile pays only for reading the clock and the observation.
func phaseTimer(controller, phase string) prometheus.Observer {
	return phaseDuration.WithLabelValues(controller, phase)
}

// collectWhileLeading adds a scrape source when the manager starts its
// leader's runnables (after its caches have synced) and removes it when the
// manager stops. Only the leader then reports: a standby's counts would
// double those of the instance that acts on them.
func collectWhileLeading[T any](mgr manager.Manager, set *sources[T], source T) error {
	return mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		remove := set.add(source)
		<-ctx.Done()
		remove()
		return nil
	}))
}

// sources are what a collector reads at scrape time: one per running
// manager. A process runs one manager; tests run several.
type sources[T any] struct {
	mu   sync.Mutex
	next int
	set  map[int]T
}

// add adds a source and returns the function that removes it.
func (s *sources[T]) add(source T) (remove func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set == nil {
		s.set = map[int]T{}
	}
	id := s.next
	s.next++
	s.set[id] = source
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.set, id)
	}
}

// all is the sources now.
func (s *sources[T]) all() []T {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]T, 0, len(s.set))
	for _, v := range s.set {
		out = append(out, v)
	}
	return out
}

// tenantSource is a manager's cache of AnalyticsTenants and the selector of
// the shard its reconciler owns.
type tenantSource struct {
	cache    client.Reader
	selector labels.Selector
}

// tenantsCollector is millimetric_tenants, counted from the caches at scrape
// time. Instances' shards are disjoint, so the counts of several sources add
// up.
type tenantsCollector struct{ sources sources[tenantSource] }

// Describe implements prometheus.Collector.
func (c *tenantsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tenantsDesc }

// Collect implements prometheus.Collector.
func (c *tenantsCollector) Collect(ch chan<- prometheus.Metric) {
	type key struct{ region, ready, reason string }
	counts := map[key]int{}
	for _, src := range c.sources.all() {
		var list analyticsv1alpha1.AnalyticsTenantList
		if !listForScrape(src.cache, &list, "AnalyticsTenants") {
			continue
		}
		for i := range list.Items {
			t := &list.Items[i]
			if src.selector != nil && !src.selector.Matches(labels.Set(t.Labels)) {
				continue
			}
			// Not Spec.Effective(), which builds the whole effective spec.
			region := t.Spec.Region
			if region == "" {
				region = analyticsv1alpha1.DefaultRegion
			}
			ready, reason := readyStatus(t.Status.Conditions)
			counts[key{string(region), ready, reason}]++
		}
	}
	for k, n := range counts {
		ch <- prometheus.MustNewConstMetric(tenantsDesc, prometheus.GaugeValue, float64(n), k.region, k.ready, k.reason)
	}
}

// rolloutsCollector is millimetric_tenant_ingest_rollouts, read from the
// leaders' rollout gates at scrape time. Instances' shards are disjoint, so
// the counts of several gates add up.
type rolloutsCollector struct{ sources sources[*rolloutGate] }

// Describe implements prometheus.Collector.
func (c *rolloutsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ingestRolloutsDesc }

// Collect implements prometheus.Collector.
func (c *rolloutsCollector) Collect(ch chan<- prometheus.Metric) {
	limited := false
	var rolling, queued int
	for _, g := range c.sources.all() {
		if g.max <= 0 {
			continue
		}
		limited = true
		r, q := g.counts()
		rolling, queued = rolling+r, queued+q
	}
	if !limited {
		return
	}
	ch <- prometheus.MustNewConstMetric(ingestRolloutsDesc, prometheus.GaugeValue, float64(rolling), "rolling")
	ch <- prometheus.MustNewConstMetric(ingestRolloutsDesc, prometheus.GaugeValue, float64(queued), "queued")
}

// regionSource is a manager's cache of StorageRegions and the clock of its
// StorageRegion reconciler, which decides which holds have ended.
type regionSource struct {
	cache client.Reader
	now   func() time.Time
}

// regionsCollector is millimetric_storage_regions,
// millimetric_storage_region_database_up and
// millimetric_storage_region_overdue_hold_seconds, read from the caches at
// scrape time. Every source caches every StorageRegion; each is reported
// once.
type regionsCollector struct{ sources sources[regionSource] }

// Describe implements prometheus.Collector.
func (c *regionsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- storageRegionsDesc
	ch <- databaseUpDesc
	ch <- overdueHoldDesc
}

// Collect implements prometheus.Collector.
func (c *regionsCollector) Collect(ch chan<- prometheus.Metric) {
	seen := map[string]bool{}
	for _, src := range c.sources.all() {
		var list analyticsv1alpha1.StorageRegionList
		if !listForScrape(src.cache, &list, "StorageRegions") {
			continue
		}
		now := time.Now()
		if src.now != nil {
			now = src.now()
		}
		for i := range list.Items {
			sr := &list.Items[i]
			if seen[sr.Name] {
				continue
			}
			seen[sr.Name] = true
			ready, reason := readyStatus(sr.Status.Conditions)
			ch <- prometheus.MustNewConstMetric(storageRegionsDesc, prometheus.GaugeValue, 1, string(sr.Spec.Region), sr.Name, ready, reason)
			if up, known := databaseUp(ready, reason); known {
				ch <- prometheus.MustNewConstMetric(databaseUpDesc, prometheus.GaugeValue, up, sr.Name)
			}
			if sr.Status.Retained != nil {
				ch <- prometheus.MustNewConstMetric(overdueHoldDesc, prometheus.GaugeValue, overdueHold(&sr.Status, now).Seconds(), sr.Name)
			}
		}
	}
}

// overdueHold is how long the first hold of the region's last listing has
// been past its end at now, 0 when it has not ended or there is none. The
// status is what the region's check last saw after its sweep, which
// purges every hold that has ended: a hold still listed past its end is one
// the sweep failed to purge, and one whose region has not been checked since
// (its database unreachable, its Secret missing) is not known to be purged
// either. Either way the data outlives what the policy promises.
func overdueHold(status *analyticsv1alpha1.StorageRegionStatus, now time.Time) time.Duration {
	if status.NextRetainedExpiry == nil || ptr.Deref(status.Retained, 0) == 0 {
		return 0
	}
	return max(now.Sub(status.NextRetainedExpiry.Time), 0)
}

// databaseUp says what a StorageRegion's Ready condition tells of its
// database: 1 when the check logged in, 0 when it tried to with the
// region's settings and could not; known is false when the check did not
// try (regionReasonsBeforeConnecting) or has not run.
func databaseUp(ready, reason string) (up float64, known bool) {
	switch {
	case ready == string(metav1.ConditionUnknown):
		return 0, false
	case reason == analyticsv1alpha1.ReasonConnected:
		return 1, true
	case slices.Contains(regionReasonsBeforeConnecting, reason):
		return 0, false
	default:
		return 0, true
	}
}

// readyStatus is the status and reason of the Ready condition among conditions:
// Unknown with no reason before there is one.
func readyStatus(conditions []metav1.Condition) (status, reason string) {
	c := meta.FindStatusCondition(conditions, analyticsv1alpha1.ConditionReady)
	if c == nil {
		return string(metav1.ConditionUnknown), ""
	}
	return string(c.Status), c.Reason
}

// listForScrape lists from a cache for a scrape without copying the cached
// objects (the collectors only read them), and logs a failure: a scrape
// fails as a whole on an invalid metric, so the objects are left out
// instead.
func listForScrape(cache client.Reader, list client.ObjectList, what string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if err := cache.List(ctx, list, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.Log.WithName("metrics").Error(err, "listing "+what+" from the cache for a scrape; they are left out of it")
		return false
	}
	return true
}
