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
	"runtime"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// liveHeap is the heap in use after a full collection.
func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// BenchmarkHeapPerTenant measures what converged tenants cost the
// operator's process in live heap: mostly the manager's cache of their
// children. n tenants are created and converged (their last child, the
// CronJob, in the reconciler's cache), and the live heap grown since is
// divided by n. It runs once whatever b.N; `make bench` prints it.
func BenchmarkHeapPerTenant(b *testing.B) {
	const warm, n = 20, 100
	withRegions(b)
	// A first batch pays what is paid once (the API schemas the managed
	// fields are read with, JSON and protobuf type caches, connection
	// pools); the second batch is the cost per tenant.
	converge(b, "heap-warm", warm)
	before := liveHeap()
	converge(b, "heap", n)
	time.Sleep(2 * time.Second)
	after := liveHeap()
	// The work is done once; the loop only satisfies the benchmark
	// protocol, and comes before the report, which it would reset.
	for b.Loop() {
	}
	b.ReportMetric(float64(int64(after)-int64(before))/n, "heap-B/tenant")
}

// BenchmarkHeapPerClaim measures what a tenant costs a sharded instance
// that routes tenants for its view of every tenant's hostnames (the claims
// cache), on top of what BenchmarkHeapPerTenant measures for the tenants
// of its own shard: n tenants of a shard no instance owns, one hostname
// each, are created, and the live heap grown once the instance's claims
// cache lists them all is divided by n. It runs once whatever b.N; `make
// bench` prints it.
func BenchmarkHeapPerClaim(b *testing.B) {
	const warm, n = 100, 1000
	withRegions(b)
	claims := controllers.ClaimsOf(startInstance(b, "heap-claims", routing).reconciler)
	// A first batch pays what is paid once (type caches, the informer's
	// buffers); the second batch is the cost per tenant.
	listClaims(b, claims, "claims-warm", warm)
	before := liveHeap()
	listClaims(b, claims, "claims", n)
	time.Sleep(2 * time.Second)
	after := liveHeap()
	for b.Loop() {
	}
	b.ReportMetric(float64(int64(after)-int64(before))/n, "heap-B/claim")
}

// listClaims creates n tenants named prefix-NNN in a shard of their own,
// which no instance reconciles, each claiming the hostname
// prefix-NNN.claims.example, and waits until claims lists them all. The
// test keeps none of them (newTenant's cleanup would keep each whole, and
// be measured): the batch is deleted by its label after the benchmark, at
// once, as no finalizer holds it.
func listClaims(b *testing.B, claims client.Reader, prefix string, n int) {
	ctx := context.Background()
	g := NewWithT(b)
	b.Cleanup(func() {
		g.Expect(k8s.DeleteAllOf(ctx, &analyticsv1alpha1.AnalyticsTenant{}, client.MatchingLabels{shardLabel: prefix})).To(Succeed())
	})
	for i := range n {
		name := fmt.Sprintf("%s-%03d", prefix, i)
		g.Expect(k8s.Create(ctx, &analyticsv1alpha1.AnalyticsTenant{
			ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{shardLabel: prefix}},
			Spec: analyticsv1alpha1.AnalyticsTenantSpec{
				Domains: []analyticsv1alpha1.Domain{analyticsv1alpha1.Domain(name + ".example.com")},
				Ingest:  &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{analyticsv1alpha1.Hostname(name + ".claims.example")}},
			},
		})).To(Succeed())
	}
	g.Eventually(func() int {
		var list analyticsv1alpha1.AnalyticsTenantList
		if err := claims.List(ctx, &list, client.MatchingLabels{shardLabel: prefix}); err != nil {
			return -1
		}
		return len(list.Items)
	}, 5*time.Minute, time.Second).Should(Equal(n))
}

// converge creates n tenants named prefix-NNN and waits until every one is
// converged as far as envtest lets it (no Deployment controller): its last
// child in the reconciler's cache and its retention checked.
func converge(b *testing.B, prefix string, n int) {
	ctx := context.Background()
	g := NewWithT(b)
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("%s-%03d", prefix, i)
		newTenant(b, names[i], analyticsv1alpha1.AnalyticsTenantSpec{})
	}
	g.Eventually(func() int {
		converged := 0
		for _, name := range names {
			if tenants.Get(ctx, client.ObjectKey{Namespace: "tenant-" + name, Name: render.RetentionName}, &batchv1.CronJob{}) == nil {
				converged++
			}
		}
		return converged
	}, 5*time.Minute, time.Second).Should(Equal(n))
	g.Eventually(func() int {
		converged := 0
		for _, name := range names {
			if c := conditionOf(name, analyticsv1alpha1.ConditionRetentionCompliant)(); c != nil && c.Status == metav1.ConditionTrue {
				converged++
			}
		}
		return converged
	}, 5*time.Minute, time.Second).Should(Equal(n))
}

func TestTheCacheHoldsOnlyWhatAReconcileReads(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	newTenant(t, "slim", analyticsv1alpha1.AnalyticsTenantSpec{})
	ns := "tenant-slim"
	g.Eventually(func() error {
		return tenants.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.RetentionName}, &batchv1.CronJob{})
	}, wait, tick).Should(Succeed())

	// Per kind, how many of one tenant's children the reconciler's cache
	// holds: a new kind cached, or one lost, shows here.
	want := map[string]int{
		"Namespace": 1, "ServiceAccount": 2, "ConfigMap": 1, "Secret": 2, "Service": 1, "ResourceQuota": 1,
		"Deployment": 1, "HorizontalPodAutoscaler": 0, "PodDisruptionBudget": 1, "NetworkPolicy": 3, "CronJob": 1,
		// The suite's instance routes no tenant (no gateway configured).
		"HTTPRoute": 0,
	}
	got := map[string]int{}
	for _, kind := range controllers.OwnedObjects() {
		gvk, err := apiutil.GVKForObject(kind, scheme)
		g.Expect(err).NotTo(HaveOccurred())
		typed, err := scheme.New(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		g.Expect(err).NotTo(HaveOccurred())
		objs := typed.(client.ObjectList)
		g.Expect(tenants.List(ctx, objs)).To(Succeed())
		items, err := meta.ExtractList(objs)
		g.Expect(err).NotTo(HaveOccurred())
		got[gvk.Kind] = 0
		for _, item := range items {
			o := item.(client.Object)
			if o.GetNamespace() != ns && o.GetName() != ns {
				continue
			}
			got[gvk.Kind]++
			// Slimmed: what a reconcile reads, not the object.
			g.Expect(o.GetManagedFields()).To(BeEmpty(), "%s %s", gvk.Kind, o.GetName())
			g.Expect(o.GetLabels()).To(BeEmpty(), "%s %s", gvk.Kind, o.GetName())
			g.Expect(o.GetGenerateName()).To(MatchRegexp(`^#[0-9a-f]{32}$`), "%s %s", gvk.Kind, o.GetName())
			g.Expect(o.GetUID()).To(BeEmpty(), "%s %s", gvk.Kind, o.GetName())
			ownerUID := BeEmpty()
			if _, isNamespace := o.(*corev1.Namespace); isNamespace {
				// Whether a namespace is the tenant's is decided by the
				// tenant's UID (reconcileNamespace).
				ownerUID = Equal(getTenant("slim").UID)
			}
			g.Expect(o.GetOwnerReferences()).To(ConsistOf(And(
				HaveField("Kind", "AnalyticsTenant"), HaveField("Name", "slim"), HaveField("UID", ownerUID),
				HaveField("Controller", HaveValue(BeTrue())))), "%s %s: only its controller, the tenant", gvk.Kind, o.GetName())
			if _, isSecret := o.(*corev1.Secret); !isSecret {
				g.Expect(o.GetAnnotations()).To(BeEmpty(), "%s %s", gvk.Kind, o.GetName())
			}
			switch o := o.(type) {
			case *appsv1.Deployment:
				g.Expect(o.Spec.Template.Spec.Containers).To(BeEmpty())
				g.Expect(o.Spec.Replicas).NotTo(BeNil())
			case *batchv1.CronJob:
				g.Expect(o.Spec.JobTemplate.Spec.Template.Spec.Containers).To(BeEmpty())
			case *corev1.Secret:
				g.Expect(o.Data).To(HaveKey(render.SecretKeyPassword))
				g.Expect(len(o.Data)).To(BeNumerically("<=", 2), "the password, and whether there is a CA")
				g.Expect(o.Annotations).To(HaveKey(render.AnnotationCredentialsHash))
			case *corev1.ConfigMap:
				g.Expect(o.Data).To(BeEmpty())
			}
		}
	}
	g.Expect(got).To(Equal(want))
	// No namespace index (a set per namespace per kind): no reconcile lists
	// a namespace, and such a List fails rather than going slow.
	g.Expect(tenants.List(ctx, &corev1.ServiceAccountList{}, client.InNamespace(ns))).To(MatchError(MatchRegexp("(?i)index with name namespace does not exist")))

	// Secrets besides ours: only the admin namespace's, with only an admin
	// Secret's keys.
	elsewhere := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "not-ours"}, StringData: map[string]string{"k": "v"}}
	g.Expect(k8s.Create(ctx, elsewhere)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, elsewhere) })
	admin := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "admin-with-notes"},
		StringData: map[string]string{"username": "u", "password": "p", "notes": "not needed"}}
	g.Expect(k8s.Create(ctx, admin)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, admin) })
	cached := &corev1.Secret{}
	g.Eventually(func() error { return tenants.Get(ctx, client.ObjectKeyFromObject(admin), cached) }, wait, tick).Should(Succeed())
	g.Expect(cached.Data).To(HaveLen(2))
	g.Expect(cached.Data).NotTo(HaveKey("notes"))
	// (The cache has no namespace index: client.InNamespace would fail.)
	secrets := &corev1.SecretList{}
	g.Expect(tenants.List(ctx, secrets)).To(Succeed())
	for _, s := range secrets.Items {
		g.Expect(s.Namespace).NotTo(Equal(elsewhere.Namespace), "a Secret that is neither ours nor in the admin namespace is not cached")
	}
}

func TestAConvergedTenantAtRestIsLeftAlone(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	newTenant(t, "quiet", analyticsv1alpha1.AnalyticsTenantSpec{})
	makeIngestAvailable(t, "tenant-quiet")
	req := ctrl.Request{NamespacedName: client.ObjectKey{Name: "quiet"}}
	cachedReady := func() *metav1.Condition {
		cached := &analyticsv1alpha1.AnalyticsTenant{}
		if err := tenants.Get(ctx, req.NamespacedName, cached); err != nil {
			return nil
		}
		return meta.FindStatusCondition(cached.Status.Conditions, analyticsv1alpha1.ConditionReady)
	}
	g.Eventually(cachedReady, wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Expect(getTenant("quiet").Status.Storage.Fingerprint).NotTo(BeEmpty())
	// Settled: the reconciles the convergence itself brought are done.
	reconciles := reconcileCount("analyticstenant")
	g.Eventually(func() float64 {
		before := reconciles()
		time.Sleep(time.Second)
		return reconciles() - before
	}, wait, tick).Should(BeZero())

	t.Run("its region's status changing without its readiness changing reconciles nothing", func(t *testing.T) {
		g := NewWithT(t)
		before := reconciles()
		g.Eventually(func() error {
			sr := &analyticsv1alpha1.StorageRegion{}
			if err := k8s.Get(ctx, client.ObjectKey{Name: "eu"}, sr); err != nil {
				return err
			}
			sr.Status.Tenants = ptr.To(ptr.Deref(sr.Status.Tenants, 0) + 100)
			return k8s.Status().Update(ctx, sr)
		}, wait, tick).Should(Succeed())
		g.Consistently(reconciles, 2*time.Second, tick).Should(Equal(before))
	})

	t.Run("a reconcile with its fingerprint current makes no round trip to the database", func(t *testing.T) {
		g := NewWithT(t)
		calls, written := storeCalls.count(), writes.count()
		_, err := tenants.Reconcile(ctx, req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(storeCalls.count() - calls).To(BeZero())
		g.Expect(writes.count() - written).To(BeZero())
	})

	t.Run("the periodic verification repairs what changed in the database by hand", func(t *testing.T) {
		g := NewWithT(t)
		conn, err := pg.Connect(ctx, "EU")
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close(ctx) }()
		names := getTenant("quiet").Status.Storage
		_, err = conn.Exec(ctx, `DROP TABLE `+names.Schema+`.rollup_ledger; ALTER ROLE `+names.IngestRole+` CONNECTION LIMIT 999`)
		g.Expect(err).NotTo(HaveOccurred())
		calls := storeCalls.count()
		_, err = tenants.Reconcile(ctx, req)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(storeCalls.count()-calls).To(BeZero(), "not before the verification is due")

		tenantClock.move(t, 7*time.Hour)
		_, err = tenants.Reconcile(ctx, req)
		g.Expect(err).NotTo(HaveOccurred())
		var ledger bool
		var limit int
		g.Expect(conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL, (SELECT rolconnlimit FROM pg_roles WHERE rolname = $2)`,
			names.Schema+".rollup_ledger", names.IngestRole).
			Scan(&ledger, &limit)).To(Succeed())
		g.Expect(ledger).To(BeTrue(), "the dropped table is back")
		g.Expect(limit).To(Equal(storage.IngestConnections(int(analyticsv1alpha1.DefaultReplicas))), "the role's connection limit is put back")
	})
}

// reconcileCount reads controller-runtime's count of a controller's
// reconciles from the metrics registry.
func reconcileCount(controller string) func() float64 {
	return func() float64 {
		families, err := ctrlmetrics.Registry.Gather()
		if err != nil {
			return -1
		}
		total := 0.0
		for _, f := range families {
			if f.GetName() != "controller_runtime_reconcile_total" {
				continue
			}
			for _, m := range f.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "controller" && l.GetValue() == controller {
						total += m.GetCounter().GetValue()
					}
				}
			}
		}
		return total
	}
}
