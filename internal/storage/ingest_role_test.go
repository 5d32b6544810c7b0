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
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// administrators are the two kinds of region administrator Provision must
// work with.
func administrators() []struct {
	name string
	cfg  storage.AdminConfig
} {
	return []struct {
		name string
		cfg  storage.AdminConfig
	}{
		{"provisioned by a superuser", srv.AdminConfig("EU")},
		{"provisioned by a CREATEROLE-only administrator", srv.LimitedAdminConfig("EU")},
	}
}

// wantIngestPrivileges is ingestPrivileges of a tenant at SchemaVersion.
const wantIngestPrivileges = "schema:USAGE events:INSERT"

// ingestPrivileges lists every privilege the tenant's ingest role holds in
// its schema, on the schema, its relations and their columns, as
// "object:PRIV,PRIV" sorted; a grant option is marked "*".
func ingestPrivileges(t *testing.T, tenant string) string {
	t.Helper()
	var got string
	err := adminConn(t).QueryRow(testContext(t), `
		WITH r AS (SELECT oid FROM pg_roles WHERE rolname = $2),
		     n AS (SELECT oid, nspacl FROM pg_namespace WHERE nspname = $1),
		     privs AS (
		       SELECT 'schema' AS object, a.privilege_type, a.is_grantable
		       FROM n, r, aclexplode(n.nspacl) a WHERE a.grantee = r.oid
		       UNION ALL
		       SELECT c.relname, a.privilege_type, a.is_grantable
		       FROM pg_class c, n, r, aclexplode(c.relacl) a WHERE c.relnamespace = n.oid AND a.grantee = r.oid
		       UNION ALL
		       SELECT c.relname || '.' || att.attname, a.privilege_type, a.is_grantable
		       FROM pg_attribute att JOIN pg_class c ON c.oid = att.attrelid, n, r, aclexplode(att.attacl) a
		       WHERE c.relnamespace = n.oid AND att.attacl IS NOT NULL AND a.grantee = r.oid),
		     per AS (
		       SELECT object, string_agg(privilege_type || CASE WHEN is_grantable THEN '*' ELSE '' END, ','
		                                 ORDER BY privilege_type) AS p
		       FROM privs GROUP BY object)
		SELECT COALESCE(string_agg(object || ':' || p, ' ' ORDER BY object = 'schema' DESC, object), '') FROM per`,
		namesInDB(t, tenant).Schema, namesInDB(t, tenant).IngestRole).Scan(&got)
	if err != nil {
		t.Fatalf("reading the ingest role's privileges: %v", err)
	}
	return got
}

// expectDenied runs sql and wants PostgreSQL's permission denied (42501).
func expectDenied(t *testing.T, conn *pgx.Conn, sql string) {
	t.Helper()
	_, err := conn.Exec(testContext(t), sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Errorf("%s: got %v, want permission denied (42501)", sql, err)
	}
}

func TestIngestRoleMayOnlyInsertEvents(t *testing.T) {
	for _, admin := range administrators() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "ingest")
			s := roles.Owner.Schema
			asIngest := tenantConn(t, roles.Ingest)
			if got := ingestPrivileges(t, name); got != wantIngestPrivileges {
				t.Errorf("the ingest role holds %q, want exactly %q", got, wantIngestPrivileges)
			}

			for _, a := range []struct {
				what, sql string
				args      []any
			}{
				{"insert an event", `INSERT INTO ` + s + `.events (received_at, event_name, visitor_id, hostname, title, attribution_source)
					VALUES (now(), 'pageview', 42, 'acme.com', 'Acme', 'google')`, nil},
			} {
				t.Run("the ingest role may "+a.what, func(t *testing.T) {
					if _, err := asIngest.Exec(ctx, a.sql, a.args...); err != nil {
						t.Errorf("%s: %v", a.sql, err)
					}
				})
			}
			t.Run("the ingest role may COPY events", func(t *testing.T) {
				n, err := asIngest.CopyFrom(ctx, pgx.Identifier{s, storage.EventsTable},
					[]string{"received_at", "event_name", "visitor_id", "hostname", "url_path"},
					pgx.CopyFromRows([][]any{
						{time.Now(), "pageview", int64(1), "acme.com", "/"},
						{time.Now(), "signup", int64(2), "shop.acme.com", "/join"},
					}))
				if err != nil || n != 2 {
					t.Errorf("COPY wrote %d rows: %v", n, err)
				}
			})
			var events int
			if err := tenantConn(t, roles.Owner).QueryRow(ctx, `SELECT count(*) FROM `+s+`.events`).Scan(&events); err != nil {
				t.Fatal(err)
			}
			if events != 3 {
				t.Errorf("the owner sees %d events, want 3", events)
			}

			partition := s + "." + storage.PartitionName(time.Now())
			for _, d := range []struct{ what, sql string }{
				{"read events", `SELECT count(*) FROM ` + s + `.events`},
				{"read a column of events", `SELECT visitor_id FROM ` + s + `.events`},
				{"read back what it inserts", `INSERT INTO ` + s + `.events (received_at, event_name) VALUES (now(), 'x') RETURNING event_id`},
				{"read an events partition", `SELECT count(*) FROM ` + partition},
				{"write to an events partition directly", `INSERT INTO ` + partition + ` (received_at, event_name) VALUES (now(), 'x')`},
				{"update events", `UPDATE ` + s + `.events SET hostname = 'x'`},
				{"delete events", `DELETE FROM ` + s + `.events`},
				{"truncate events", `TRUNCATE ` + s + `.events`},
				{"add an address column to events", `ALTER TABLE ` + s + `.events ADD COLUMN ip inet`},
				{"index events", `CREATE INDEX ON ` + s + `.events (hostname)`},
				{"comment on events", `COMMENT ON TABLE ` + s + `.events IS 'x'`},
				{"drop events", `DROP TABLE ` + s + `.events`},
				{"create a table in the schema", `CREATE TABLE ` + s + `.addresses (ip inet)`},
				{"create a view in the schema", `CREATE VIEW ` + s + `.v AS SELECT 1`},
				{"read the aggregates", `SELECT count(*) FROM ` + s + `.daily_aggregates`},
				{"write the aggregates", `INSERT INTO ` + s + `.daily_aggregates (day, path, country, referrer_source) VALUES (current_date, '', '', '')`},
				{"read the roll-up ledger", `SELECT count(*) FROM ` + s + `.rollup_ledger`},
				{"change the schema version", `UPDATE ` + s + `.schema_version SET version = 1`},
				{"create a table in public", `CREATE TABLE public.addresses (ip inet)`},
				{"create a temporary table", `CREATE TEMPORARY TABLE addresses (ip inet)`},
				{"become the owner", `SET ROLE ` + roles.Owner.Username},
			} {
				t.Run("the ingest role may not "+d.what, func(t *testing.T) { expectDenied(t, asIngest, d.sql) })
			}
		})
	}
}

func TestProvisionTakesBackWhatWasGrantedToTheIngestRoleByHand(t *testing.T) {
	for _, tc := range []struct {
		name  string
		drift func(schema, ingest string) []string
		// check runs as the ingest role after the repair; "" checks only
		// the catalog.
		check      func(schema string) string
		wantDenied bool
	}{
		{"SELECT on events is revoked",
			func(s, r string) []string { return []string{`GRANT SELECT ON ` + s + `.events TO ` + r} },
			func(s string) string { return `SELECT count(*) FROM ` + s + `.events` }, true},
		{"every other privilege on events is revoked",
			func(s, r string) []string {
				return []string{`GRANT ALL ON ` + s + `.events TO ` + r}
			},
			func(s string) string { return `DELETE FROM ` + s + `.events` }, true},
		{"SELECT on a column of events is revoked",
			func(s, r string) []string { return []string{`GRANT SELECT (received_at) ON ` + s + `.events TO ` + r} },
			func(s string) string { return `SELECT received_at FROM ` + s + `.events` }, true},
		{"the grant option on INSERT into events is taken back",
			func(s, r string) []string {
				return []string{`GRANT INSERT ON ` + s + `.events TO ` + r + ` WITH GRANT OPTION`}
			},
			nil, false},
		{"CREATE on the schema is revoked",
			func(s, r string) []string { return []string{`GRANT CREATE ON SCHEMA ` + s + ` TO ` + r} },
			func(s string) string { return `CREATE TABLE ` + s + `.addresses (ip inet)` }, true},
		{"SELECT on the aggregates is revoked",
			func(s, r string) []string { return []string{`GRANT SELECT ON ` + s + `.daily_aggregates TO ` + r} },
			func(s string) string { return `SELECT count(*) FROM ` + s + `.daily_aggregates` }, true},
		{"SELECT on an events partition is revoked",
			func(s, r string) []string {
				return []string{`GRANT SELECT ON ` + s + `.` + storage.PartitionName(time.Now()) + ` TO ` + r}
			},
			func(s string) string { return `SELECT count(*) FROM ` + s + `.` + storage.PartitionName(time.Now()) }, true},
		{"a revoked INSERT on events is granted again",
			func(s, r string) []string { return []string{`REVOKE INSERT ON ` + s + `.events FROM ` + r} },
			func(s string) string {
				return `INSERT INTO ` + s + `.events (received_at, event_name) VALUES (now(), 'pageview')`
			}, false},
		{"a revoked USAGE on the schema is granted again",
			func(s, r string) []string { return []string{`REVOKE USAGE ON SCHEMA ` + s + ` FROM ` + r} },
			func(s string) string {
				return `INSERT INTO ` + s + `.events (received_at, event_name) VALUES (now(), 'pageview')`
			}, false},
		{"role attributes are put back",
			func(_, r string) []string {
				return []string{`ALTER ROLE ` + r + ` CREATEDB INHERIT CONNECTION LIMIT 500`}
			},
			nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, srv.LimitedAdminConfig("EU"))
			name, roles := provision(t, st, "drift")
			s, ingest := roles.Owner.Schema, roles.Ingest.Username
			admin := adminConn(t)
			for _, sql := range tc.drift(s, ingest) {
				if _, err := admin.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			if ingestPrivileges(t, name) == wantIngestPrivileges && !strings.HasPrefix(tc.name, "role") {
				t.Fatal("the drift changed nothing; the test would prove nothing")
			}

			again, err := st.Provision(ctx, name, storage.ProvisionOptions{
				ExistingPassword: roles.Owner.Password, ExistingIngestPassword: roles.Ingest.Password})
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			if again.Ingest.Password != roles.Ingest.Password || again.Owner.Password != roles.Owner.Password {
				t.Error("repairing privileges changed a password")
			}
			if got := ingestPrivileges(t, name); got != wantIngestPrivileges {
				t.Errorf("after Provision the ingest role holds %q, want exactly %q", got, wantIngestPrivileges)
			}
			var createDB, inherit bool
			var limit int
			if err := admin.QueryRow(ctx, `SELECT rolcreatedb, rolinherit, rolconnlimit FROM pg_roles WHERE rolname = $1`, ingest).
				Scan(&createDB, &inherit, &limit); err != nil {
				t.Fatal(err)
			}
			if createDB || inherit || limit != storage.DefaultConnectionLimit {
				t.Errorf("ingest role has CREATEDB %v, INHERIT %v, connection limit %d; want none and %d",
					createDB, inherit, limit, storage.DefaultConnectionLimit)
			}
			if tc.check == nil {
				return
			}
			conn := tenantConn(t, roles.Ingest)
			if tc.wantDenied {
				expectDenied(t, conn, tc.check(s))
			} else if _, err := conn.Exec(ctx, tc.check(s)); err != nil {
				t.Errorf("%s: %v", tc.check(s), err)
			}
		})
	}
}

func TestProvisionMigratesAVersion1Schema(t *testing.T) {
	for _, admin := range administrators() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			// The tenant as the operator before the ingest role made it:
			// schema version 1, and no ingest role.
			name, old := provision(t, openStore(t, admin.cfg, storage.WithSchemaVersion(1)), "v1")
			s := old.Owner.Schema
			su := adminConn(t)
			ingestID := pgx.Identifier{namesInDB(t, name).IngestRole}.Sanitize()
			for _, sql := range []string{`DROP OWNED BY ` + ingestID, `DROP ROLE ` + ingestID} {
				if _, err := su.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			asOwner := tenantConn(t, old.Owner)
			var version int
			var salts bool
			if err := asOwner.QueryRow(ctx, `SELECT (SELECT version FROM `+s+`.schema_version), to_regclass($1) IS NOT NULL`,
				s+".salts").Scan(&version, &salts); err != nil || version != 1 || salts {
				t.Fatalf("set-up: version %d, salts table %v (%v); want version 1 without salts", version, salts, err)
			}
			if _, err := asOwner.Exec(ctx, `
				INSERT INTO `+s+`.events (received_at, event_name) VALUES (now(), 'pageview');
				INSERT INTO `+s+`.daily_aggregates (day, path, country, referrer_source, visitors) VALUES ('2026-01-01', '/', 'DE', '(direct)', 7);
				INSERT INTO `+s+`.rollup_ledger (day, raw_events) VALUES ('2026-01-01', 7)`); err != nil {
				t.Fatal(err)
			}
			before, err := openStore(t, admin.cfg).Verify(ctx, name)
			if err != nil || before.Rows != 3 || before.IngestRole {
				t.Fatalf("set-up: %+v (%v), want 3 rows and no ingest role", before, err)
			}

			st := openStore(t, admin.cfg)
			p, err := st.Provision(ctx, name, storage.ProvisionOptions{ExistingPassword: old.Owner.Password})
			if err != nil {
				t.Fatalf("Provision of the version 1 tenant: %v", err)
			}
			if p.Owner.Password != old.Owner.Password {
				t.Error("migrating changed the owner's password, under the running retention job")
			}

			asOwner = tenantConn(t, p.Owner)
			var eventName, visitorComment string
			var visitorID *int64
			var hostname, title *string
			err = asOwner.QueryRow(ctx, `SELECT (SELECT version FROM `+s+`.schema_version),
				event_name, visitor_id, hostname, title, to_regclass($1) IS NOT NULL,
				col_description(to_regclass($2), (SELECT attnum FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'visitor_id'))
				FROM `+s+`.events`, s+".salts", s+".events").Scan(&version, &eventName, &visitorID, &hostname, &title, &salts, &visitorComment)
			if err != nil {
				t.Fatalf("reading the migrated schema: %v", err)
			}
			if version != storage.SchemaVersion() || version < 3 {
				t.Errorf("schema_version %d, want %d", version, storage.SchemaVersion())
			}
			if eventName != "pageview" || visitorID != nil || hostname != nil || title != nil {
				t.Errorf("the version 1 event reads %q, %v, %v, %v; want it kept, with no visitor id, host name or title", eventName, visitorID, hostname, title)
			}
			if salts {
				t.Error("the migrated schema has a salts table")
			}
			if !strings.Contains(visitorComment, "mm_aid") || !strings.Contains(visitorComment, "never in the database") {
				t.Errorf("visitor_id's comment %q does not say it is the keyed hash of mm_aid, under a key not in the database", visitorComment)
			}
			after, err := st.Verify(ctx, name)
			if err != nil || after.Rows != 3 || !after.IngestRole {
				t.Errorf("after migrating: %+v (%v), want the 3 rows kept and an ingest role", after, err)
			}
			if got := ingestPrivileges(t, name); got != wantIngestPrivileges {
				t.Errorf("the new ingest role holds %q, want %q", got, wantIngestPrivileges)
			}

			snap := catalogSnapshot(t, name)
			if _, err := st.Provision(ctx, name, storage.ProvisionOptions{
				ExistingPassword: p.Owner.Password, ExistingIngestPassword: p.Ingest.Password}); err != nil {
				t.Fatal(err)
			}
			if again := catalogSnapshot(t, name); again != snap {
				t.Errorf("Provision after the migration wrote to the catalog:\nbefore: %s\nafter:  %s", snap, again)
			}
		})
	}
}

// TestProvisionMigratesAVersion2SchemaDroppingItsSaltsAndKeepingItsRows:
// the address-based visitor hash goes with its salts and the never-written
// anonymous_id column; the rows already stored keep their visitor ids.
func TestProvisionMigratesAVersion2SchemaDroppingItsSaltsAndKeepingItsRows(t *testing.T) {
	ctx := testContext(t)
	name, old := provision(t, openStore(t, srv.LimitedAdminConfig("EU"), storage.WithSchemaVersion(2)), "v2")
	s := old.Owner.Schema
	asOwner := tenantConn(t, old.Owner)
	if _, err := asOwner.Exec(ctx, `
		INSERT INTO `+s+`.salts (day, salt) VALUES (current_date, decode(repeat('ab', 32), 'hex'));
		INSERT INTO `+s+`.events (received_at, event_name, visitor_id) VALUES (now(), 'pageview', 42)`); err != nil {
		t.Fatalf("set-up: %v", err)
	}
	p, err := openStore(t, srv.LimitedAdminConfig("EU")).Provision(ctx, name, storage.ProvisionOptions{ExistingPassword: old.Owner.Password})
	if err != nil {
		t.Fatalf("Provision of the version 2 tenant: %v", err)
	}
	var visitorID int64
	var salts, anonymousID, title bool
	err = tenantConn(t, p.Owner).QueryRow(ctx, `SELECT visitor_id, to_regclass($1) IS NOT NULL,
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'anonymous_id' AND NOT attisdropped),
		EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($2) AND attname = 'title' AND NOT attisdropped)
		FROM `+s+`.events`, s+".salts", s+".events").Scan(&visitorID, &salts, &anonymousID, &title)
	if err != nil {
		t.Fatalf("reading the migrated schema: %v", err)
	}
	if visitorID != 42 || salts || anonymousID || !title {
		t.Errorf("after migrating: visitor id %d, salts table %v, anonymous_id column %v, title column %v; want 42, false, false, true",
			visitorID, salts, anonymousID, title)
	}
}

func TestTheIngestRolesConnectionLimitFollowsTheTenantsMostPods(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.LimitedAdminConfig("EU"))
	name := newTenantName("connlimit")
	limits := func() (owner, ingest int) {
		conn, err := srv.Connect(ctx, "EU")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, `SELECT (SELECT rolconnlimit FROM pg_roles WHERE rolname = $1), (SELECT rolconnlimit FROM pg_roles WHERE rolname = $2)`,
			namesInDB(t, name).Schema, namesInDB(t, name).IngestRole).Scan(&owner, &ingest); err != nil {
			t.Fatal(err)
		}
		return owner, ingest
	}
	p, err := st.Provision(ctx, name, storage.ProvisionOptions{IngestConnectionLimit: storage.IngestConnections(100)})
	if err != nil {
		t.Fatal(err)
	}
	if owner, ingest := limits(); owner != storage.DefaultConnectionLimit || ingest != storage.MaxIngestConnections {
		t.Errorf("a tenant of up to 100 pods: owner limit %d, ingest limit %d; want %d and the cap %d, not 202",
			owner, ingest, storage.DefaultConnectionLimit, storage.MaxIngestConnections)
	}
	if _, err := st.Provision(ctx, name, storage.ProvisionOptions{
		ExistingPassword: p.Owner.Password, ExistingIngestPassword: p.Ingest.Password, IngestConnectionLimit: 500,
	}); err != nil {
		t.Fatal(err)
	}
	if _, ingest := limits(); ingest != storage.MaxIngestConnections {
		t.Errorf("asked for 500 ingest connections: limit %d, want the cap %d", ingest, storage.MaxIngestConnections)
	}
	if _, err := st.Provision(ctx, name, storage.ProvisionOptions{
		ExistingPassword: p.Owner.Password, ExistingIngestPassword: p.Ingest.Password,
		IngestConnectionLimit: storage.IngestConnections(2),
	}); err != nil {
		t.Fatal(err)
	}
	if _, ingest := limits(); ingest != storage.DefaultConnectionLimit {
		t.Errorf("scaled down to 2 pods: ingest limit %d, want the floor %d", ingest, storage.DefaultConnectionLimit)
	}
}

// roleSettings reads the role's session defaults in every database and in
// the EU database only, each as "name=value" sorted.
func roleSettings(t *testing.T, role string) (everywhere, here []string) {
	t.Helper()
	err := adminConn(t).QueryRow(testContext(t), `
		SELECT COALESCE((SELECT array_agg(c ORDER BY c) FROM pg_db_role_setting d, unnest(d.setconfig) c
		                 WHERE d.setrole = to_regrole($1) AND d.setdatabase = 0), '{}'),
		       COALESCE((SELECT array_agg(c ORDER BY c) FROM pg_db_role_setting d, unnest(d.setconfig) c
		                 WHERE d.setrole = to_regrole($1)
		                   AND d.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())), '{}')`,
		role).Scan(&everywhere, &here)
	if err != nil {
		t.Fatal(err)
	}
	return everywhere, here
}

// TestTenantRolesHaveSessionLimitsThatProvisionPutsBack: both roles get a
// statement timeout and an idle-in-transaction timeout, and, where the
// administrator is a superuser, a temp file limit the role cannot lift;
// what drifts is put back by the next provisioning.
func TestTenantRolesHaveSessionLimitsThatProvisionPutsBack(t *testing.T) {
	for _, admin := range administrators() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "limits")
			purgeAfter(t, st, name)
			superuser := admin.cfg.Username == srv.AdminUser
			want := map[string][]string{
				roles.Owner.Username:  {"idle_in_transaction_session_timeout=5min", "statement_timeout=10min"},
				roles.Ingest.Username: {"idle_in_transaction_session_timeout=1min", "statement_timeout=1min"},
			}
			if superuser {
				want[roles.Owner.Username] = append(want[roles.Owner.Username], "temp_file_limit=2GB")
				want[roles.Ingest.Username] = append(want[roles.Ingest.Username], "temp_file_limit=64MB")
			}
			check := func(when string) {
				t.Helper()
				for role, w := range want {
					everywhere, here := roleSettings(t, role)
					if strings.Join(everywhere, " ") != strings.Join(w, " ") || len(here) > 0 {
						t.Errorf("%s, %s has defaults %v and in this database %v; want %v and none", when, role, everywhere, here, w)
					}
				}
			}
			check("provisioned")

			asIngest := tenantConn(t, roles.Ingest)
			var timeout string
			if err := asIngest.QueryRow(ctx, `SHOW statement_timeout`).Scan(&timeout); err != nil || timeout != "1min" {
				t.Errorf("the ingest role's session has statement_timeout %q (%v), want 1min", timeout, err)
			}
			if superuser {
				expectDenied(t, asIngest, `SET temp_file_limit = -1`)
				expectDenied(t, tenantConn(t, roles.Owner), `ALTER ROLE `+roles.Owner.Username+` SET temp_file_limit = -1`)
			}

			su := adminConn(t)
			for _, sql := range []string{
				`ALTER ROLE ` + roles.Ingest.Username + ` SET statement_timeout = 0`,
				`ALTER ROLE ` + roles.Ingest.Username + ` IN DATABASE ` + srv.Databases["EU"] + ` SET idle_in_transaction_session_timeout = 0`,
				`ALTER ROLE ` + roles.Owner.Username + ` RESET ALL`,
			} {
				if _, err := su.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			if _, err := st.Provision(ctx, name, storage.ProvisionOptions{
				ExistingPassword: roles.Owner.Password, ExistingIngestPassword: roles.Ingest.Password}); err != nil {
				t.Fatal(err)
			}
			check("after drift and Provision")
		})
	}
}

// With a superuser administrator, provisioning takes EXECUTE on the large
// object functions away from PUBLIC: a tenant's role cannot store data
// outside its schema, in the database-wide pg_largeobject.
func TestTenantRolesCannotMakeLargeObjects(t *testing.T) {
	st := openStore(t, srv.AdminConfig("EU"))
	name, roles := provision(t, st, "no-lo")
	purgeAfter(t, st, name)
	for _, c := range []storage.Credentials{roles.Owner, roles.Ingest} {
		conn := tenantConn(t, c)
		if executable := executableCatalogFunctions(t, conn, `p.proname LIKE 'lo\_%' OR p.proname IN ('loread', 'lowrite')`); len(executable) > 0 {
			t.Errorf("%s may execute %v", c.Username, executable)
		}
		for _, sql := range []string{
			`SELECT lo_create(0)`,
			`SELECT lo_from_bytea(0, '\x00')`,
			`SELECT lo_creat(-1)`,
		} {
			expectDenied(t, conn, sql)
		}
	}
}
