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
	"errors"
	"hash/fnv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// advisoryKey is the advisory lock key the operator used before its locks
// became rows in its own schema: the high 32 bits a key space, the low 32 a
// hash of a name anyone can know. A tenant that could take these could
// block another tenant, or the whole region.
func advisoryKey(space int64, name string) int64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return space<<32 | int64(h.Sum32())
}

const (
	advisoryTenantSpace    int64 = 0x6d6d7470 // provisioning, purging, holding a tenant
	advisoryRegionSpace    int64 = 0x6d6d7267 // database-wide changes
	advisoryRetentionSpace int64 = 0x6d6d7274 // a tenant's retention run
)

// isPermissionDenied says whether err is PostgreSQL's permission denied.
func isPermissionDenied(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

// Tenant A's owner and ingest role, each in turn, hold every lock they can
// reach that tenant B's retention, B's purge or the region's provisioning
// could need, while B's retention runs, B is purged and a new tenant is
// provisioned. A's roles may still execute the advisory lock functions
// here, as they can wherever the administrator is not a superuser and so
// cannot revoke them: the operator's locks must not depend on that.
func TestATenantCannotBlockAnotherTenantsRetentionPurgeOrProvisioning(t *testing.T) {
	for _, role := range []string{"owner", "ingest role"} {
		t.Run("as tenant A's "+role, func(t *testing.T) {
			ctx := testContext(t)
			// A short lock timeout: a blocked call fails in seconds.
			st := openStore(t, srv.AdminConfig("EU"), storage.WithLockTimeout(2*time.Second))
			aName, a := provision(t, st, "blocker")
			purgeAfter(t, st, aName)
			bName, b := provision(t, st, "blocked")
			purgeAfter(t, st, bName)
			asA := a.Owner
			if role == "ingest role" {
				asA = a.Ingest
			}
			admin := adminConn(t)
			if _, err := admin.Exec(ctx, `GRANT EXECUTE ON FUNCTION pg_advisory_lock(bigint), pg_try_advisory_lock(bigint) TO `+
				pgx.Identifier{asA.Username}.Sanitize()); err != nil {
				t.Fatal(err)
			}
			bOwner := tenantConn(t, b.Owner)
			insertEvents(t, bOwner, b.Owner.Schema, eventsOn(time.Now().AddDate(0, 0, -45), 10))

			holder := tenantConn(t, asA)
			for _, key := range []struct {
				what string
				key  int64
			}{
				{"B's retention lock", advisoryKey(advisoryRetentionSpace, b.Owner.Schema)},
				{"B's provisioning and purge lock", advisoryKey(advisoryTenantSpace, b.Owner.Schema)},
				{"the region's lock", advisoryKey(advisoryRegionSpace, "database")},
				{"the lock that makes the operator's schema", advisoryKey(advisoryRegionSpace, storage.OperatorSchema)},
			} {
				var held bool
				if err := holder.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key.key).Scan(&held); err != nil || !held {
					t.Fatalf("A holding the advisory key of %s: %v, %v", key.what, held, err)
				}
			}
			// The locks the operator and retention take now are rows A may
			// not lock, or even see.
			for _, sql := range []string{
				`SELECT * FROM ` + storage.OperatorSchema + `.locks FOR UPDATE`,
				`LOCK TABLE ` + storage.OperatorSchema + `.locks IN ACCESS EXCLUSIVE MODE`,
				`SELECT * FROM ` + b.Owner.Schema + `.schema_version FOR UPDATE`,
				`LOCK TABLE ` + b.Owner.Schema + `.schema_version IN ACCESS EXCLUSIVE MODE`,
			} {
				if _, err := holder.Exec(ctx, `BEGIN; `+sql); !isPermissionDenied(err) {
					t.Errorf("as %s, %s: %v; want permission denied", asA.Username, sql, err)
				}
				if _, err := holder.Exec(ctx, `ROLLBACK`); err != nil {
					t.Fatal(err)
				}
			}
			if locked, err := storage.HoldRetentionLock(ctx, holder, b.Owner.Schema); locked || !isPermissionDenied(err) {
				t.Errorf("as %s, taking B's retention lock: %v, %v; want permission denied", asA.Username, locked, err)
			}

			sum, err := storage.RunRetention(ctx, bOwner, b.Owner.Schema, 30, time.Now())
			if err != nil || sum.Skipped || sum.PartitionsDropped != 1 {
				t.Errorf("B's retention while A holds what it can: %+v, %v; want the expired day dropped", sum, err)
			}
			// A new tenant's first provisioning changes the database's ACL,
			// under the region's lock.
			cName := newTenantName("unblocked")
			purgeAfter(t, st, cName)
			if _, err := st.Provision(ctx, cName, storage.ProvisionOptions{}); err != nil {
				t.Errorf("provisioning a new tenant while A holds what it can: %v", err)
			}
			if err := st.Purge(ctx, bName); err != nil {
				t.Errorf("purging B while A holds what it can: %v", err)
			}
			if left, err := st.Verify(ctx, bName); err != nil || !left.Empty() {
				t.Errorf("after purging B: %s (%v)", left, err)
			}
		})
	}
}

// A tenant's ingest credentials cannot keep its own retention from running
// either: the retention lock is a row only the schema's owner may lock.
func TestTheIngestRoleCannotTakeItsTenantsRetentionLock(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, roles := provision(t, st, "own-ingest")
	purgeAfter(t, st, name)
	ingest := tenantConn(t, roles.Ingest)
	if locked, err := storage.HoldRetentionLock(ctx, ingest, roles.Owner.Schema); locked || !isPermissionDenied(err) {
		t.Errorf("the ingest role taking its tenant's retention lock: %v, %v; want permission denied", locked, err)
	}
	sum, err := storage.RunRetention(ctx, tenantConn(t, roles.Owner), roles.Owner.Schema, 30, time.Now())
	if err != nil || sum.Skipped {
		t.Errorf("retention after the ingest role tried: %+v, %v", sum, err)
	}
}

// executableCatalogFunctions lists the pg_catalog functions matching which
// (a condition on pg_proc p) that conn's role may execute.
func executableCatalogFunctions(t *testing.T, conn *pgx.Conn, which string) []string {
	t.Helper()
	var executable []string
	if err := conn.QueryRow(testContext(t), `
		SELECT COALESCE(array_agg(p.oid::regprocedure::text ORDER BY 1), '{}') FROM pg_proc p
		WHERE p.pronamespace = 'pg_catalog'::regnamespace AND (`+which+`)
		  AND has_function_privilege(p.oid, 'EXECUTE')`).Scan(&executable); err != nil {
		t.Fatal(err)
	}
	return executable
}

// Provisioning takes EXECUTE on every advisory lock function away from
// PUBLIC in the region's database, so no tenant role can take an advisory
// lock at all: not a key the operator or another application uses, not any.
func TestTenantRolesCannotTakeAdvisoryLocks(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, roles := provision(t, st, "no-advisory")
	purgeAfter(t, st, name)
	for _, c := range []storage.Credentials{roles.Owner, roles.Ingest} {
		conn := tenantConn(t, c)
		if executable := executableCatalogFunctions(t, conn, `p.proname LIKE 'pg\_advisory\_%' OR p.proname LIKE 'pg\_try\_advisory\_%'`); len(executable) > 0 {
			t.Errorf("%s may execute %v", c.Username, executable)
		}
		for _, sql := range []string{
			`SELECT pg_advisory_lock(1)`,
			`SELECT pg_try_advisory_lock(1, 2)`,
			`SELECT pg_advisory_lock_shared(1)`,
			`SELECT pg_advisory_xact_lock(1)`,
			`SELECT pg_try_advisory_xact_lock_shared(1)`,
			`SELECT pg_advisory_unlock_all()`,
		} {
			if _, err := conn.Exec(ctx, sql); !isPermissionDenied(err) {
				t.Errorf("as %s, %s: %v; want permission denied", c.Username, sql, err)
			}
		}
	}
}
