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
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// memberships lists the memberships that involve role, as "member in role"
// pairs.
func memberships(t *testing.T, conn *pgx.Conn, role string) []string {
	t.Helper()
	rows, err := conn.Query(testContext(t), `
		SELECT m.rolname || ' in ' || r.rolname
		FROM pg_auth_members am JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
		WHERE r.rolname = $1 OR m.rolname = $1 ORDER BY 1`, role)
	if err != nil {
		t.Fatal(err)
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// handMadeRole makes role (and its spy, a member of it) as the superuser,
// as another user with CREATEROLE could, and drops both after the test.
func handMadeRole(t *testing.T, conn *pgx.Conn, role, spy string) {
	t.Helper()
	ctx := testContext(t)
	for _, stmt := range []string{
		`CREATE ROLE ` + pgx.Identifier{role}.Sanitize() + ` NOLOGIN`,
		`CREATE ROLE ` + pgx.Identifier{spy}.Sanitize() + ` NOLOGIN`,
		`GRANT ` + pgx.Identifier{role}.Sanitize() + ` TO ` + pgx.Identifier{spy}.Sanitize(),
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, r := range []string{spy, role} {
			_, _ = conn.Exec(context.Background(), `DROP OWNED BY `+pgx.Identifier{r}.Sanitize()+`; DROP ROLE IF EXISTS `+pgx.Identifier{r}.Sanitize())
		}
	})
}

func TestProvisioningNeverTakesOverARoleItDidNotMake(t *testing.T) {
	for _, admin := range administrators() {
		for _, which := range []string{"owner", "ingest"} {
			t.Run(admin.name+", the "+which+" role", func(t *testing.T) {
				ctx := testContext(t)
				conn := adminConn(t)
				// Names someone can make a role of in advance are legacy
				// names, which a tenant provisioned before opaque names
				// has (a new tenant's are drawn at random): the store
				// gives them, as an older operator did.
				st := openStore(t, admin.cfg, storage.WithLegacyNames())
				name := newTenantName("squatted")
				role := storage.LegacyNames(name).Schema
				if which == "ingest" {
					role = storage.LegacyNames(name).IngestRole
				}
				spy := "spy_" + strings.ReplaceAll(name, "-", "_")
				handMadeRole(t, conn, role, spy)

				_, err := st.Provision(ctx, name, storage.ProvisionOptions{})
				if storage.ReasonFor(err) != storage.ReasonRoleConflict {
					t.Fatalf("Provision = %v; want %s", err, storage.ReasonRoleConflict)
				}
				if !strings.Contains(err.Error(), "role "+role+" exists but was not made by the operator") {
					t.Errorf("the message does not say which role: %v", err)
				}
				// Nothing of it was changed: no LOGIN, no password, its
				// member kept, and nothing of the tenant made.
				var login bool
				var password *string
				if err := conn.QueryRow(ctx, `SELECT rolcanlogin, rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&login, &password); err != nil {
					t.Fatal(err)
				}
				if login || password != nil {
					t.Errorf("the hand-made role was changed: login %v, password set %v", login, password != nil)
				}
				if got := memberships(t, conn, role); len(got) != 1 || got[0] != spy+" in "+role {
					t.Errorf("memberships of the hand-made role = %v; want only %s in %s", got, spy, role)
				}
				left, err := st.Verify(ctx, name)
				if err != nil || !left.Empty() {
					t.Errorf("Verify = %s, %v; want nothing of the tenant (the hand-made role is not its)", left, err)
				}

				// Purging the tenant (deleting it) leaves the role, which is
				// not its own.
				if err := st.Purge(ctx, name); err != nil {
					t.Fatalf("Purge: %v", err)
				}
				var exists bool
				if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil || !exists {
					t.Errorf("Purge dropped the hand-made role %s (%v)", role, err)
				}
			})
		}
	}
}

func TestProvisioningRevokesMembershipsItDidNotGrant(t *testing.T) {
	for _, admin := range administrators() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := adminConn(t)
			st := openStore(t, admin.cfg)
			name, p := provision(t, st, "members")
			purgeAfter(t, st, name)
			owner, ingest := p.Owner.Username, p.Ingest.Username
			spy := "spy_" + strings.ReplaceAll(name, "-", "_")
			if _, err := conn.Exec(ctx, `CREATE ROLE `+spy+` NOLOGIN`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _, _ = conn.Exec(context.Background(), `DROP ROLE IF EXISTS `+spy) })
			before := map[string][]string{owner: memberships(t, conn, owner), ingest: memberships(t, conn, ingest)}
			// Granted by hand: a spy that may act as either role, and the
			// roles given predefined roles' rights (every table's rows,
			// every session's statements).
			for _, stmt := range []string{
				`GRANT ` + owner + ` TO ` + spy,
				`GRANT ` + ingest + ` TO ` + spy,
				`GRANT pg_read_all_data TO ` + owner,
				`GRANT pg_read_all_stats TO ` + ingest,
			} {
				if _, err := conn.Exec(ctx, stmt); err != nil {
					t.Fatal(err)
				}
			}

			if _, err := st.Provision(ctx, name, storage.ProvisionOptions{ExistingPassword: p.Owner.Password, ExistingIngestPassword: p.Ingest.Password}); err != nil {
				t.Fatalf("Provision: %v", err)
			}
			for _, role := range []string{owner, ingest} {
				got := memberships(t, conn, role)
				if strings.Join(got, ",") != strings.Join(before[role], ",") {
					t.Errorf("memberships of %s after provisioning = %v; want those the operator granted, %v", role, got, before[role])
				}
			}
			// Still the tenant's: its owner works as before.
			tenant := tenantConn(t, p.Owner)
			if _, err := tenant.Exec(ctx, `INSERT INTO `+owner+`.events (received_at, event_name) VALUES (now(), 'pageview')`); err != nil {
				t.Errorf("the owner after its memberships were revoked: %v", err)
			}
		})
	}
}

func TestATenantMadeBeforeTheRegistryOfRolesKeepsWorking(t *testing.T) {
	for _, admin := range administrators() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			conn := adminConn(t)
			st := openStore(t, admin.cfg)
			// An operator from before the registry and the mapping of
			// names: the tenant's legacy roles and schema are there, the
			// registry and the mapping are not. A role made by hand before
			// the upgrade has no schema to prove it is a tenant's.
			name, p := provision(t, openStore(t, admin.cfg, storage.WithLegacyNames()), "upgraded")
			purgeAfter(t, st, name)
			legacy := storage.LegacyNames(name)
			if p.Owner.Username != legacy.Schema || p.Ingest.Username != legacy.IngestRole {
				t.Fatalf("the older operator's tenant has %s and %s, want its legacy names %+v", p.Owner.Username, p.Ingest.Username, legacy)
			}
			squatted := newTenantName("squatted-before")
			squattedRole := storage.LegacyNames(squatted).Schema
			handMadeRole(t, conn, squattedRole, "spy_"+strings.ReplaceAll(squatted, "-", "_"))
			for _, table := range []string{"tenant_roles", "tenant_names"} {
				if _, err := conn.Exec(ctx, `DROP TABLE `+storage.OperatorSchema+`.`+table); err != nil {
					t.Fatal(err)
				}
			}

			got, err := st.Provision(ctx, name, storage.ProvisionOptions{ExistingPassword: p.Owner.Password, ExistingIngestPassword: p.Ingest.Password})
			if err != nil {
				t.Fatalf("Provision after the upgrade: %v", err)
			}
			if got.Owner.Password != p.Owner.Password || got.Ingest.Password != p.Ingest.Password {
				t.Error("the upgraded tenant's passwords were replaced")
			}
			// It keeps its legacy names, where its data is, and they are
			// recorded as its names.
			if got.Owner.Username != legacy.Schema || got.Owner.Schema != legacy.Schema || got.Ingest.Username != legacy.IngestRole {
				t.Errorf("after the upgrade the tenant has %s, %s and %s, want its legacy names %+v", got.Owner.Username, got.Owner.Schema, got.Ingest.Username, legacy)
			}
			if rec := recorded(t, st, name); rec != legacy {
				t.Errorf("recorded names %+v, want the legacy %+v", rec, legacy)
			}
			var registered []string
			rows, err := conn.Query(ctx, `SELECT role FROM `+storage.OperatorSchema+`.tenant_roles WHERE schema = $1 ORDER BY role`, legacy.Schema)
			if err != nil {
				t.Fatal(err)
			}
			if registered, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
				t.Fatal(err)
			}
			if want := []string{legacy.IngestRole, legacy.Schema}; strings.Join(registered, ",") != strings.Join(want, ",") {
				t.Errorf("registered = %v; want %v", registered, want)
			}
			// The tenant whose legacy role was made by hand is not given
			// it: it gets opaque names, and the hand-made role is left
			// as it was.
			fresh, err := st.Provision(ctx, squatted, storage.ProvisionOptions{})
			if err != nil {
				t.Fatalf("Provision of the tenant whose legacy role was made by hand: %v", err)
			}
			purgeAfter(t, st, squatted)
			if fresh.Owner.Username == squattedRole {
				t.Errorf("the tenant was given the hand-made role %s", squattedRole)
			}
			var login bool
			if err := conn.QueryRow(ctx, `SELECT rolcanlogin FROM pg_roles WHERE rolname = $1`, squattedRole).Scan(&login); err != nil || login {
				t.Errorf("the hand-made role %s was changed: LOGIN %v (%v)", squattedRole, login, err)
			}
			// And it is purged as the operator's.
			if err := st.Purge(ctx, name); err != nil {
				t.Fatalf("Purge: %v", err)
			}
			if left, err := st.Verify(ctx, name); err != nil || !left.Empty() {
				t.Errorf("Verify after the purge = %s, %v", left, err)
			}
			var exists bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = ANY($1))`,
				[]string{legacy.Schema, legacy.IngestRole}).Scan(&exists); err != nil || exists {
				t.Errorf("a role of the purged tenant is left (%v)", err)
			}
		})
	}
}
