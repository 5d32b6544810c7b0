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

package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/memlimit"
	"github.com/millimetric/tenant-operator/internal/render"
)

const (
	systemNamespace = "millimetric-system"
	adminSecretName = "pg-bench-admin"
	// benchLabel marks the bench's tenants.
	benchLabel = "bench.millimetric.ai/scale"
	// tenantPrefix and floorPrefix name the operator's tenants and the
	// floor's stand-ins; the floor's namespaces are tenant-floor-NNNNN.
	tenantPrefix = "bench-"
	floorPrefix  = "floor-"
	// rateLimit is the tenants' ingest rate limit; a spec change sets
	// another.
	rateLimit = 600
)

var scheme = runtime.NewScheme()

func init() {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(analyticsv1alpha1.AddToScheme(scheme))
}

// bench is one run of the operator mode.
type bench struct {
	c       config
	cfg     *rest.Config
	k8s     client.Client
	tr      *tracker
	regions map[analyticsv1alpha1.Region]*analyticsv1alpha1.StorageRegion
	table   *table
}

func runOperatorBench(ctx context.Context, c config) (err error) {
	// controller-runtime's own log (the bench's watches) is not wanted:
	// a failed step says what it waited for.
	log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	cfg, err := ctrl.GetConfig()
	if err != nil {
		return fmt.Errorf("KUBECONFIG must point at the bench's cluster: %w", err)
	}
	// The bench's own client is not what is measured: no client-side limit.
	cfg.QPS, cfg.Burst = -1, 0
	k8s, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	b := &bench{c: c, cfg: cfg, k8s: k8s, table: &table{
		title: fmt.Sprintf("make bench-scale N=%d: %d tenants of %d ingest replicas, --max-concurrent-reconciles=%d; operator at %s; %s",
			c.n, c.n, c.replicas, c.workers, c.commit, machine()),
		header: []string{"figure", "operator", "floor (same objects applied straight)"},
	}}
	// Whatever happens, what was measured is printed.
	defer func() {
		if err != nil {
			b.table.note("**Incomplete**: %v", err)
		}
		b.table.print()
	}()
	if b.tr, err = startTracker(ctx, cfg); err != nil {
		return err
	}
	if err := b.applyRegions(ctx); err != nil {
		return err
	}

	// The floor first, on the cluster alone, then gone before the operator
	// starts, so neither shares the cluster with the other.
	floorReady, floorDeleted, floorWrites := "not measured (-floor=false)", "", ""
	if c.floor {
		logf("floor: applying the child objects of %d tenants straight through the API server (%d workers)", c.n, c.workers)
		ready, deleted, writes, err := b.floor(ctx)
		if err != nil {
			return fmt.Errorf("floor: %w", err)
		}
		floorReady = secs(ready) + fmt.Sprintf(" (%.1f tenants/s)", float64(c.n)/ready.Seconds())
		floorDeleted, floorWrites = "– / "+secs(deleted), fmt.Sprintf("%d / 0", writes)
	}

	op, err := startOperator(ctx, c)
	if err != nil {
		return err
	}
	defer op.stop()
	if err := b.waitRegionsReady(ctx); err != nil {
		return err
	}
	// The baseline: the operator before the N tenants, after -warm tenants
	// have converged (what the first tenants set up once is then in it).
	warm := make([]string, c.warm)
	for i := range warm {
		warm[i] = fmt.Sprintf("%swarm-%03d", tenantPrefix, i)
	}
	baselineName := "the empty operator"
	if c.warm > 0 {
		baselineName = fmt.Sprintf("the operator with %d tenants", c.warm)
		logf("operator: warming up with %d tenants", c.warm)
		if err := parallel(ctx, 8, c.warm, func(ctx context.Context, i int) error {
			return b.k8s.Create(ctx, b.tenant(warm[i], i))
		}); err != nil {
			return fmt.Errorf("creating the warm-up tenants: %w", err)
		}
		if err := waitFor(ctx, fmt.Sprintf("%d warm-up tenants to be Ready", c.warm), convergeTimeout(c.warm), func() (bool, string) {
			ready, _, notReady := b.tr.readyTenants(warm)
			return ready == c.warm, fmt.Sprintf("%d of %d Ready; not yet: %s", ready, c.warm, notReady)
		}); err != nil {
			return err
		}
		if err := sleep(ctx, c.settle); err != nil {
			return err
		}
	}
	baseline, err := op.sample(ctx)
	if err != nil {
		return err
	}
	baselineLive, baselineProfile, err := op.heapProfile(ctx, "baseline")
	if err != nil {
		return err
	}

	names := make([]string, c.n)
	namespaces := make([]string, c.n)
	for i := range names {
		names[i] = fmt.Sprintf("%s%05d", tenantPrefix, i)
		namespaces[i] = render.DefaultNamespacePrefix + names[i]
	}
	logf("operator: creating %d tenants", c.n)
	start := time.Now()
	if err := parallel(ctx, 8, c.n, func(ctx context.Context, i int) error {
		return b.k8s.Create(ctx, b.tenant(names[i], i))
	}); err != nil {
		return fmt.Errorf("creating tenants: %w", err)
	}
	created := time.Since(start)
	var lastReady time.Time
	err = waitFor(ctx, fmt.Sprintf("%d tenants to be Ready", c.n), convergeTimeout(c.n), func() (bool, string) {
		ready, last, notReady := b.tr.readyTenants(names)
		lastReady = last
		progress(ready, c.n, "tenants Ready")
		return ready == c.n, fmt.Sprintf("%d of %d Ready; not yet: %s", ready, c.n, notReady)
	})
	if err != nil {
		return err
	}
	converged, err := op.sample(ctx)
	if err != nil {
		return err
	}
	toReady := lastReady.Sub(start)
	b.table.add("tenants created (the bench's own creates)", secs(created), "")
	b.table.add("time until all are Ready / their Deployments available",
		secs(toReady)+fmt.Sprintf(" (%.1f tenants/s)", float64(c.n)/toReady.Seconds()), floorReady)
	cpu := converged.cpu() - baseline.cpu()
	b.table.add("operator CPU per tenant converged", fmt.Sprintf("%.1f ms (%.0f s in all)", 1000*cpu/float64(c.n), cpu), "")
	b.table.add("writes / reads to converge, per tenant", fmt.Sprintf("%.1f / %.1f",
		(converged.writes()-baseline.writes())/float64(c.n), (converged.reads()-baseline.reads())/float64(c.n)), floorWrites)

	logf("operator: converged in %s; settling for %s, then at rest for %s", secs(toReady), c.settle, c.window)
	if err := sleep(ctx, c.settle); err != nil {
		return err
	}
	restStart, err := op.sample(ctx)
	if err != nil {
		return err
	}
	if err := sleep(ctx, c.window); err != nil {
		return err
	}
	rest, err := op.sample(ctx)
	if err != nil {
		return err
	}
	restLive, restProfile, err := op.heapProfile(ctx, "at-rest")
	if err != nil {
		return err
	}
	w := rest.at.Sub(restStart.at)
	n := float64(c.n)
	all := n + float64(c.warm)
	b.table.add("RSS at rest: total / over all tenants / per tenant above "+baselineName,
		fmt.Sprintf("%s / %s / %s", mib(rest.rss.total), kib(rest.rss.total/all), kib((rest.rss.total-baseline.rss.total)/n)), "")
	b.table.add("RSS at rest above "+baselineName+": anonymous (heap, stacks), per tenant / file-backed (the binary's pages), in all",
		fmt.Sprintf("%s / %s", kib((rest.rss.anon-baseline.rss.anon)/n), mib(rest.rss.file-baseline.rss.file)), "")
	b.table.add("Go heap in use at rest: total / over all tenants / per tenant above "+baselineName,
		fmt.Sprintf("%s / %s / %s", mib(rest.heap()), kib(rest.heap()/all), kib((rest.heap()-baseline.heap())/n)), "")
	b.table.add("Go heap at rest, per tenant above "+baselineName+": live (after a collection) / in use / held from the OS",
		fmt.Sprintf("%s / %s / %s", kib((restLive.heapAlloc()-baselineLive.heapAlloc())/n), kib((rest.heap()-baseline.heap())/n),
			kib((rest.heapHeld()-baseline.heapHeld())/n)), "")
	b.table.note("Heap profiles (live heap): %s, %s; what the tenants hold: go tool pprof -sample_index=inuse_space -diff_base %s %s %s.",
		baselineProfile, restProfile, baselineProfile, c.manager, restProfile)
	b.table.add(fmt.Sprintf("at rest, per minute (%s window): writes / reads / watches started or renewed", secs(w)),
		fmt.Sprintf("%s / %s / %s", perMin(rest.writes()-restStart.writes(), w), perMin(rest.reads()-restStart.reads(), w),
			perMin(rest.watches()-restStart.watches(), w)), "")
	b.table.add("at rest, per minute: tenant reconciles / region reconciles / provisionings in PostgreSQL",
		fmt.Sprintf("%s / %s / %s",
			perMin(rest.reconciles("analyticstenant")-restStart.reconciles("analyticstenant"), w),
			perMin(rest.reconciles("storageregion")-restStart.reconciles("storageregion"), w),
			perMin(rest.provisions()-restStart.provisions(), w)), "")
	b.table.add("at rest, CPU", fmt.Sprintf("%.1f%% of a core", 100*(rest.cpu()-restStart.cpu())/w.Seconds()), "")
	b.table.note("Machine load (1-minute load average) at the end of the at-rest window: %s.", loadAverage())
	gogc := c.gogc
	if gogc == "" {
		gogc = os.Getenv("GOGC")
	}
	if gogc == "" {
		gogc = fmt.Sprintf("%d (the manager's default when GOGC is unset)", memlimit.GCPercent)
	}
	b.table.note("The manager's GOGC: %s.", gogc)

	if err := b.specChanges(ctx, names); err != nil {
		return err
	}

	// The warm-up tenants go with the rest.
	for _, name := range warm {
		names = append(names, name)
		namespaces = append(namespaces, render.DefaultNamespacePrefix+name)
	}
	logf("operator: deleting %d tenants", len(names))
	start = time.Now()
	if err := parallel(ctx, 8, len(names), func(ctx context.Context, i int) error {
		err := b.k8s.Delete(ctx, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: names[i]}})
		return client.IgnoreNotFound(err)
	}); err != nil {
		return fmt.Errorf("deleting tenants: %w", err)
	}
	tenantsGone, err := b.waitGone(ctx, "tenants", names, false, start)
	if err != nil {
		return err
	}
	nsGone, err := b.waitGone(ctx, "tenant namespaces", namespaces, true, start)
	if err != nil {
		return err
	}
	b.table.add("deletion: all tenants gone (storage purged) / all their namespaces gone", fmt.Sprintf("%s / %s", secs(tenantsGone), secs(nsGone)),
		floorDeleted)
	if c.warm > 0 {
		b.table.note("The per-tenant figures are of the N tenants, above the operator once %d warm-up tenants had converged (-warm); the deletion is of all %d.", c.warm, len(names))
	}
	if !c.floor {
		return nil
	}
	b.table.note("Floor: the same child objects (internal/render) server-side applied by %d workers, without owner references, in namespaces tenant-floor-*, "+
		"until every ingest Deployment is available; then the namespaces deleted. It runs first, alone on the cluster, and is gone before the operator starts.", c.workers)
	return nil
}

// progress logs every tenth of the way of what.
var (
	progressMu   sync.Mutex
	lastProgress = map[string]int{}
)

func progress(done, of int, what string) {
	progressMu.Lock()
	defer progressMu.Unlock()
	bucket := done / max(1, of/10)
	if last, ok := lastProgress[what]; !ok || bucket != last {
		lastProgress[what] = bucket
		logf("%d of %d %s", done, of, what)
	}
}

// convergeTimeout is how long N tenants may take to turn Ready: generous,
// so a slow machine gives a figure rather than an error.
func convergeTimeout(n int) time.Duration { return 10*time.Minute + time.Duration(n)*time.Second }

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// parallel runs fn for 0..n-1 on workers goroutines; the first error stops
// the rest.
func parallel(ctx context.Context, workers, n int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					cancel(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	return ctx.Err()
}

// tenant is the bench's tenant number i: the acme sample's shape, in EU or
// US in turn.
func (b *bench) tenant(name string, i int) *analyticsv1alpha1.AnalyticsTenant {
	region := analyticsv1alpha1.RegionEU
	if i%2 == 1 {
		region = analyticsv1alpha1.RegionUS
	}
	return &analyticsv1alpha1.AnalyticsTenant{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{benchLabel: "true"}},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{
			Region:        region,
			RetentionDays: ptr.To[int32](90),
			Domains:       []analyticsv1alpha1.Domain{analyticsv1alpha1.Domain(name + ".example.com")},
			Ingest: &analyticsv1alpha1.IngestSpec{
				Replicas:  ptr.To(int32(b.c.replicas)),
				RateLimit: &analyticsv1alpha1.RateLimitSpec{EventsPerMinutePerIP: rateLimit},
			},
		},
	}
}

// applyRegions makes StorageRegions eu and us for the local PostgreSQL's
// events_eu and events_us, as internal/e2e's withRegions does.
func (b *bench) applyRegions(ctx context.Context) error {
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: adminSecretName}}
	if _, err := controllerutil.CreateOrUpdate(ctx, b.k8s, secret, func() error {
		secret.StringData = map[string]string{"username": b.c.pgUser, "password": b.c.pgPassword}
		return nil
	}); err != nil {
		return fmt.Errorf("admin Secret: %w", err)
	}
	b.regions = map[analyticsv1alpha1.Region]*analyticsv1alpha1.StorageRegion{}
	for name, region := range map[string]analyticsv1alpha1.Region{"eu": analyticsv1alpha1.RegionEU, "us": analyticsv1alpha1.RegionUS} {
		sr := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if _, err := controllerutil.CreateOrUpdate(ctx, b.k8s, sr, func() error {
			sr.Spec = analyticsv1alpha1.StorageRegionSpec{
				Region: region,
				Postgres: analyticsv1alpha1.PostgresSpec{
					Host: b.c.pgHost, Port: ptr.To(int32(b.c.pgPort)), Database: "events_" + name,
					SSLMode:        analyticsv1alpha1.SSLModeDisable,
					AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: systemNamespace, Name: adminSecretName},
				},
				Egress: &analyticsv1alpha1.EgressSpec{
					To:    []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: b.c.pgHost + "/32"}}},
					Ports: []networkingv1.NetworkPolicyPort{{Port: ptr.To(intstr.FromInt(b.c.pgPort))}},
				},
			}
			return nil
		}); err != nil {
			return fmt.Errorf("StorageRegion %s: %w", name, err)
		}
		b.regions[region] = sr
	}
	return nil
}

func (b *bench) waitRegionsReady(ctx context.Context) error {
	return waitFor(ctx, "StorageRegions eu and us to be Ready", 2*time.Minute, func() (bool, string) {
		for _, name := range []string{"eu", "us"} {
			sr := &analyticsv1alpha1.StorageRegion{}
			if err := b.k8s.Get(ctx, client.ObjectKey{Name: name}, sr); err != nil {
				return false, err.Error()
			}
			if c := meta.FindStatusCondition(sr.Status.Conditions, analyticsv1alpha1.ConditionReady); c == nil || c.Status != metav1.ConditionTrue {
				if c == nil {
					return false, name + ": not checked yet"
				}
				return false, fmt.Sprintf("%s: %s: %s", name, c.Reason, c.Message)
			}
		}
		return true, ""
	})
}

// waitGone waits until none of names (tenants, or namespaces) is left and
// returns the time from start until the last went.
func (b *bench) waitGone(ctx context.Context, what string, names []string, namespaces bool, start time.Time) (time.Duration, error) {
	var goneAt time.Time
	err := waitFor(ctx, "every one of the "+what+" to be gone", convergeTimeout(len(names)), func() (bool, string) {
		left, some, at := b.tr.remaining(names, namespaces)
		goneAt = at
		progress(len(names)-left, len(names), what+" gone")
		return left == 0, fmt.Sprintf("%d %s left, such as %s", left, what, some)
	})
	if err != nil {
		return 0, err
	}
	if goneAt.Before(start) {
		return 0, nil
	}
	return goneAt.Sub(start), nil
}

// specChanges changes the ingest rate limit of samples tenants spread over
// the N, one at a time while the rest sit idle, and times the change to
// the ingest Deployment (its pod template's config hash) and to Ready at
// the new generation.
func (b *bench) specChanges(ctx context.Context, names []string) error {
	k := min(b.c.samples, len(names))
	if k == 0 {
		return nil
	}
	logf("operator: changing the spec of %d tenants, one at a time", k)
	var toChild, toReady []time.Duration
	for s := range k {
		name := names[s*len(names)/k]
		ns := render.DefaultNamespacePrefix + name
		before := b.tr.deployment(ns).configHash
		patch := fmt.Sprintf(`{"spec":{"ingest":{"rateLimit":{"eventsPerMinutePerIP":%d}}}}`, rateLimit+1+s)
		t := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
		start := time.Now()
		if err := b.k8s.Patch(ctx, t, client.RawPatch(types.MergePatchType, []byte(patch))); err != nil {
			return fmt.Errorf("patching %s: %w", name, err)
		}
		gen := t.Generation
		var childAt, readyAt time.Time
		err := waitFor(ctx, fmt.Sprintf("tenant %s's spec change (generation %d) to reach its Deployment and Ready", name, gen), 3*time.Minute, func() (bool, string) {
			d := b.tr.deployment(ns)
			if d.configHash != before && childAt.IsZero() {
				childAt = d.hashAt
			}
			st := b.tr.tenant(name)
			if st.ready && st.readyGen >= gen {
				readyAt = st.readyAt
			}
			return !childAt.IsZero() && !readyAt.IsZero(), fmt.Sprintf("Deployment changed: %t; Ready: %s (%s)", !childAt.IsZero(), st.reason, st.message)
		})
		if err != nil {
			return err
		}
		toChild = append(toChild, childAt.Sub(start))
		toReady = append(toReady, readyAt.Sub(start))
	}
	b.table.add(fmt.Sprintf("spec change → changed Deployment, p50 / p99 (%d tenants, one at a time)", k),
		fmt.Sprintf("%s / %s", ms(quantile(toChild, 0.5)), ms(quantile(toChild, 0.99))), "")
	b.table.add("spec change → Ready at the new generation (rolled out), p50 / p99",
		fmt.Sprintf("%s / %s", ms(quantile(toReady, 0.5)), ms(quantile(toReady, 0.99))), "")
	return nil
}
