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
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

func objectMeta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name} }

// adminSecret writes a region admin Secret and removes it after the test.
func adminSecret(t testing.TB, name string, data map[string]string) {
	t.Helper()
	s := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: name}, StringData: data}
	if err := k8s.Create(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = k8s.Delete(context.Background(), s) })
}

// storageRegion creates a StorageRegion for the test PostgreSQL's database of
// region on port and deletes it (waiting until it is gone) after the test.
func storageRegion(t testing.TB, name string, region analyticsv1alpha1.Region, port int, secret string) *analyticsv1alpha1.StorageRegion {
	t.Helper()
	sr := &analyticsv1alpha1.StorageRegion{
		ObjectMeta: objectMeta(name),
		Spec: analyticsv1alpha1.StorageRegionSpec{
			Region: region,
			Postgres: analyticsv1alpha1.PostgresSpec{
				Host:           "127.0.0.1",
				Port:           ptr.To(int32(port)),
				Database:       pg.Databases[string(region)],
				SSLMode:        analyticsv1alpha1.SSLModeDisable,
				AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: systemNamespace, Name: secret},
			},
		},
	}
	if err := k8s.Create(context.Background(), sr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), sr)
		NewWithT(t).Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(context.Background(), client.ObjectKeyFromObject(sr), &analyticsv1alpha1.StorageRegion{}))
		}, 10*time.Second, 100*time.Millisecond).Should(BeTrue())
	})
	return sr
}

// readyOf reads a StorageRegion's Ready condition, nil before the first check.
func readyOf(name string) func() *metav1.Condition {
	return func() *metav1.Condition {
		sr := &analyticsv1alpha1.StorageRegion{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, sr); err != nil {
			return nil
		}
		return meta.FindStatusCondition(sr.Status.Conditions, analyticsv1alpha1.ConditionReady)
	}
}

func haveReady(status metav1.ConditionStatus, reason string) OmegaMatcher {
	return And(Not(BeNil()), HaveField("Status", status), HaveField("Reason", reason))
}

// closedPort is a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	return port
}

func TestStorageRegionReadiness(t *testing.T) {
	good := map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword}
	tests := []struct {
		name    string
		secret  map[string]string // nil: no Secret at all
		port    func(*testing.T) int
		status  metav1.ConditionStatus
		reason  string
		message string
	}{
		{"a good admin secret makes the region Ready", good, func(*testing.T) int { return pg.Port },
			metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected, "the administrator can log in"},
		{"a missing admin secret is SecretMissing", nil, func(*testing.T) int { return pg.Port },
			metav1.ConditionFalse, analyticsv1alpha1.ReasonSecretMissing, "not found: create it with keys"},
		{"an admin secret without a password is SecretMissing", map[string]string{"username": pg.AdminUser}, func(*testing.T) int { return pg.Port },
			metav1.ConditionFalse, analyticsv1alpha1.ReasonSecretMissing, `has no "password" key`},
		{"a wrong password is AuthenticationFailed", map[string]string{"username": pg.AdminUser, "password": "not-the-password-0123456789"}, func(*testing.T) int { return pg.Port },
			metav1.ConditionFalse, analyticsv1alpha1.ReasonAuthenticationFailed, "127.0.0.1"},
		{"an unreachable host is ConnectionFailed", good, closedPort,
			metav1.ConditionFalse, analyticsv1alpha1.ReasonConnectionFailed, "127.0.0.1"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			name := fmt.Sprintf("readiness-%d", i)
			secret := name + "-admin"
			if tt.secret != nil {
				adminSecret(t, secret, tt.secret)
			}
			storageRegion(t, name, analyticsv1alpha1.RegionEU, tt.port(t), secret)

			g.Eventually(readyOf(name), 20*time.Second, 100*time.Millisecond).Should(haveReady(tt.status, tt.reason))
			cond := readyOf(name)()
			g.Expect(cond.Message).To(ContainSubstring(tt.message))
			g.Expect(cond.Message).NotTo(ContainSubstring(pg.AdminPassword), "the condition shows the admin password")
			if p := tt.secret["password"]; p != "" {
				g.Expect(cond.Message).NotTo(ContainSubstring(p), "the condition shows the password tried")
			}
			g.Eventually(eventsAbout(name), 10*time.Second, 100*time.Millisecond).Should(ContainElement(HaveField("Reason", tt.reason)))
			for _, e := range eventsAbout(name)() {
				g.Expect(e.Note).NotTo(ContainSubstring(pg.AdminPassword), "an event shows the admin password")
				if p := tt.secret["password"]; p != "" {
					g.Expect(e.Note).NotTo(ContainSubstring(p), "an event shows the password tried")
				}
			}
		})
	}
}

func TestStorageRegionCountsItsTenants(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	store, err := storage.Open(ctx, pg.AdminConfig("US"))
	g.Expect(err).NotTo(HaveOccurred())
	// Closed after the purges below: cleanups run last first, and after
	// the test's own defers, so a deferred Close would leave the purges a
	// closed store and the tenants in the database for the next run.
	t.Cleanup(store.Close)
	before, err := store.CountTenants(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	for _, tenant := range []string{"count-one", "count-two"} {
		_, err := store.Provision(ctx, tenant, storage.ProvisionOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		t.Cleanup(func() {
			if err := store.Purge(ctx, tenant); err != nil {
				t.Errorf("purging %s: %v", tenant, err)
			}
		})
	}

	adminSecret(t, "count-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	storageRegion(t, "count", analyticsv1alpha1.RegionUS, pg.Port, "count-admin")
	tenants := func() *int32 {
		sr := &analyticsv1alpha1.StorageRegion{}
		_ = k8s.Get(ctx, client.ObjectKey{Name: "count"}, sr)
		return sr.Status.Tenants
	}
	g.Eventually(tenants, 20*time.Second, 100*time.Millisecond).Should(HaveValue(BeEquivalentTo(before + 2)))

	// A tenant provisioned and then deleted through the API is counted at
	// once, not at the next re-check five minutes later.
	tenant := newTenant(t, "counted", analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	g.Eventually(tenants, 20*time.Second, 100*time.Millisecond).Should(HaveValue(BeEquivalentTo(before + 3)))
	deleteTenant(t, tenant)
	g.Eventually(tenants, 20*time.Second, 100*time.Millisecond).Should(HaveValue(BeEquivalentTo(before + 2)))
}

func TestTwoStorageRegionsClaimingOneRegionAreBothNotReadyUntilOneGoes(t *testing.T) {
	g := NewWithT(t)
	adminSecret(t, "dup-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	storageRegion(t, "dup-a", analyticsv1alpha1.RegionEU, pg.Port, "dup-admin")
	g.Eventually(readyOf("dup-a"), 20*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))

	second := storageRegion(t, "dup-b", analyticsv1alpha1.RegionEU, pg.Port, "dup-admin")
	for _, name := range []string{"dup-a", "dup-b"} {
		g.Eventually(readyOf(name), 20*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonDuplicateRegion))
	}
	g.Expect(readyOf("dup-a")().Message).To(ContainSubstring("dup-b"))

	g.Expect(k8s.Delete(context.Background(), second)).To(Succeed())
	g.Eventually(readyOf("dup-a"), 20*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
}

func TestStorageRegionRecoversWhenItsSecretAppears(t *testing.T) {
	g := NewWithT(t)
	sr := storageRegion(t, "late", analyticsv1alpha1.RegionEU, pg.Port, "late-admin")
	g.Eventually(readyOf("late"), 20*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonSecretMissing))

	// Secrets are not watched: the periodic re-check with backoff finds it.
	adminSecret(t, "late-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	g.Eventually(readyOf("late"), 30*time.Second, 200*time.Millisecond).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))

	// Deleted while its Secret is still there: a region that reached its
	// database is held until it can check that nothing is left there.
	g.Expect(k8s.Delete(context.Background(), sr)).To(Succeed())
	g.Eventually(regionGone("late"), wait, tick).Should(BeTrue())
}

// eventsAbout lists the events.k8s.io Events regarding the named tenant or
// StorageRegion: while it exists, only those regarding it by UID, not an
// earlier object of the same name (an earlier test's, or an earlier run's
// with -count); once it is gone, all those regarding the name.
func eventsAbout(name string) func() []eventsv1.Event {
	return func() []eventsv1.Event {
		ctx := context.Background()
		var uid types.UID
		tenant, region := &analyticsv1alpha1.AnalyticsTenant{}, &analyticsv1alpha1.StorageRegion{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, tenant); err == nil {
			uid = tenant.UID
		} else if err := k8s.Get(ctx, client.ObjectKey{Name: name}, region); err == nil {
			uid = region.UID
		}
		var list eventsv1.EventList
		if err := k8s.List(ctx, &list); err != nil {
			return nil
		}
		var out []eventsv1.Event
		for _, e := range list.Items {
			if e.Regarding.Name == name && strings.HasPrefix(e.Regarding.APIVersion, analyticsv1alpha1.GroupVersion.Group) &&
				(uid == "" || e.Regarding.UID == uid) {
				out = append(out, e)
			}
		}
		return out
	}
}

func TestARegionIsNotReadyAsSoonAsOneOfItsTenantsLosesItsDatabase(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	proxy := pg.NewProxy(t)
	adminSecret(t, "lost-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	storageRegion(t, "lost", analyticsv1alpha1.RegionUS, proxy.Port, "lost-admin")
	g.Eventually(readyOf("lost"), 20*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
	counted := func() *int32 {
		sr := &analyticsv1alpha1.StorageRegion{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: "lost"}, sr); err != nil {
			return nil
		}
		return sr.Status.Tenants
	}
	countedBefore := ptr.Deref(counted(), -1)
	newTenant(t, "lost-db", analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	// The purge at cleanup needs the database back.
	t.Cleanup(proxy.Restore)
	g.Eventually(conditionOf("lost-db", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	databaseUp := gaugeValue("millimetric_storage_region_database_up", "name", "lost")
	g.Eventually(databaseUp, wait, tick).Should(BeEquivalentTo(1))
	// Settled: the re-check the tenant's provisioning brings (which counts
	// it) is done, so the region cannot notice the cut below on its own
	// before the tenant does.
	g.Eventually(func() int32 { return ptr.Deref(counted(), -1) }, wait, tick).ShouldNot(Equal(countedBefore))
	failedProvisions := observations("millimetric_provision_duration_seconds", "region", "US", "outcome", "error")
	failedBefore := failedProvisions()

	// The database goes away; the tenant's next reconcile that needs it
	// (here a spec change: a converged tenant at rest does not dial its
	// database) finds out, and the region is re-checked at once rather
	// than at its next check in five minutes.
	proxy.Cut()
	g.Eventually(func() error {
		fresh := getTenant("lost-db")
		fresh.Spec.Ingest = &analyticsv1alpha1.IngestSpec{Autoscaling: &analyticsv1alpha1.AutoscalingSpec{MaxReplicas: 30}}
		return k8s.Update(ctx, fresh)
	}, wait, tick).Should(Succeed())
	g.Eventually(conditionOf("lost-db", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionFalse))
	g.Eventually(readyOf("lost"), 20*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonConnectionFailed))
	// The metrics say so too: the database is down, and provisioning failed.
	g.Eventually(databaseUp, wait, tick).Should(BeZero())
	g.Expect(gaugeValue("millimetric_storage_regions", "region", "US", "name", "lost", "ready", "False", "reason", "ConnectionFailed")()).
		To(BeEquivalentTo(1))
	g.Expect(failedProvisions()).To(BeNumerically(">", failedBefore), "millimetric_provision_duration_seconds{region=US,outcome=error}")

	// Back: the region's backoff re-check finds it, and the tenant follows.
	proxy.Restore()
	g.Eventually(readyOf("lost"), 30*time.Second, 100*time.Millisecond).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
	g.Eventually(conditionOf("lost-db", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Eventually(databaseUp, wait, tick).Should(BeEquivalentTo(1))
}

func TestARegionWhoseAdminSecretIsOutsideTheAllowedNamespaceIsRefusedWithoutAConnection(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// A listener standing in for the database counts every connection.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	var dialled atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			dialled.Add(1)
			_ = c.Close()
		}
	}()
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "pg-elsewhere"},
		StringData: map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, secret) })
	sr := &analyticsv1alpha1.StorageRegion{
		ObjectMeta: objectMeta("elsewhere"),
		Spec: analyticsv1alpha1.StorageRegionSpec{
			Region: analyticsv1alpha1.RegionUS,
			Postgres: analyticsv1alpha1.PostgresSpec{
				Host: "127.0.0.1", Port: ptr.To(int32(l.Addr().(*net.TCPAddr).Port)), Database: pg.Databases["US"],
				SSLMode:        analyticsv1alpha1.SSLModeVerifyFull,
				AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: "default", Name: secret.Name},
			},
		},
	}
	g.Expect(k8s.Create(ctx, sr)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, sr) })

	g.Eventually(readyOf("elsewhere"), wait, tick).Should(And(
		haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonSecretNotAllowed),
		HaveField("Message", ContainSubstring(`namespace "default"`)),
		HaveField("Message", ContainSubstring(systemNamespace))))
	g.Consistently(dialled.Load, 2*time.Second, 100*time.Millisecond).Should(BeZero(), "the operator connected for a region it refuses")
	// Refused, its database is not known to be down: it has no
	// database_up series, only its Ready reason.
	g.Eventually(gaugeValue("millimetric_storage_regions", "region", "US", "name", "elsewhere", "ready", "False", "reason", "SecretNotAllowed"),
		wait, tick).Should(BeEquivalentTo(1))
	_, up := gauge("millimetric_storage_region_database_up", "name", "elsewhere")()
	g.Expect(up).To(BeFalse(), "a region refused before any connection is reported as a database up or down")
}

// regionClock is the clock of the suite's StorageRegion reconciler: the real
// time moved by an offset, which a test moves to end retained tenants' holds.
var regionClock movedClock

type movedClock struct{ offset atomic.Int64 }

func (c *movedClock) now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// move moves the clock by d until the test ends.
func (c *movedClock) move(t testing.TB, d time.Duration) {
	c.offset.Add(int64(d))
	t.Cleanup(func() { c.offset.Add(-int64(d)) })
}

// recheck annotates a StorageRegion, which has it checked at once.
func recheck(t testing.TB, name string) {
	t.Helper()
	ctx := context.Background()
	NewWithT(t).Eventually(func() error {
		sr := &analyticsv1alpha1.StorageRegion{}
		if err := k8s.Get(ctx, client.ObjectKey{Name: name}, sr); err != nil {
			return err
		}
		patch := client.MergeFrom(sr.DeepCopy())
		if sr.Annotations == nil {
			sr.Annotations = map[string]string{}
		}
		sr.Annotations["test.millimetric.ai/recheck"] = time.Now().Format(time.RFC3339Nano)
		return k8s.Patch(ctx, sr, patch)
	}, wait, tick).Should(Succeed())
}

// usStatus reads the status of withRegions' StorageRegion us, nil when it
// cannot be read.
func usStatus() *analyticsv1alpha1.StorageRegionStatus {
	sr := &analyticsv1alpha1.StorageRegion{}
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: "us"}, sr); err != nil {
		return nil
	}
	return &sr.Status
}

// provisionedInUS provisions tenant directly in the US database, as the
// tenant reconciler would, and purges it after the test; it returns the
// store, for the test to retain the tenant as the finalizer would.
// deletedUID stands for the metadata.uid of a deleted tenant whose data is
// held.
const deletedUID = "00000000-0000-4000-8000-000000000001"

func provisionedInUS(t *testing.T, tenant string) *storage.Postgres {
	t.Helper()
	ctx := context.Background()
	store, err := storage.Open(ctx, pg.AdminConfig("US"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(store.Close)
	if _, err := store.Provision(ctx, tenant, storage.ProvisionOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Purge(ctx, tenant) })
	endHoldAfter(t, tenant)
	return store
}

func TestARegionPurgesARetainedTenantWhenItsHoldEnds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const tenant = "region-swept"
	store := provisionedInUS(t, tenant)

	// What the tenant finalizer does for deletionPolicy Retain, retainDays 3.
	hold := 3 * 24 * time.Hour
	deletedAt := time.Now().UTC().Truncate(time.Second)
	names, err := store.Names(ctx, tenant)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(names).NotTo(BeNil())
	g.Expect(store.Retain(ctx, tenant, deletedUID, deletedAt, hold, 30)).To(Succeed())
	recheck(t, "us")
	g.Eventually(usStatus, wait, tick).Should(And(
		HaveField("Retained", HaveValue(BeNumerically(">=", 1))),
		HaveField("NextRetainedExpiry", HaveValue(HaveField("Time", BeTemporally("<=", deletedAt.Add(hold)))))))
	retained := *usStatus().Retained
	g.Consistently(eventsAbout("us"), time.Second, tick).ShouldNot(ContainElement(HaveField("Note", ContainSubstring(tenant))),
		"the region purged a tenant whose hold has not ended")

	// Four days later the hold has ended: the next check purges the tenant.
	regionClock.move(t, 4*24*time.Hour)
	recheck(t, "us")
	g.Eventually(eventsAbout("us"), wait, tick).Should(ContainElement(And(
		HaveField("Type", corev1.EventTypeNormal),
		HaveField("Reason", "Purged"),
		HaveField("Note", And(
			ContainSubstring("purged retained tenant "+tenant+" (schema "+names.Schema),
			ContainSubstring("deleted "+deletedAt.Format(time.RFC3339)),
			ContainSubstring("held 3 days"))))))
	left, err := store.Verify(ctx, tenant)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left.Empty()).To(BeTrue(), "after the region's sweep: %s", left)
	g.Eventually(usStatus, wait, tick).Should(HaveField("Retained", HaveValue(BeNumerically("<", retained))))
	g.Expect(readyOf("us")()).To(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
}

func TestARegionIsCheckedAgainWhenItsNextHoldEnds(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const tenant = "region-ends-soon"
	store := provisionedInUS(t, tenant)

	// A 3-day hold that ends in 4 seconds: the check that sees it comes back
	// then, not after the 5-minute re-check interval.
	hold := 3 * 24 * time.Hour
	g.Expect(store.Retain(ctx, tenant, deletedUID, time.Now().Add(4*time.Second-hold), hold, 30)).To(Succeed())
	recheck(t, "us")
	g.Eventually(usStatus, wait, tick).Should(HaveField("Retained", HaveValue(BeNumerically(">=", 1))))
	g.Eventually(eventsAbout("us"), 20*time.Second, tick).Should(ContainElement(And(
		HaveField("Reason", "Purged"),
		HaveField("Note", ContainSubstring("purged retained tenant "+tenant+" ")))))
	left, err := store.Verify(ctx, tenant)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left.Empty()).To(BeTrue(), "after the region's sweep: %s", left)
}

func TestARegionWhoseSweepFailsStaysReadyAndSaysWhy(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const tenant = "region-sweep-fails"
	store := provisionedInUS(t, tenant)
	g.Expect(store.Retain(ctx, tenant, deletedUID, time.Now(), 3*24*time.Hour, 30)).To(Succeed())

	// A hold that ended, written by hand with a name no tenant can have:
	// the sweep cannot purge it.
	conn, err := pg.Connect(ctx, "US")
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = conn.Close(ctx) })
	_, err = conn.Exec(ctx, `INSERT INTO `+storage.OperatorSchema+`.retained_tenants VALUES ('Not_A_Tenant', 'tenant_x', now() - interval '2 days', now() - interval '1 day')`)
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() {
		_, _ = conn.Exec(ctx, `DELETE FROM `+storage.OperatorSchema+`.retained_tenants WHERE tenant = 'Not_A_Tenant'`)
	})

	recheck(t, "us")
	g.Eventually(eventsAbout("us"), wait, tick).Should(ContainElement(And(
		HaveField("Type", corev1.EventTypeWarning),
		HaveField("Reason", "SweepFailed"),
		HaveField("Note", ContainSubstring("Not_A_Tenant")))))
	g.Consistently(readyOf("us"), time.Second, tick).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
	g.Expect(usStatus()).To(HaveField("Retained", HaveValue(BeNumerically(">=", 2))))
	// The hold the sweep cannot purge ended a day ago: the metric the
	// RetainedDataOverdue alert reads says so.
	g.Expect(gaugeValue("millimetric_storage_region_overdue_hold_seconds", "name", "us")()).
		To(BeNumerically("~", (24 * time.Hour).Seconds(), time.Hour.Seconds()))
}

func TestAHoldPastItsEndIsReportedOverdueWhileItsRegionCannotBeChecked(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	proxy := pg.NewProxy(t)
	t.Cleanup(proxy.Restore)
	adminSecret(t, "overdue-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	storageRegion(t, "overdue", analyticsv1alpha1.RegionUS, proxy.Port, "overdue-admin")
	const tenant = "overdue-held"
	store := provisionedInUS(t, tenant)
	hold := 3 * 24 * time.Hour
	g.Expect(store.Retain(ctx, tenant, deletedUID, time.Now().UTC().Truncate(time.Second), hold, 30)).To(Succeed())
	recheck(t, "overdue")
	overdue := gaugeValue("millimetric_storage_region_overdue_hold_seconds", "name", "overdue")
	g.Eventually(func() *int32 { return getRegion("overdue").Status.Retained }, wait, tick).Should(HaveValue(BeNumerically(">=", 1)))
	g.Expect(overdue()).To(BeZero(), "a hold that has not ended is reported overdue")

	// The region's database goes away, so its sweep cannot run, and the hold
	// ends: four days later it is a day overdue.
	proxy.Cut()
	recheck(t, "overdue")
	g.Eventually(readyOf("overdue"), wait, tick).Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonConnectionFailed))
	regionClock.move(t, 4*24*time.Hour)
	g.Expect(overdue()).To(BeNumerically("~", (24 * time.Hour).Seconds(), time.Hour.Seconds()))

	// Back: the sweep purges it and nothing is overdue.
	proxy.Restore()
	g.Eventually(overdue, wait, tick).Should(BeZero())
	left, err := store.Verify(ctx, tenant)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(left.Empty()).To(BeTrue(), "after the region's sweep: %s", left)
}
