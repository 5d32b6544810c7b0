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
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// catalogNames are the names a session can list in the catalogs every role
// may read: schemas, roles, databases, relations and functions of every
// schema, and the sessions of the server (their role, application and
// database), each as "catalog: name".
const catalogNames = `
	SELECT 'pg_namespace: ' || nspname FROM pg_catalog.pg_namespace
	UNION ALL SELECT 'pg_roles: ' || rolname FROM pg_catalog.pg_roles
	UNION ALL SELECT 'pg_database: ' || datname FROM pg_catalog.pg_database
	UNION ALL SELECT 'pg_class: ' || relname FROM pg_catalog.pg_class
	UNION ALL SELECT 'pg_proc: ' || proname FROM pg_catalog.pg_proc
	UNION ALL SELECT 'pg_stat_activity: ' || concat_ws(' ', usename, application_name, datname) FROM pg_catalog.pg_stat_activity`

func TestNoTenantRoleCanListAnotherCustomersName(t *testing.T) {
	for _, admin := range administrators() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			// Two customers, with a session each open meanwhile, and a
			// third tenant whose roles look around.
			var customers []string
			for _, prefix := range []string{"acme-widgets", "globex"} {
				name, roles := provision(t, st, prefix)
				purgeAfter(t, st, name)
				customers = append(customers, name)
				tenantConn(t, roles.Owner)
				tenantConn(t, roles.Ingest)
			}
			nosy, roles := provision(t, st, "nosy")
			purgeAfter(t, st, nosy)

			for _, c := range []storage.Credentials{roles.Owner, roles.Ingest} {
				conn := tenantConn(t, c)
				rows, err := conn.Query(ctx, catalogNames)
				if err != nil {
					t.Fatalf("listing the catalogs as %s: %v", c.Username, err)
				}
				seen, err := pgx.CollectRows(rows, pgx.RowTo[string])
				if err != nil {
					t.Fatal(err)
				}
				t.Logf("as %s: %d names in pg_namespace, pg_roles, pg_database, pg_class, pg_proc and pg_stat_activity", c.Username, len(seen))
				for _, customer := range customers {
					// The Kubernetes name, its namespace, and the name as an
					// identifier ('-' as '_').
					for _, form := range []string{customer, "tenant-" + customer, strings.ReplaceAll(customer, "-", "_")} {
						for _, name := range seen {
							if strings.Contains(strings.ToLower(name), form) {
								t.Errorf("as %s, customer %s is listed: %s", c.Username, customer, name)
							}
						}
					}
				}
				// Which names are whose is recorded, and only where no
				// tenant role may look.
				for _, sql := range []string{
					`SELECT tenant FROM ` + storage.OperatorSchema + `.tenant_names`,
					`SELECT tenant FROM ` + storage.OperatorSchema + `.retained_tenants`,
				} {
					_, err := conn.Exec(ctx, sql)
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
						t.Errorf("as %s, %q: %v; want permission denied (42501)", c.Username, sql, err)
					}
				}
			}
		})
	}
}

var (
	opaqueSchema = regexp.MustCompile(`^t_[a-z2-7]{26}$`)
	opaqueIngest = regexp.MustCompile(`^i_[a-z2-7]{26}$`)
)

func TestANewTenantGetsOpaqueNamesRecordedWithItsUID(t *testing.T) {
	ctx := testContext(t)
	conn := adminConn(t)
	st := openStore(t, srv.AdminConfig("EU"))
	name, uid := newTenantName("opaque"), newUID()
	first, err := st.Provision(ctx, name, storage.ProvisionOptions{UID: uid})
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	purgeAfter(t, st, name)
	names := storage.TenantNames{Schema: first.Owner.Schema, IngestRole: first.Ingest.Username}
	if !opaqueSchema.MatchString(names.Schema) || first.Owner.Username != names.Schema ||
		!opaqueIngest.MatchString(names.IngestRole) || names.IngestRole[2:] != names.Schema[2:] {
		t.Fatalf("names %+v (owner %s), want t_<id> for the schema and its owner and i_<the same id>", names, first.Owner.Username)
	}
	recordedUID := func() string {
		var got *string
		if err := conn.QueryRow(ctx, `SELECT tenant_uid FROM `+storage.OperatorSchema+`.tenant_names WHERE tenant = $1`, name).Scan(&got); err != nil {
			t.Fatalf("the mapping's row of %s: %v", name, err)
		}
		if got == nil {
			return ""
		}
		return *got
	}
	if rec := recorded(t, st, name); rec != names {
		t.Errorf("recorded %+v, want %+v", rec, names)
	}
	if got := recordedUID(); got != uid {
		t.Errorf("recorded with uid %q, want %q", got, uid)
	}
	other, _ := provision(t, st, "opaque")
	purgeAfter(t, st, other)
	if o := recorded(t, st, other); o.Schema == names.Schema || o.IngestRole == names.IngestRole {
		t.Errorf("two tenants share a name: %+v and %+v", o, names)
	}

	// Provisioned again, with no Secret (a lost status and Secrets), the
	// tenant finds its names in the mapping, and its data with them.
	insertEvents(t, tenantConn(t, first.Owner), names.Schema, eventsOn(time.Now().UTC(), 2))
	again, err := st.Provision(ctx, name, storage.ProvisionOptions{UID: uid})
	if err != nil || again.Owner.Schema != names.Schema || again.Ingest.Username != names.IngestRole {
		t.Fatalf("Provision again = %s, %s (%v); want the recorded %+v", again.Owner.Schema, again.Ingest.Username, err, names)
	}
	if n := countEvents(t, again.Owner); n != 2 {
		t.Errorf("after provisioning again the tenant has %d events, want its 2", n)
	}

	// The tenant object made again with another uid (a restore without
	// status) takes the row over, as nothing holds it.
	restored := newUID()
	if back, err := st.Provision(ctx, name, storage.ProvisionOptions{UID: restored}); err != nil || back.Owner.Schema != names.Schema {
		t.Fatalf("Provision with a new uid = %s (%v); want the recorded %s", back.Owner.Schema, err, names.Schema)
	}
	if got := recordedUID(); got != restored {
		t.Errorf("after the restore the row has uid %q, want %q", got, restored)
	}

	// Held for the deleted tenant, the names go to no other uid.
	if err := st.Retain(ctx, name, restored, time.Now(), threeDays, 30); err != nil {
		t.Fatalf("Retain: %v", err)
	}
	var refused *storage.RetainedDataError
	if _, err := st.Provision(ctx, name, storage.ProvisionOptions{UID: newUID()}); !errors.As(err, &refused) || refused.Held == nil {
		t.Fatalf("Provision of another uid while the names are held = %v; want a RetainedDataError", err)
	}
	if got := recordedUID(); got != restored {
		t.Errorf("a refused Provision changed the row's uid to %q", got)
	}

	// Purged, nothing of it is left in the mapping, and a tenant of the
	// same name starts with new names.
	if err := st.Purge(ctx, name); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	if n, err := st.Names(ctx, name); err != nil || n != nil {
		t.Errorf("after the purge Names = %v, %v; want none", n, err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ($1, $2))`,
		names.Schema, names.IngestRole).Scan(&exists); err != nil || exists {
		t.Errorf("after the purge the schema or a role of %+v is left (%v)", names, err)
	}
	fresh, err := st.Provision(ctx, name, storage.ProvisionOptions{UID: newUID()})
	if err != nil {
		t.Fatalf("Provision after the purge: %v", err)
	}
	if fresh.Owner.Schema == names.Schema {
		t.Errorf("a new tenant of the same name got the purged tenant's schema %s", names.Schema)
	}
}

func TestATenantWithALegacySchemaKeepsItsNamesAndData(t *testing.T) {
	ctx := testContext(t)
	conn := adminConn(t)
	// Provisioned by an operator from before opaque names: no row in the
	// mapping.
	name, old := provision(t, openStore(t, srv.AdminConfig("EU"), storage.WithLegacyNames()), "legacy")
	legacy := storage.LegacyNames(name)
	if old.Owner.Schema != legacy.Schema || old.Ingest.Username != legacy.IngestRole {
		t.Fatalf("the older operator's tenant has %s and %s, want %+v", old.Owner.Schema, old.Ingest.Username, legacy)
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+storage.OperatorSchema+`.tenant_names WHERE tenant = $1`, name); err != nil {
		t.Fatal(err)
	}
	insertEvents(t, tenantConn(t, old.Owner), legacy.Schema, eventsOn(time.Now().UTC(), 3))
	st := openStore(t, srv.AdminConfig("EU"))
	purgeAfter(t, st, name)

	// Before this operator provisions it, it finds it by its legacy names.
	if n, err := st.Names(ctx, name); err != nil || n == nil || *n != legacy {
		t.Errorf("Names before provisioning = %v, %v; want the legacy %+v", n, err, legacy)
	}
	if left, err := st.Verify(ctx, name); err != nil || left.Rows != 3 || !left.Role || !left.IngestRole {
		t.Errorf("Verify before provisioning = %+v, %v; want its 3 rows and both roles", left, err)
	}

	got, err := st.Provision(ctx, name, storage.ProvisionOptions{UID: newUID(),
		ExistingPassword: old.Owner.Password, ExistingIngestPassword: old.Ingest.Password})
	if err != nil {
		t.Fatalf("Provision: %v", err)
	}
	if got.Owner.Schema != legacy.Schema || got.Owner.Username != legacy.Schema || got.Ingest.Username != legacy.IngestRole {
		t.Errorf("Provision gave %s, %s, %s; want the legacy %+v: no data is moved", got.Owner.Schema, got.Owner.Username, got.Ingest.Username, legacy)
	}
	if got.Owner.Password != old.Owner.Password || got.Ingest.Password != old.Ingest.Password {
		t.Error("the legacy tenant's passwords were replaced")
	}
	if n := countEvents(t, got.Owner); n != 3 {
		t.Errorf("the legacy tenant has %d events, want its 3", n)
	}
	if rec := namesInDB(t, name); rec != legacy {
		t.Errorf("recorded %+v, want the legacy %+v", rec, legacy)
	}

	if err := st.Purge(ctx, name); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1) OR EXISTS (SELECT 1 FROM pg_roles WHERE rolname IN ($1, $2))`,
		legacy.Schema, legacy.IngestRole).Scan(&exists); err != nil || exists {
		t.Errorf("after the purge the legacy schema or a role is left (%v)", err)
	}
}
