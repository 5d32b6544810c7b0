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
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/localrun"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// createTenant creates a tenant; after the test it is deleted and the test
// waits until the tenant and its namespace are gone.
func createTenant(t testing.TB, name string, spec analyticsv1alpha1.AnalyticsTenantSpec) {
	t.Helper()
	if len(spec.Domains) == 0 {
		// Every tenant has a domain (the API server refuses one without).
		spec.Domains = []analyticsv1alpha1.Domain{analyticsv1alpha1.Domain(name + ".e2e.test")}
	}
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	if err := k8s.Create(context.Background(), tenant); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTenant(t, name) })
}

// deleteTenant deletes a tenant and waits until it and its namespace are
// gone (the namespace is garbage-collected once the finalizer lets go).
func deleteTenant(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	_ = k8s.Delete(ctx, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}})
	g := NewWithT(t)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: name}, &analyticsv1alpha1.AnalyticsTenant{}))
	}, wait, tick).Should(BeTrue(), "tenant %s is still there", name)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Name: "tenant-" + name}, &corev1.Namespace{}))
	}, 2*wait, tick).Should(BeTrue(), "namespace tenant-%s is still there", name)
}

func isReady(name string) bool {
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tenant); err != nil {
		return false
	}
	return meta.IsStatusConditionTrue(tenant.Status.Conditions, analyticsv1alpha1.ConditionReady) &&
		tenant.Status.ObservedGeneration == tenant.Generation
}

// createdAt is the tenant's creationTimestamp (whole seconds).
func createdAt(t testing.TB, name string) time.Time {
	t.Helper()
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tenant); err != nil {
		t.Fatalf("reading tenant %s: %v", name, err)
	}
	return tenant.CreationTimestamp.Time
}

// storageOf is the tenant's status.storage: where its data is, and the
// names Provision recorded for it.
func storageOf(t testing.TB, name string) analyticsv1alpha1.StorageStatus {
	t.Helper()
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tenant); err != nil {
		t.Fatalf("reading tenant %s: %v", name, err)
	}
	if tenant.Status.Storage == nil || tenant.Status.Storage.Schema == "" || tenant.Status.Storage.IngestRole == "" {
		t.Fatalf("tenant %s's status names no schema and ingest role: %+v", name, tenant.Status.Storage)
	}
	return *tenant.Status.Storage
}

func readyCondition(name string) string {
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tenant); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(tenant.Status.Conditions, analyticsv1alpha1.ConditionReady)
	if c == nil {
		return "no Ready condition"
	}
	return string(c.Status) + "/" + c.Reason
}

// cordon makes every node unschedulable, or schedulable again.
func cordon(t testing.TB, unschedulable bool) {
	t.Helper()
	ctx := context.Background()
	nodes := &corev1.NodeList{}
	if err := k8s.List(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	for i := range nodes.Items {
		n := &nodes.Items[i]
		patch := client.MergeFrom(n.DeepCopy())
		n.Spec.Unschedulable = unschedulable
		if err := k8s.Patch(ctx, n, patch); err != nil {
			t.Fatal(err)
		}
	}
}

func TestATenantIsReadyOnlyOnceItsIngestIsAvailable(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-ready", "tenant-e2e-ready"

	// With every node cordoned the ingest pods are created but stay Pending:
	// everything else about the tenant is done, only ingest is unavailable.
	cordon(t, true)
	t.Cleanup(func() { cordon(t, false) })
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](3)}})
	d := &appsv1.Deployment{}
	g.Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestName}, d); err != nil {
			return err
		}
		if d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedReplicas != 3 {
			return fmt.Errorf("the Deployment has not created its pods yet: %+v", d.Status)
		}
		return nil
	}, wait, tick).Should(Succeed())
	g.Eventually(func() string { return readyCondition(name) }, wait, tick).
		Should(Equal("False/"+analyticsv1alpha1.ReasonDeploymentUnavailable), "the operator did not report the unavailable ingest")
	g.Consistently(func() string { return readyCondition(name) }, 5*time.Second, tick).
		Should(Equal("False/"+analyticsv1alpha1.ReasonDeploymentUnavailable), "Ready while no ingest pod is available")
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	g.Expect(d.Status.AvailableReplicas).To(BeZero())

	// Nodes come back: kwok runs the pods, the Deployment becomes available
	// and only then the tenant Ready.
	cordon(t, false)
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(d), d)).To(Succeed())
	g.Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(3), "Ready before its ingest was available")

	pods := &corev1.PodList{}
	g.Expect(k8s.List(ctx, pods, client.InNamespace(ns), client.MatchingLabels{render.LabelComponent: render.ComponentIngest})).To(Succeed())
	g.Expect(pods.Items).To(HaveLen(3))
	for _, p := range pods.Items {
		g.Expect(p.Status.Phase).To(Equal(corev1.PodRunning), "pod %s", p.Name)
		g.Expect(p.Spec.NodeName).NotTo(BeEmpty(), "pod %s was not scheduled on a kwok node", p.Name)
	}
}

func TestPodSecurityRestrictedAdmitsEveryPodAndTheRetentionJobDoesItsWork(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-retention", "tenant-e2e-retention"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](2)}})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	namespace := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: ns}, namespace)).To(Succeed())
	g.Expect(namespace.Labels).To(HaveKeyWithValue("pod-security.kubernetes.io/enforce", "restricted"))

	// The CronJob fires a Job, as `kubectl create job --from=cronjob/retention` does.
	cj := &batchv1.CronJob{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.RetentionName}, cj)).To(Succeed())
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: ns, Name: "retention-e2e", Labels: cj.Spec.JobTemplate.Labels,
			Annotations:     map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "batch/v1", Kind: "CronJob", Name: cj.Name, UID: cj.UID, Controller: ptr.To(true)}},
		},
		Spec: *cj.Spec.JobTemplate.Spec.DeepCopy(),
	}
	g.Expect(k8s.Create(ctx, job)).To(Succeed())
	// A pod Pod Security refuses shows as a FailedCreate event on the Job.
	g.Eventually(func() error {
		events := &corev1.EventList{}
		if err := k8s.List(ctx, events, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, e := range events.Items {
			if e.Reason == "FailedCreate" {
				return StopTrying(fmt.Sprintf("%s %s could not create its pod: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message))
			}
		}
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(job), job); err != nil {
			return err
		}
		for _, c := range job.Status.Conditions {
			if c.Type == batchv1.JobComplete && c.Status == corev1.ConditionTrue {
				return nil
			}
		}
		return fmt.Errorf("the Job has not completed: %+v", job.Status)
	}, wait, tick).Should(Succeed(), "the retention Job's pod was not admitted or did not complete")

	t.Run("every pod the operator makes is admitted under Pod Security restricted", func(t *testing.T) {
		g := NewWithT(t)
		rsList := &appsv1.ReplicaSetList{}
		g.Expect(k8s.List(ctx, rsList, client.InNamespace(ns))).To(Succeed())
		g.Expect(rsList.Items).NotTo(BeEmpty())
		for _, rs := range rsList.Items {
			for _, c := range rs.Status.Conditions {
				g.Expect(c.Type).NotTo(Equal(appsv1.ReplicaSetReplicaFailure), "ReplicaSet %s: %s", rs.Name, c.Message)
			}
		}
		events := &corev1.EventList{}
		g.Expect(k8s.List(ctx, events, client.InNamespace(ns))).To(Succeed())
		for _, e := range events.Items {
			g.Expect(e.Reason).NotTo(Equal("FailedCreate"), "%s %s: %s", e.InvolvedObject.Kind, e.InvolvedObject.Name, e.Message)
		}
		pods := &corev1.PodList{}
		g.Expect(k8s.List(ctx, pods, client.InNamespace(ns))).To(Succeed())
		g.Expect(pods.Items).To(ContainElement(HaveField("Labels", HaveKeyWithValue(render.LabelComponent, render.ComponentRetention))))
	})

	t.Run("the Job's own command and environment, run as a process, perform retention for the tenant", func(t *testing.T) {
		g := NewWithT(t)
		container := job.Spec.Template.Spec.Containers[0]
		for _, e := range container.Env {
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				g.Expect(e.ValueFrom.SecretKeyRef.Name).To(Equal(render.StorageSecretName), "retention reads the owner's Secret only")
			}
		}

		// Raw events 40 and 10 days old, written as the tenant itself.
		conn, creds := ownerConn(t, ns)
		now := time.Now().UTC()
		old, recent := now.AddDate(0, 0, -40), now.AddDate(0, 0, -10)
		_, err := storage.EnsureDayPartitions(ctx, conn, creds.Schema, old, recent)
		g.Expect(err).NotTo(HaveOccurred())
		for _, at := range []time.Time{old, old, recent} {
			_, err := conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.events (received_at, visitor_id, event_name, url_path, country)
				VALUES ($1, 1, 'pageview', '/', 'DE')`, at)
			g.Expect(err).NotTo(HaveOccurred())
		}

		g.Expect(container.Command[0]).To(Equal("/manager"))
		cmd, err := localrun.Command(ctx, k8s, ns, &job.Spec.Template.Spec, render.RetentionName, manager, t.TempDir())
		g.Expect(err).NotTo(HaveOccurred())
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		g.Expect(cmd.Run()).To(Succeed(), "stderr: %s", stderr.String())
		var summary storage.RetentionSummary
		g.Expect(json.Unmarshal(stdout.Bytes(), &summary)).To(Succeed(), "stdout: %s", stdout.String())
		g.Expect(summary.Schema).To(Equal(storageOf(t, name).Schema))
		g.Expect(summary.RetentionDays).To(Equal(30))
		g.Expect(summary.DaysRolledUp).To(BeNumerically(">=", 1))
		g.Expect(stdout.String() + stderr.String()).NotTo(ContainSubstring(creds.Password))

		var oldRaw, recentRaw, aggregated int64
		g.Expect(conn.QueryRow(ctx, `SELECT count(*) FILTER (WHERE received_at < $1), count(*) FILTER (WHERE received_at >= $1) FROM `+creds.Schema+`.events`,
			now.AddDate(0, 0, -30)).Scan(&oldRaw, &recentRaw)).To(Succeed())
		g.Expect(oldRaw).To(BeZero(), "raw events older than the window remain")
		g.Expect(recentRaw).To(BeEquivalentTo(1))
		g.Expect(conn.QueryRow(ctx, `SELECT coalesce(sum(events), 0) FROM `+creds.Schema+`.daily_aggregates WHERE day = $1::date`, old).Scan(&aggregated)).To(Succeed())
		g.Expect(aggregated).To(BeEquivalentTo(2))
	})
}

func TestDeletingATenantPurgesItsDataAndItsNamespaceUnlessRetained(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	ctx := context.Background()
	store, err := storage.Open(ctx, admin[analyticsv1alpha1.RegionUS])
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for _, tt := range []struct {
		name   string
		policy analyticsv1alpha1.DeletionPolicy
		kept   bool
	}{
		{"e2e-purged", analyticsv1alpha1.DeletionPolicyDelete, false},
		{"e2e-retained", analyticsv1alpha1.DeletionPolicyRetain, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			createTenant(t, tt.name, analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS, DeletionPolicy: tt.policy})
			g.Eventually(func() bool { return isReady(tt.name) }, wait, tick).Should(BeTrue())
			deleteTenant(t, tt.name) // waits until the namespace is gone too
			left, err := store.Verify(ctx, tt.name)
			g.Expect(err).NotTo(HaveOccurred())
			if tt.kept {
				g.Expect(left.Schema && left.Role).To(BeTrue(), "Retain must keep the schema and role")
				g.Expect(store.Purge(ctx, tt.name)).To(Succeed())
			} else {
				g.Expect(left.Empty()).To(BeTrue(), "left behind: %s", left)
			}
		})
	}
}

func TestAnOperatorKilledWhileCreatingTwentyTenantsConvergesWhenRestarted(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	first := startOperator(t, "first")
	withRegions(t)
	names := make([]string, 20)
	for i := range names {
		names[i] = fmt.Sprintf("e2e-crash-%02d", i)
	}
	// namespaces counts the tenants' namespaces; -1 when it cannot tell.
	namespaces := func() int {
		list := &corev1.NamespaceList{}
		if err := k8s.List(ctx, list, client.HasLabels{render.LabelTenant}); err != nil {
			return -1
		}
		n := 0
		for _, ns := range list.Items {
			if strings.HasPrefix(ns.Labels[render.LabelTenant], "e2e-crash-") {
				n++
			}
		}
		return n
	}

	// Kill it in the middle of the creation: as soon as the first tenant has
	// a namespace, while the others are still being created.
	killed := make(chan int, 1)
	go func() {
		deadline := time.Now().Add(wait)
		for namespaces() < 1 && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		first.stop(syscall.SIGKILL)
		killed <- namespaces()
	}()
	create := func(name string) {
		g.Expect(k8s.Create(ctx, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{analyticsv1alpha1.Domain(name + ".e2e.test")}}})).To(Succeed())
	}
	created := 0
	for ; created < len(names) && len(killed) == 0; created++ {
		create(names[created])
	}
	withNamespace := <-killed
	for _, name := range names[created:] {
		create(name)
	}
	ready := 0
	for _, name := range names {
		if isReady(name) {
			ready++
		}
	}
	t.Logf("killed the operator after creating %d of 20 tenants, with %d given a namespace and %d Ready", created, withNamespace, ready)
	g.Expect(withNamespace).To(BeNumerically(">=", 1), "the operator made no namespace")
	g.Expect(ready).To(BeNumerically("<", len(names)), "the operator was not killed in the middle")

	startOperator(t, "replacement")
	// Registered after the replacement's own cleanup, so it runs before the
	// replacement stops: the tenants are deleted while it still reconciles.
	t.Cleanup(func() {
		for _, name := range names {
			_ = k8s.Delete(ctx, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}})
		}
		for _, name := range names {
			deleteTenant(t, name)
		}
	})
	for _, name := range names {
		g.Eventually(func() bool { return isReady(name) }, 3*wait, tick).Should(BeTrue(), "tenant %s", name)
	}

	// No duplicates and no orphans: one namespace per tenant, one schema per
	// tenant, each child exactly once.
	nsList := &corev1.NamespaceList{}
	g.Expect(k8s.List(ctx, nsList, client.HasLabels{render.LabelTenant})).To(Succeed())
	perTenant := map[string]int{}
	for _, ns := range nsList.Items {
		perTenant[ns.Labels[render.LabelTenant]]++
	}
	store, err := storage.Open(ctx, admin[analyticsv1alpha1.RegionEU])
	g.Expect(err).NotTo(HaveOccurred())
	defer store.Close()
	for _, name := range names {
		g.Expect(perTenant[name]).To(Equal(1), "namespaces of %s", name)
		left, err := store.Verify(ctx, name)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(left.Schema && left.Role && left.IngestRole).To(BeTrue(), "storage of %s", name)
		// One Deployment, one CronJob, and two Secrets: the owner's and the
		// ingest role's.
		for list, want := range map[client.ObjectList]int{&appsv1.DeploymentList{}: 1, &batchv1.CronJobList{}: 1, &corev1.SecretList{}: 2} {
			g.Expect(k8s.List(ctx, list, client.InNamespace("tenant-"+name), client.MatchingLabels{render.LabelManagedBy: render.ManagedBy})).To(Succeed())
			g.Expect(meta.LenList(list)).To(Equal(want), "%T in tenant-%s", list, name)
		}
	}
}

func TestWhenTheLeaderIsKilledTheOtherInstanceTakesOver(t *testing.T) {
	g := NewWithT(t)
	a := startOperator(t, "a")
	b := startOperator(t, "b")
	withRegions(t)
	var leader, follower *operator
	g.Eventually(func() bool {
		switch {
		case a.isLeader():
			leader, follower = a, b
		case b.isLeader():
			leader, follower = b, a
		}
		return leader != nil
	}, wait, tick).Should(BeTrue(), "no instance became leader")
	g.Expect(follower.isLeader()).To(BeFalse(), "both instances claim the lease")

	createTenant(t, "e2e-before", analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(func() bool { return isReady("e2e-before") }, wait, tick).Should(BeTrue())

	holder := func() string {
		lease := &coordinationv1.Lease{}
		g.Expect(k8s.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: leaseName}, lease)).To(Succeed())
		return ptr.Deref(lease.Spec.HolderIdentity, "")
	}
	before := holder()
	g.Expect(before).NotTo(BeEmpty())

	leader.stop(syscall.SIGKILL)
	createTenant(t, "e2e-after", analyticsv1alpha1.AnalyticsTenantSpec{})
	// The lease must expire (15 s) before the follower takes over.
	g.Eventually(follower.isLeader, 2*wait, tick).Should(BeTrue(), "the follower did not take over; see %s", follower.log)
	g.Expect(holder()).NotTo(Or(BeEmpty(), Equal(before)), "the Lease still names the killed leader")
	g.Eventually(func() bool { return isReady("e2e-after") }, wait, tick).Should(BeTrue())
}
