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

package storage_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/millimetric/tenant-operator/internal/storage"
)

const threeDays = 3 * 24 * time.Hour

// bothAdmins are the two kinds of region administrator the store must work
// for. Both share the EU database, so the second finds the table of holds
// the first made.
func bothAdmins() []struct {
	name string
	cfg  storage.AdminConfig
} {
	return []struct {
		name string
		cfg  storage.AdminConfig
	}{
		{"by a superuser administrator", srv.AdminConfig("EU")},
		{"by a CREATEROLE-only administrator", srv.LimitedAdminConfig("EU")},
	}
}

// uidSeq numbers the uids newUID makes.
var uidSeq atomic.Int64

// newUID is a metadata.uid for a deleted tenant, unique in the run.
func newUID() string {
	return fmt.Sprintf("00000000-0000-4000-8000-%012d", uidSeq.Add(1))
}

// purgeAfter purges the tenant when the test ends, whatever became of it.
func purgeAfter(t *testing.T, st storage.Store, tenant string) {
	t.Cleanup(func() { _ = st.Purge(context.Background(), tenant) })
}

// holdOf finds the tenant's hold in Retained, nil when it is not held.
func holdOf(t *testing.T, st storage.Store, tenant string) *storage.RetainedTenant {
	t.Helper()
	held, err := st.Retained(testContext(t))
	if err != nil {
		t.Fatalf("Retained: %v", err)
	}
	for i := range held {
		if held[i].Tenant == tenant {
			return &held[i]
		}
	}
	return nil
}

func sweptTenant(swept []storage.RetainedTenant, tenant string) bool {
	for _, r := range swept {
		if r.Tenant == tenant {
			return true
		}
	}
	return false
}

// countEvents counts the tenant's events as its owner.
func countEvents(t *testing.T, creds storage.Credentials) int64 {
	t.Helper()
	var n int64
	if err := tenantConn(t, creds).QueryRow(testContext(t), `SELECT count(*) FROM `+creds.Schema+`.events`).Scan(&n); err != nil {
		t.Fatalf("counting events as %s: %v", creds.Username, err)
	}
	return n
}

func TestARetainedTenantCannotLogInAndIsPurgedOnlyWhenItsHoldEnds(t *testing.T) {
	for _, admin := range bothAdmins() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "held")
			purgeAfter(t, st, name)
			deletedAt := time.Now().UTC().Truncate(time.Second)
			insertEvents(t, tenantConn(t, roles.Owner), roles.Owner.Schema, eventsOn(deletedAt, 5))
			ownerSession, ingestSession := tenantConn(t, roles.Owner), tenantConn(t, roles.Ingest)
			uid := newUID()

			if err := st.Retain(ctx, name, uid, deletedAt, threeDays, 30); err != nil {
				t.Fatalf("Retain: %v", err)
			}
			for _, c := range []storage.Credentials{roles.Owner, roles.Ingest} {
				if r := storage.ReasonFor(canLogIn(ctx, c)); r != storage.ReasonAuthenticationFailed {
					t.Errorf("right after Retain, logging in as %s: reason %q, want %q", c.Username, r, storage.ReasonAuthenticationFailed)
				}
			}
			if _, err := ownerSession.Exec(ctx, `SELECT 1`); err == nil {
				t.Errorf("the owner's open session still works after Retain")
			}
			if _, err := ingestSession.Exec(ctx, `SELECT 1`); err == nil {
				t.Errorf("the ingest role's open session still works after Retain")
			}
			want := storage.RetainedTenant{Tenant: name, UID: uid, Schema: roles.Owner.Schema, DeletedAt: deletedAt, ExpiresAt: deletedAt.Add(threeDays)}
			if got := holdOf(t, st, name); got == nil || !got.DeletedAt.Equal(want.DeletedAt) || !got.ExpiresAt.Equal(want.ExpiresAt) ||
				got.Schema != want.Schema || got.UID != uid || got.Hold() != threeDays {
				t.Fatalf("Retained lists %+v, want %+v", got, want)
			}
			if left, err := st.Verify(ctx, name); err != nil || !left.Schema || !left.Role || !left.IngestRole || left.Rows != 5 || left.Sessions != 0 {
				t.Fatalf("during the hold Verify says %+v (%v): want the schema, both roles and 5 rows kept, no session", left, err)
			}

			swept, err := st.SweepRetained(ctx, want.ExpiresAt.Add(-time.Second))
			if err != nil {
				t.Fatalf("SweepRetained before the hold ends: %v", err)
			}
			if sweptTenant(swept, name) {
				t.Fatalf("a sweep a second before the hold ends purged %s", name)
			}
			if left, err := st.Verify(ctx, name); err != nil || left.Rows != 5 {
				t.Fatalf("after a sweep before the hold ends, Verify says %+v (%v): want the 5 rows kept", left, err)
			}

			swept, err = st.SweepRetained(ctx, want.ExpiresAt)
			if err != nil {
				t.Fatalf("SweepRetained when the hold ends: %v", err)
			}
			if !sweptTenant(swept, name) {
				t.Fatalf("the sweep when the hold ends purged %+v, not %s", swept, name)
			}
			if left, err := st.Verify(ctx, name); err != nil || !left.Empty() {
				t.Errorf("after the sweep: %s (%v)", left, err)
			}
			if got := holdOf(t, st, name); got != nil {
				t.Errorf("after the sweep, Retained still lists %+v", got)
			}

			// Nothing is left to adopt: a tenant of the same name starts
			// empty, and one that asks for the data is told it is gone.
			var refused *storage.RetainedDataError
			if adopted, err := st.Adopt(ctx, name, uid); adopted != nil || !errors.As(err, &refused) || refused.Held != nil {
				t.Fatalf("Adopt by uid after the sweep = %v, %v; want a RetainedDataError with nothing held", adopted, err)
			}
			if adopted, err := st.Adopt(ctx, name, ""); err != nil || adopted != nil {
				t.Fatalf("Adopt after the sweep = %v, %v; want nil, nil", adopted, err)
			}
			again, err := st.Provision(ctx, name, storage.ProvisionOptions{})
			if err != nil {
				t.Fatalf("Provision after the sweep: %v", err)
			}
			if n := countEvents(t, again.Owner); n != 0 {
				t.Errorf("a tenant provisioned after the sweep starts with %d events, want none", n)
			}
		})
	}
}

func TestATenantAdoptedWithinItsHoldLogsInAgainWithItsData(t *testing.T) {
	for _, admin := range bothAdmins() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "adopted")
			purgeAfter(t, st, name)
			deletedAt := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
			insertEvents(t, tenantConn(t, roles.Owner), roles.Owner.Schema, eventsOn(deletedAt, 3))
			uid := newUID()
			if err := st.Retain(ctx, name, uid, deletedAt, threeDays, 30); err != nil {
				t.Fatalf("Retain: %v", err)
			}

			adopted, err := st.Adopt(ctx, name, uid)
			if err != nil {
				t.Fatalf("Adopt: %v", err)
			}
			if adopted == nil || !adopted.DeletedAt.Equal(deletedAt) || adopted.UID != uid {
				t.Fatalf("Adopt = %+v, want the hold of uid %s deleted at %s", adopted, uid, deletedAt)
			}
			if got := holdOf(t, st, name); got != nil {
				t.Errorf("after Adopt, Retained still lists %+v", got)
			}
			if again, err := st.Adopt(ctx, name, ""); err != nil || again != nil {
				t.Errorf("a second Adopt = %v, %v; want nil, nil: the hold is over", again, err)
			}

			// Provision, as the tenant controller runs it next, puts LOGIN back.
			back, err := st.Provision(ctx, name, storage.ProvisionOptions{
				ExistingPassword: roles.Owner.Password, ExistingIngestPassword: roles.Ingest.Password,
			})
			if err != nil {
				t.Fatalf("Provision after Adopt: %v", err)
			}
			for _, c := range []storage.Credentials{back.Owner, back.Ingest} {
				if err := canLogIn(ctx, c); err != nil {
					t.Errorf("after Adopt and Provision, %s cannot log in: %v", c.Username, err)
				}
			}
			if strings.Contains(admin.name, "superuser") && (back.Owner.Password != roles.Owner.Password || back.Ingest.Password != roles.Ingest.Password) {
				// A superuser checks the old passwords against the stored
				// verifiers, which NOLOGIN left alone; a CREATEROLE-only
				// administrator can only try to log in with them, which
				// NOLOGIN refused, so it gives new ones.
				t.Errorf("a superuser's Provision replaced passwords that still match")
			}
			if n := countEvents(t, back.Owner); n != 3 {
				t.Errorf("the adopted tenant has %d events, want the 3 it had", n)
			}

			// The sweep has nothing of it to purge, however late it runs.
			swept, err := st.SweepRetained(ctx, deletedAt.Add(storage.MaxRetainHold+time.Hour))
			if err != nil {
				t.Fatalf("SweepRetained: %v", err)
			}
			if sweptTenant(swept, name) {
				t.Fatalf("the sweep purged the adopted tenant %s", name)
			}
			if n := countEvents(t, back.Owner); n != 3 {
				t.Errorf("after a sweep the adopted tenant has %d events, want 3", n)
			}
		})
	}
}

func TestASecondRetainKeepsTheFirstHold(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, _ := provision(t, st, "twice")
	purgeAfter(t, st, name)
	first, uid := time.Now().UTC().Truncate(time.Second), newUID()
	if err := st.Retain(ctx, name, uid, first, threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	if err := st.Retain(ctx, name, newUID(), first.Add(24*time.Hour), storage.MaxRetainHold, 30); err != nil {
		t.Fatalf("second Retain: %v", err)
	}
	got := holdOf(t, st, name)
	if got == nil || got.UID != uid || !got.DeletedAt.Equal(first) || !got.ExpiresAt.Equal(first.Add(threeDays)) {
		t.Errorf("after a second Retain the hold is %+v, want the first: deleted %s, ending %s", got, first, first.Add(threeDays))
	}
}

func TestATenantWithNoSchemaIsNotHeld(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.LimitedAdminConfig("EU"))
	name := newTenantName("never-provisioned")
	if err := st.Retain(ctx, name, newUID(), time.Now(), threeDays, 30); err != nil {
		t.Fatalf("Retain of a tenant with no schema: %v", err)
	}
	if got := holdOf(t, st, name); got != nil {
		t.Errorf("Retained lists %+v for a tenant that has no schema", got)
	}
	if adopted, err := st.Adopt(ctx, name, ""); err != nil || adopted != nil {
		t.Errorf("Adopt = %v, %v; want nil, nil", adopted, err)
	}
}

func TestRetainRefusesAHoldOutsideThePolicy(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, roles := provision(t, st, "too-long")
	purgeAfter(t, st, name)
	for _, hold := range []time.Duration{0, -time.Hour, storage.MaxRetainHold + time.Second} {
		err := st.Retain(ctx, name, newUID(), time.Now(), hold, 30)
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Retain with a hold of %s: %v; want an error naming the tenant", hold, err)
		}
	}
	if got := holdOf(t, st, name); got != nil {
		t.Errorf("a refused Retain recorded %+v", got)
	}
	if err := canLogIn(ctx, roles.Owner); err != nil {
		t.Errorf("a refused Retain took the owner's login: %v", err)
	}
}

func TestTenantsCannotReadOrWriteTheHolds(t *testing.T) {
	ctx := testContext(t)
	// In the US database, which no other test retains in, a CREATEROLE-only
	// administrator makes the table of holds itself.
	st := openStore(t, srv.LimitedAdminConfig("US"))
	held, _ := provision(t, st, "held-secret")
	purgeAfter(t, st, held)
	if err := st.Retain(ctx, held, newUID(), time.Now(), threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	_, roles := provision(t, st, "nosy")
	table := storage.OperatorSchema + ".retained_tenants"
	for _, c := range []storage.Credentials{roles.Owner, roles.Ingest} {
		conn := tenantConn(t, c)
		for _, sql := range []string{
			`SELECT count(*) FROM ` + table,
			`INSERT INTO ` + table + ` VALUES ('x', 'tenant_x', now(), now() + interval '1 day')`,
			`DELETE FROM ` + table,
			`CREATE TABLE ` + storage.OperatorSchema + `.mine (id int)`,
		} {
			_, err := conn.Exec(ctx, sql)
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
				t.Errorf("as %s, %q: %v; want permission denied (42501)", c.Username, sql, err)
			}
		}
	}
	if got := holdOf(t, st, held); got == nil {
		t.Errorf("the hold of %s is gone", held)
	}
}

func TestAHoldThatEndedIsNotGivenBack(t *testing.T) {
	ctx := testContext(t)
	deletedAt := time.Now().UTC().Truncate(time.Second)
	st := openStore(t, srv.LimitedAdminConfig("EU"))
	// The same region, a clock past the hold's end.
	late := openStore(t, srv.LimitedAdminConfig("EU"), storage.WithClock(func() time.Time { return deletedAt.Add(threeDays) }))
	name, _ := provision(t, st, "too-late")
	purgeAfter(t, st, name)
	uid := newUID()
	if err := st.Retain(ctx, name, uid, deletedAt, threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	adopted, err := late.Adopt(ctx, name, uid)
	if storage.ReasonFor(err) != storage.ReasonBusy || adopted != nil || !strings.Contains(err.Error(), name) {
		t.Fatalf("Adopt after the hold ended = %v, %v; want no time and a %s error naming the tenant", adopted, err, storage.ReasonBusy)
	}
	if holdOf(t, st, name) == nil {
		t.Fatalf("a refused Adopt ended the hold")
	}
	swept, err := st.SweepRetained(ctx, deletedAt.Add(threeDays))
	if err != nil || !sweptTenant(swept, name) {
		t.Fatalf("SweepRetained = %+v, %v; want %s purged", swept, err, name)
	}
	if adopted, err := late.Adopt(ctx, name, ""); err != nil || adopted != nil {
		t.Errorf("Adopt after the sweep = %v, %v; want nil, nil", adopted, err)
	}
}

func TestTheHoldOfATenantPurgedAlreadyIsJustRemoved(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, _ := provision(t, st, "gone-before")
	deletedAt := time.Now().UTC().Truncate(time.Second)
	if err := st.Retain(ctx, name, newUID(), deletedAt, threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	if err := st.Purge(ctx, name); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	swept, err := st.SweepRetained(ctx, deletedAt.Add(threeDays))
	if err != nil || !sweptTenant(swept, name) {
		t.Fatalf("SweepRetained = %+v, %v; want the hold of %s ended", swept, err, name)
	}
	if got := holdOf(t, st, name); got != nil {
		t.Errorf("the hold is still listed: %+v", got)
	}
}

// The sweep and Adopt race for the same tenants; each tenant must end up
// either adopted with its data or purged, never adopted and then purged.
func TestTheSweepNeverPurgesATenantAdoptedAtTheSameTime(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"), storage.WithMaxConns(8))
	deletedAt := time.Now().UTC().Truncate(time.Second)
	const n = 4
	names, uids := make([]string, n), make([]string, n)
	for i := range names {
		names[i], _ = provision(t, st, "raced")
		uids[i] = newUID()
		purgeAfter(t, st, names[i])
		if err := st.Retain(ctx, names[i], uids[i], deletedAt, time.Hour, 30); err != nil {
			t.Fatalf("Retain: %v", err)
		}
	}

	var wg sync.WaitGroup
	adopted := make([]*storage.RetainedTenant, n)
	adoptErrs := make([]error, n)
	var swept []storage.RetainedTenant
	var sweepErr error
	wg.Go(func() { swept, sweepErr = st.SweepRetained(ctx, deletedAt.Add(2*time.Hour)) })
	for i := range names {
		wg.Go(func() { adopted[i], adoptErrs[i] = st.Adopt(ctx, names[i], uids[i]) })
	}
	wg.Wait()
	if sweepErr != nil {
		t.Fatalf("SweepRetained: %v", sweepErr)
	}

	for i, name := range names {
		left, err := st.Verify(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		purged := sweptTenant(swept, name)
		switch {
		case adopted[i] != nil && purged:
			t.Errorf("%s was adopted and then purged", name)
		case adopted[i] != nil && !left.Schema:
			t.Errorf("%s was adopted but its schema is gone: %s", name, left)
		case adopted[i] == nil && !purged:
			t.Errorf("%s was neither adopted (%v) nor purged", name, adoptErrs[i])
		case purged && !left.Empty():
			t.Errorf("%s was purged but %s", name, left)
		case adoptErrs[i] != nil && storage.ReasonFor(adoptErrs[i]) != storage.ReasonBusy && (!purged || !nothingHeld(adoptErrs[i])):
			t.Errorf("Adopt(%s) failed: %v", name, adoptErrs[i])
		}
	}
}

// nothingHeld says whether err is Adopt finding no hold: what it rightly
// says when the sweep purged the tenant first.
func nothingHeld(err error) bool {
	var retained *storage.RetainedDataError
	return errors.As(err, &retained) && retained.Held == nil
}

// A purge that fails after the sweep claimed the tenant leaves it held and
// claimed: Adopt refuses it even by a clock within the hold, and the next
// sweep finishes the purge.
func TestATenantWhosePurgeBeganIsNotGivenBack(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"), storage.WithLockTimeout(time.Second))
	name, roles := provision(t, st, "half-purged")
	purgeAfter(t, st, name)
	deletedAt, uid := time.Now().UTC().Truncate(time.Second), newUID()
	if err := st.Retain(ctx, name, uid, deletedAt, threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	// A session that is not the tenant's, and so not ended, holds the
	// tenant's table: the purge cannot drop it.
	blocker := adminConn(t)
	if _, err := blocker.Exec(ctx, `BEGIN; LOCK TABLE `+roles.Owner.Schema+`.events IN ACCESS SHARE MODE`); err != nil {
		t.Fatal(err)
	}
	swept, err := st.SweepRetained(ctx, deletedAt.Add(threeDays))
	if err == nil || storage.ReasonFor(err) != storage.ReasonBusy || !strings.Contains(err.Error(), name) || sweptTenant(swept, name) {
		t.Fatalf("SweepRetained with the table held = %+v, %v; want a %s error naming %s", swept, err, storage.ReasonBusy, name)
	}
	if holdOf(t, st, name) == nil {
		t.Fatalf("a failed purge ended the hold")
	}
	// The store's clock (now) is within the hold; the claim still refuses.
	adopted, err := st.Adopt(ctx, name, uid)
	if storage.ReasonFor(err) != storage.ReasonBusy || adopted != nil {
		t.Fatalf("Adopt of a tenant whose purge began = %v, %v; want a %s error", adopted, err, storage.ReasonBusy)
	}

	if _, err := blocker.Exec(ctx, `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	swept, err = st.SweepRetained(ctx, deletedAt.Add(threeDays))
	if err != nil || !sweptTenant(swept, name) {
		t.Fatalf("the next SweepRetained = %+v, %v; want %s purged", swept, err, name)
	}
	if left, err := st.Verify(ctx, name); err != nil || !left.Empty() {
		t.Errorf("after the second sweep: %s (%v)", left, err)
	}
	if adopted, err := st.Adopt(ctx, name, ""); err != nil || adopted != nil {
		t.Errorf("Adopt after the purge = %v, %v; want nil, nil", adopted, err)
	}
}

// A name alone never hands a tenant someone else's retained data: only the
// deleted tenant's uid does, and what is refused stays held as it was.
func TestHeldDataGoesOnlyToATenantThatNamesTheDeletedTenantsUID(t *testing.T) {
	for _, admin := range bothAdmins() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "uid-held")
			purgeAfter(t, st, name)
			insertEvents(t, tenantConn(t, roles.Owner), roles.Owner.Schema, eventsOn(time.Now(), 2))
			deletedAt, uid := time.Now().UTC().Truncate(time.Second), newUID()
			if err := st.Retain(ctx, name, uid, deletedAt, threeDays, 30); err != nil {
				t.Fatalf("Retain: %v", err)
			}
			stillHeld := func(when string) {
				t.Helper()
				if got, err := st.Hold(ctx, name); err != nil || got == nil || got.UID != uid || !got.DeletedAt.Equal(deletedAt) {
					t.Fatalf("%s, Hold = %+v, %v; want the hold of uid %s", when, got, err, uid)
				}
				if err := canLogIn(ctx, roles.Owner); storage.ReasonFor(err) != storage.ReasonAuthenticationFailed {
					t.Fatalf("%s, the held owner can log in: %v", when, err)
				}
			}

			for _, tc := range []struct{ name, uid, says string }{
				{"a tenant that does not ask for the data", "", "adopting it was not asked for"},
				{"a tenant that names another deleted tenant's uid", newUID(), "not "},
			} {
				adopted, err := st.Adopt(ctx, name, tc.uid)
				var refused *storage.RetainedDataError
				if adopted != nil || !errors.As(err, &refused) || refused.Held == nil || refused.Held.UID != uid ||
					refused.UID != tc.uid || !strings.Contains(err.Error(), tc.says) {
					t.Fatalf("Adopt by %s = %+v, %v; want a RetainedDataError carrying the hold of %s", tc.name, adopted, err, uid)
				}
				stillHeld("after Adopt by " + tc.name)
			}

			adopted, err := st.Adopt(ctx, name, uid)
			if err != nil || adopted == nil || adopted.UID != uid {
				t.Fatalf("Adopt by the deleted tenant's uid = %+v, %v", adopted, err)
			}
			back, err := st.Provision(ctx, name, storage.ProvisionOptions{})
			if err != nil {
				t.Fatalf("Provision after Adopt: %v", err)
			}
			if n := countEvents(t, back.Owner); n != 2 {
				t.Errorf("the adopting tenant has %d events, want the 2 it took over", n)
			}
			if got, err := st.Hold(ctx, name); err != nil || got != nil {
				t.Errorf("after Adopt, Hold = %+v, %v; want none", got, err)
			}
		})
	}
}

// A hold recorded before holds carried the deleted tenant's uid cannot be
// adopted by anyone; the sweep still purges it when it ends.
func TestAHoldWithoutAUIDIsNeverAdopted(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, _ := provision(t, st, "no-uid")
	purgeAfter(t, st, name)
	deletedAt, uid := time.Now().UTC().Truncate(time.Second), newUID()
	if err := st.Retain(ctx, name, uid, deletedAt, threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	if _, err := adminConn(t).Exec(ctx, `UPDATE `+storage.OperatorSchema+`.retained_tenants SET tenant_uid = NULL WHERE tenant = $1`, name); err != nil {
		t.Fatal(err)
	}
	for _, asked := range []string{"", uid} {
		adopted, err := st.Adopt(ctx, name, asked)
		var refused *storage.RetainedDataError
		if adopted != nil || !errors.As(err, &refused) || refused.Held == nil || refused.Held.UID != "" {
			t.Errorf("Adopt(%q) of a hold without a uid = %+v, %v; want it refused", asked, adopted, err)
		}
	}
	swept, err := st.SweepRetained(ctx, deletedAt.Add(threeDays))
	if err != nil || !sweptTenant(swept, name) {
		t.Fatalf("SweepRetained = %+v, %v; want %s purged", swept, err, name)
	}
}

// A hold whose schema was purged by hand holds nothing: a tenant of that
// name is not kept waiting for it.
func TestAHoldWhoseSchemaIsGoneHoldsNothing(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, _ := provision(t, st, "hand-purged")
	if err := st.Retain(ctx, name, newUID(), time.Now(), threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	if err := st.Purge(ctx, name); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if adopted, err := st.Adopt(ctx, name, ""); err != nil || adopted != nil {
		t.Fatalf("Adopt = %+v, %v; want nil, nil", adopted, err)
	}
	if got := holdOf(t, st, name); got != nil {
		t.Errorf("the hold of a purged schema is still listed: %+v", got)
	}
}

// A region whose table of holds was made before holds carried a uid gets
// the column at the operator's next use of it, and its holds are kept.
func TestATableOfHoldsFromBeforeUIDsIsUpgraded(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.LimitedAdminConfig("US"))
	name, _ := provision(t, st, "old-table")
	purgeAfter(t, st, name)
	if err := st.Retain(ctx, name, newUID(), time.Now(), threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	us, err := srv.Connect(ctx, "US")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = us.Close(ctx) }()
	if _, err := us.Exec(ctx, `ALTER TABLE `+storage.OperatorSchema+`.retained_tenants DROP COLUMN tenant_uid`); err != nil {
		t.Fatal(err)
	}
	if got := holdOf(t, st, name); got == nil || got.UID != "" {
		t.Fatalf("after the upgrade, Retained lists %+v; want the hold kept, without a uid", got)
	}
}

// TestTheSweepKeepsEnforcingAHeldTenantsPlanWindow: a held tenant's
// retention job no longer runs (its roles cannot log in), so the sweep
// rolls up and drops the raw events its 30-day plan no longer keeps, as
// the clock moves through the hold, and keeps the rest.
func TestTheSweepKeepsEnforcingAHeldTenantsPlanWindow(t *testing.T) {
	for _, admin := range bothAdmins() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "held-window")
			purgeAfter(t, st, name)
			s := roles.Owner.Schema
			deletedAt := time.Now().UTC().Truncate(time.Second)
			owner := tenantConn(t, roles.Owner)
			var evs []event
			for _, daysAgo := range []int{40, 20, 5} {
				day := deletedAt.AddDate(0, 0, -daysAgo)
				if _, err := storage.EnsureDayPartitions(ctx, owner, s, day, day); err != nil {
					t.Fatal(err)
				}
				evs = append(evs, eventsOn(day, 3)...)
			}
			insertEvents(t, owner, s, evs)
			if err := st.Retain(ctx, name, newUID(), deletedAt, storage.MaxRetainHold, 30); err != nil {
				t.Fatal(err)
			}
			su := adminConn(t)
			days := func() (raw []string, rolledUp []string) {
				t.Helper()
				err := su.QueryRow(ctx, `
					SELECT COALESCE((SELECT array_agg(DISTINCT received_at::date::text ORDER BY received_at::date::text) FROM `+s+`.events), '{}'),
					       COALESCE((SELECT array_agg(day::text ORDER BY day) FROM `+s+`.rollup_ledger), '{}')`).Scan(&raw, &rolledUp)
				if err != nil {
					t.Fatal(err)
				}
				return raw, rolledUp
			}
			day := func(daysAgo int) string { return deletedAt.AddDate(0, 0, -daysAgo).Format(time.DateOnly) }

			for _, step := range []struct {
				after         time.Duration
				raw, rolledUp []string
			}{
				{time.Hour, []string{day(20), day(5)}, []string{day(40)}},
				{15 * 24 * time.Hour, []string{day(5)}, []string{day(40), day(20)}},
			} {
				if _, err := st.SweepRetained(ctx, deletedAt.Add(step.after)); err != nil {
					t.Fatalf("SweepRetained %s into the hold: %v", step.after, err)
				}
				raw, rolledUp := days()
				if strings.Join(raw, " ") != strings.Join(step.raw, " ") || strings.Join(rolledUp, " ") != strings.Join(step.rolledUp, " ") {
					t.Errorf("%s into the hold: raw events on %v, rolled up %v; want raw %v, rolled up %v",
						step.after, raw, rolledUp, step.raw, step.rolledUp)
				}
			}
			var pageviews int64
			if err := su.QueryRow(ctx, `SELECT COALESCE(sum(events), 0) FROM `+s+`.daily_aggregates`).Scan(&pageviews); err != nil || pageviews != 6 {
				t.Errorf("the aggregates count %d events (%v), want the 6 of the two expired days", pageviews, err)
			}
			if holdOf(t, st, name) == nil {
				t.Error("the tenant is no longer held")
			}
		})
	}
}
