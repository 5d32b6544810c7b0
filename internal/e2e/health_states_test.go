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
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// healthTestdata is where E2E_CAPTURE_HEALTH=1 writes the objects the
// health walk meets: the fixtures of internal/health, which runs the Argo CD
// health checks and kstatus on them.
var healthTestdata = filepath.Join(repoRoot, "internal", "health", "testdata")

const captureHeader = `# Captured from the local cluster by internal/e2e's
# TestATenantAndItsRegionGoThroughTheStatesTheHealthChecksRead:
#   E2E_CAPTURE_HEALTH=1 hack/local/test-e2e.sh -run HealthChecksRead
# Do not edit: capture again. managedFields and the e2e nudge are left out.
`

// captureHealth writes the object as it is now on the API server to
// internal/health/testdata/<kind>/<fixture> when E2E_CAPTURE_HEALTH=1, as
// `kubectl get -o yaml` shows it, less its managedFields.
func captureHealth(t testing.TB, obj client.Object, fixture string) {
	t.Helper()
	if os.Getenv("E2E_CAPTURE_HEALTH") != "1" {
		return
	}
	gvk, err := k8s.GroupVersionKindFor(obj)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(obj), u); err != nil {
		t.Fatal(err)
	}
	u.SetManagedFields(nil)
	for _, field := range []string{"labels", "annotations"} {
		unstructured.RemoveNestedField(u.Object, "metadata", field, nudgeKey)
		if m, _, _ := unstructured.NestedMap(u.Object, "metadata", field); len(m) == 0 {
			unstructured.RemoveNestedField(u.Object, "metadata", field)
		}
	}
	data, err := yaml.Marshal(u.Object)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(healthTestdata, strings.ToLower(gvk.Kind), fixture)
	if err := os.WriteFile(path, append([]byte(captureHeader), data...), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("captured %s %s into %s", gvk.Kind, obj.GetName(), path)
}

// regionReady is a StorageRegion's Ready condition as "Status/Reason".
func regionReady(name string) string {
	sr := &analyticsv1alpha1.StorageRegion{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, sr); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(sr.Status.Conditions, analyticsv1alpha1.ConditionReady)
	if c == nil {
		return "none"
	}
	return string(c.Status) + "/" + c.Reason
}

// TestATenantAndItsRegionGoThroughTheStatesTheHealthChecksRead walks an
// AnalyticsTenant and the StorageRegions through the states the Argo CD
// health checks and kstatus tell apart, each as the operator writes it:
// a tenant not yet reconciled, waiting for its pods, Ready, edited while
// no operator runs, with raw events past its window, suspended, with its
// region's database down, and being deleted while it is; a region not yet
// checked, Ready, edited while no operator runs, claimed twice, refusing
// its admin's password, and unreachable. With E2E_CAPTURE_HEALTH=1 it
// writes each object into internal/health/testdata.
func TestATenantAndItsRegionGoThroughTheStatesTheHealthChecksRead(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	const name, ns, duplicate = "e2e-health", "tenant-e2e-health", "e2e-duplicate"
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	eu := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: "eu"}}
	us := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: "us"}}
	// Each operator started here deletes the tenant and waits for its purge
	// before it is stopped (cleanups run last registered first).
	startOperatorKeepingTheTenant := func(id string) *operator {
		op := startOperator(t, id)
		t.Cleanup(func() { deleteTenant(t, name) })
		return op
	}

	first := startOperator(t, "a")
	withRegions(t)
	captureHealth(t, eu, "connected.yaml")

	// With no operator running: a tenant, and a second StorageRegion for
	// region EU; neither is looked at yet.
	first.stop(syscall.SIGTERM)
	cordon(t, true)
	t.Cleanup(func() { cordon(t, false) })
	tenant.Spec = analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionEU, Domains: []analyticsv1alpha1.Domain{"health.e2e.test"},
		Ingest: &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](1)}}
	g.Expect(k8s.Create(ctx, tenant)).To(Succeed())
	captureHealth(t, tenant, "new.yaml")
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(eu), eu)).To(Succeed())
	dup := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: duplicate}, Spec: eu.Spec}
	g.Expect(k8s.Create(ctx, dup)).To(Succeed())
	t.Cleanup(func() { _ = client.IgnoreNotFound(k8s.Delete(ctx, dup)) })
	captureHealth(t, dup, "new.yaml")

	second := startOperatorKeepingTheTenant("b")
	g.Eventually(func() string { return regionReady(duplicate) }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonDuplicateRegion))
	captureHealth(t, dup, "duplicate.yaml")
	g.Eventually(func() string { return readyCondition(name) }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonRegionUnavailable))

	g.Expect(k8s.Delete(ctx, dup)).To(Succeed())
	nudge(t, eu)
	g.Eventually(func() string { return regionReady("eu") }, wait, tick).Should(Equal("True/" + analyticsv1alpha1.ReasonConnected))
	nudge(t, tenant)
	// Every node is cordoned: the ingest pod stays Pending.
	g.Eventually(func() string { return readyCondition(name) }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonDeploymentUnavailable))
	captureHealth(t, tenant, "ingest-starting.yaml")

	cordon(t, false)
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	captureHealth(t, tenant, "ready.yaml")

	// Edited while no operator runs: the new generation is not observed.
	second.stop(syscall.SIGTERM)
	update(t, tenant, func(tn *analyticsv1alpha1.AnalyticsTenant) { tn.Spec.Ingest.Replicas = ptr.To[int32](2) })
	captureHealth(t, tenant, "spec-not-observed.yaml")
	update(t, us, func(sr *analyticsv1alpha1.StorageRegion) {
		sr.Spec.Egress = &analyticsv1alpha1.EgressSpec{To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "127.0.0.1/32"}}}}
	})
	captureHealth(t, us, "spec-not-observed.yaml")

	startOperatorKeepingTheTenant("c")
	// withRegions puts region us' spec back as it was.
	withRegions(t)
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	// A raw event 40 days old on the 30-day plan.
	conn, creds := ownerConn(t, ns)
	old := time.Now().UTC().AddDate(0, 0, -40)
	_, err := storage.EnsureDayPartitions(ctx, conn, creds.Schema, old, old)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.events (received_at, event_name) VALUES ($1, 'pageview')`, old)
	g.Expect(err).NotTo(HaveOccurred())
	nudge(t, tenant)
	g.Eventually(func() string { return readyCondition(name) }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonRetentionOverdue))
	captureHealth(t, tenant, "retention-overdue.yaml")
	_, err = conn.Exec(ctx, `DELETE FROM `+creds.Schema+`.events`)
	g.Expect(err).NotTo(HaveOccurred())
	_ = conn.Close(ctx)
	nudge(t, tenant)
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	update(t, tenant, func(tn *analyticsv1alpha1.AnalyticsTenant) { tn.Spec.Suspend = true })
	g.Eventually(func() string { return conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable) }, wait, tick).
		Should(Equal("True/" + analyticsv1alpha1.ReasonSuspended))
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	captureHealth(t, tenant, "suspended.yaml")
	update(t, tenant, func(tn *analyticsv1alpha1.AnalyticsTenant) { tn.Spec.Suspend = false })
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	// Region us' admin Secret with a password the database refuses.
	wrong := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "pg-e2e-wrong-password"},
		StringData: map[string]string{"username": admin[analyticsv1alpha1.RegionUS].Username, "password": "not-the-password"}}
	g.Expect(k8s.Create(ctx, wrong)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, wrong) })
	// Run while operator c still does: the region's spec back, Ready again.
	t.Cleanup(func() { withRegions(t) })
	update(t, us, func(sr *analyticsv1alpha1.StorageRegion) { sr.Spec.Postgres.AdminSecretRef.Name = wrong.Name })
	g.Eventually(func() string { return regionReady("us") }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonAuthenticationFailed))
	captureHealth(t, us, "authentication-failed.yaml")
	withRegions(t)

	stopDatabase(t)
	nudge(t, eu)
	g.Eventually(func() string { return regionReady("eu") }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonConnectionFailed))
	captureHealth(t, eu, "connection-failed.yaml")
	nudge(t, tenant)
	g.Eventually(func() string { return readyCondition(name) }, wait, tick).Should(Equal("False/" + analyticsv1alpha1.ReasonRegionUnavailable))
	captureHealth(t, tenant, "region-unavailable.yaml")

	// Deleted while its region's database is down: the purge waits.
	g.Expect(k8s.Delete(ctx, tenant)).To(Succeed())
	g.Eventually(func() bool {
		return k8s.Get(ctx, client.ObjectKeyFromObject(tenant), tenant) == nil && tenant.DeletionTimestamp != nil
	}, wait, tick).Should(BeTrue())
	g.Consistently(func() error { return k8s.Get(ctx, client.ObjectKeyFromObject(tenant), tenant) }, 3*time.Second, tick).
		Should(Succeed(), "the tenant went while its data could not be purged")
	captureHealth(t, tenant, "deleting.yaml")
	// The database back, the purge completes and the tenant goes.
	restartDatabase(t)
	deleteTenant(t, name)
	g.Expect(apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(tenant), tenant))).To(BeTrue())
}
