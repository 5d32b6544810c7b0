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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/localrun"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// ownerConn connects as the tenant's schema owner, from its storage Secret.
func ownerConn(t testing.TB, ns string) (*pgx.Conn, storage.Credentials) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	secret := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.StorageSecretName}, secret)).To(Succeed())
	creds := storage.Credentials{Host: string(secret.Data["host"]), Database: string(secret.Data["database"]),
		SSLMode: string(secret.Data["sslmode"]), Schema: string(secret.Data["schema"]),
		Username: string(secret.Data["username"]), Password: string(secret.Data["password"])}
	_, err := fmt.Sscan(string(secret.Data["port"]), &creds.Port)
	g.Expect(err).NotTo(HaveOccurred())
	conn, err := storage.ConnectTenant(ctx, creds)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn, creds
}

// conditionOf is a tenant condition as "Status/Reason".
func conditionOf(name, conditionType string) string {
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, tenant); err != nil {
		return err.Error()
	}
	c := meta.FindStatusCondition(tenant.Status.Conditions, conditionType)
	if c == nil {
		return "none"
	}
	return string(c.Status) + "/" + c.Reason
}

// nudgeKey is the label and annotation nudge sets.
const nudgeKey = "e2e.millimetric.ai/nudge"

// update changes obj on the API server: read afresh, changed, written,
// again until no conflict with the operator's own writes stops it.
func update[T client.Object](t testing.TB, obj T, change func(T)) {
	t.Helper()
	ctx := context.Background()
	NewWithT(t).Eventually(func() error {
		if err := k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
			return err
		}
		change(obj)
		return k8s.Update(ctx, obj)
	}, wait, tick).Should(Succeed())
}

// nudge makes the operator look at an object again now, as any change to
// it does.
func nudge(t testing.TB, obj client.Object) {
	t.Helper()
	update(t, obj, func(obj client.Object) {
		// Tenants are reconciled on label changes, StorageRegions on
		// annotation changes: set both.
		stamp := strconv.FormatInt(time.Now().UnixNano(), 10)
		ann, lbl := obj.GetAnnotations(), obj.GetLabels()
		if ann == nil {
			ann = map[string]string{}
		}
		if lbl == nil {
			lbl = map[string]string{}
		}
		ann[nudgeKey], lbl[nudgeKey] = stamp, stamp
		// And a tenant does all its checks now, not at their next period.
		ann[analyticsv1alpha1.ReconcileRequestedAnnotation] = stamp
		obj.SetAnnotations(ann)
		obj.SetLabels(lbl)
	})
}

func TestASuspendedTenantsRawEventsStillExpireAndTheOperatorSeesIt(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-suspended", "tenant-e2e-suspended"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{Suspend: true})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	cj := &batchv1.CronJob{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.RetentionName}, cj)).To(Succeed())
	g.Expect(ptr.Deref(cj.Spec.Suspend, true)).To(BeFalse(), "a suspended tenant's retention must keep running")

	// Raw events 40 and 10 days old on the 30-day plan.
	conn, creds := ownerConn(t, ns)
	now := time.Now().UTC()
	old, recent := now.AddDate(0, 0, -40), now.AddDate(0, 0, -10)
	_, err := storage.EnsureDayPartitions(ctx, conn, creds.Schema, old, recent)
	g.Expect(err).NotTo(HaveOccurred())
	for _, at := range []time.Time{old, recent} {
		_, err := conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.events (received_at, event_name) VALUES ($1, 'pageview')`, at)
		g.Expect(err).NotTo(HaveOccurred())
	}
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	nudge(t, tenant)
	day := func(t time.Time) string { return t.Format(time.DateOnly) }
	oldest := func() string {
		got := &analyticsv1alpha1.AnalyticsTenant{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, got); err != nil || got.Status.Retention == nil || got.Status.Retention.OldestRawEvent == nil {
			return ""
		}
		return day(got.Status.Retention.OldestRawEvent.UTC())
	}
	g.Eventually(oldest, wait, tick).Should(Equal(day(old)), "status.retention.oldestRawEvent shows the 40-day-old event")
	g.Eventually(func() string { return conditionOf(name, analyticsv1alpha1.ConditionRetentionCompliant) }, wait, tick).
		Should(Equal("False/" + analyticsv1alpha1.ReasonRetentionOverdue))
	g.Expect(isReady(name)).To(BeFalse(), "Ready counts RetentionCompliant")

	// The CronJob's own container, run as a process, removes them.
	retention, err := localrun.Command(ctx, k8s, ns, &cj.Spec.JobTemplate.Spec.Template.Spec, render.RetentionName, manager, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	out, err := retention.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "retention: %s", out)
	nudge(t, tenant)
	g.Eventually(oldest, wait, tick).Should(Equal(day(recent)), "oldestRawEvent follows the retention run")
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
}

func TestARetainedTenantIsHeldLockedOutAdoptedAndSweptWhenItsHoldEnds(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-held", "tenant-e2e-held"
	retained := analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{name + ".e2e.test"}, DeletionPolicy: analyticsv1alpha1.DeletionPolicyRetain, RetainDays: ptr.To[int32](2)}
	create := func(spec analyticsv1alpha1.AnalyticsTenantSpec) {
		g.Expect(k8s.Create(ctx, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec})).To(Succeed())
		g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
	}
	store, err := storage.Open(ctx, admin[analyticsv1alpha1.RegionEU])
	g.Expect(err).NotTo(HaveOccurred())
	defer store.Close()
	// The schema recorded when the first tenant was provisioned: the
	// one held, and the one adopted.
	var schema string
	events := func() int {
		conn, err := storage.Connect(ctx, admin[analyticsv1alpha1.RegionEU])
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close(ctx) }()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.events`).Scan(&n); err != nil {
			return -1
		}
		return n
	}

	create(retained)
	first := &analyticsv1alpha1.AnalyticsTenant{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, first)).To(Succeed())
	conn, creds := ownerConn(t, ns)
	schema = storageOf(t, name).Schema
	g.Expect(creds.Schema).To(Equal(schema))
	_, err = conn.Exec(ctx, `INSERT INTO `+schema+`.events (received_at, event_name) VALUES (now(), 'pageview')`)
	g.Expect(err).NotTo(HaveOccurred())
	_ = conn.Close(ctx)

	t.Run("deleted, its roles cannot log in and the region counts the hold", func(t *testing.T) {
		g := NewWithT(t)
		deleteTenant(t, name)
		_, err := storage.ConnectTenant(ctx, creds)
		g.Expect(err).To(HaveOccurred())
		g.Expect(events()).To(Equal(1), "the data is held")
		g.Eventually(func() int32 {
			sr := &analyticsv1alpha1.StorageRegion{}
			if err := k8s.Get(ctx, client.ObjectKey{Name: "eu"}, sr); err != nil || sr.Status.Retained == nil {
				return 0
			}
			return *sr.Status.Retained
		}, wait, tick).Should(BeNumerically(">=", 1))
	})

	t.Run("re-created within the hold, it adopts the data only when it names the deleted tenant's uid", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(k8s.Create(ctx, &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{analyticsv1alpha1.Domain(name + ".e2e.test")}}})).To(Succeed())
		g.Eventually(func() string { return conditionOf(name, analyticsv1alpha1.ConditionStorageReady) }, wait, tick).
			Should(Equal("False/" + analyticsv1alpha1.ReasonRetainedDataExists))
		deleteTenant(t, name)
		g.Expect(events()).To(Equal(1), "the data is still held")

		adopting := retained
		adopting.Storage = &analyticsv1alpha1.StorageSpec{AdoptRetainedFrom: string(first.UID)}
		create(adopting)
		got := &analyticsv1alpha1.AnalyticsTenant{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, got)).To(Succeed())
		g.Expect(got.Status.Storage.AdoptedFrom).NotTo(BeNil())
		g.Expect(got.Status.Storage.Schema).To(Equal(schema), "the adopted schema is the held one, under its recorded name")
		g.Expect(events()).To(Equal(1))
	})

	t.Run("deleted again and past its hold, the region's sweep purges it and a new tenant starts empty", func(t *testing.T) {
		g := NewWithT(t)
		deleteTenant(t, name)
		// The hold ends two days from now: move it to the past, as the
		// clock would, and have the region look again.
		conn, err := storage.Connect(ctx, admin[analyticsv1alpha1.RegionEU])
		g.Expect(err).NotTo(HaveOccurred())
		tag, err := conn.Exec(ctx, `UPDATE millimetric_operator.retained_tenants
			SET deleted_at = now() - interval '3 days', expires_at = now() - interval '1 day' WHERE tenant = $1`, name)
		_ = conn.Close(ctx)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(tag.RowsAffected()).To(BeEquivalentTo(1))
		nudge(t, &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: "eu"}})
		g.Eventually(func() bool {
			left, err := store.Verify(ctx, name)
			return err == nil && left.Empty()
		}, wait, tick).Should(BeTrue(), "the sweep purged schema, data and roles")
		var list eventsv1.EventList
		g.Eventually(func() []eventsv1.Event {
			_ = k8s.List(ctx, &list)
			var out []eventsv1.Event
			for _, e := range list.Items {
				if e.Regarding.Kind == "StorageRegion" && e.Reason == "Purged" && strings.Contains(e.Note, name) {
					out = append(out, e)
				}
			}
			return out
		}, wait, tick).ShouldNot(BeEmpty(), "a Purged event on the StorageRegion")

		createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
		g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())
		got := &analyticsv1alpha1.AnalyticsTenant{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, got)).To(Succeed())
		g.Expect(got.Status.Storage.AdoptedFrom).To(BeNil())
		g.Expect(events()).To(Equal(-1), "the held schema %s is gone", schema)
		g.Expect(got.Status.Storage.Schema).NotTo(Equal(schema), "a new tenant gets new names")
		schema = got.Status.Storage.Schema
		g.Expect(events()).To(BeZero(), "nothing is left to adopt after the hold")
	})
}
