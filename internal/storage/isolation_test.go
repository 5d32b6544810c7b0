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
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/millimetric/tenant-operator/internal/storage"
)

func TestTenantCannotReachAnotherTenant(t *testing.T) {
	ctx := testContext(t)
	for _, admin := range []struct {
		name string
		cfg  storage.AdminConfig
	}{
		{"provisioned by a superuser", srv.AdminConfig("EU")},
		{"provisioned by a CREATEROLE-only administrator", srv.LimitedAdminConfig("EU")},
	} {
		t.Run(admin.name, func(t *testing.T) {
			st := openStore(t, admin.cfg)
			_, aRoles := provision(t, st, "iso-a")
			_, bRoles := provision(t, st, "iso-b")
			a, b := aRoles.Owner, bRoles.Owner
			asB := tenantConn(t, b)
			if _, err := asB.Exec(ctx, `INSERT INTO `+b.Schema+`.events (received_at, event_name, visitor_id)
				VALUES (now(), 'pageview', 4242)`); err != nil {
				t.Fatalf("B cannot write its own events: %v", err)
			}
			asA := tenantConn(t, a)

			denied := []struct{ what, sql string }{
				{"read B's events", `SELECT count(*) FROM ` + b.Schema + `.events`},
				{"read B's aggregates", `SELECT count(*) FROM ` + b.Schema + `.daily_aggregates`},
				{"write B's events", `INSERT INTO ` + b.Schema + `.events (received_at, event_name) VALUES (now(), 'x')`},
				{"delete B's events", `DELETE FROM ` + b.Schema + `.events`},
				{"drop B's table", `DROP TABLE ` + b.Schema + `.daily_aggregates`},
				{"create a table in B's schema", `CREATE TABLE ` + b.Schema + `.intruder (x int)`},
				{"create a table in public", `CREATE TABLE public.intruder (x int)`},
				{"create a schema", `CREATE SCHEMA intruder`},
				{"create a temporary table", `CREATE TEMPORARY TABLE intruder (x int)`},
				{"become B", `SET ROLE ` + b.Username},
				{"grant itself B's role", `GRANT ` + b.Username + ` TO ` + a.Username},
			}
			for _, d := range denied {
				t.Run("A may not "+d.what, func(t *testing.T) {
					_, err := asA.Exec(ctx, d.sql)
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
						t.Errorf("%s: got %v, want permission denied (42501)", d.sql, err)
					}
				})
			}

			asAIngest := tenantConn(t, aRoles.Ingest)
			for _, d := range []struct{ what, sql string }{
				{"read B's events", `SELECT count(*) FROM ` + b.Schema + `.events`},
				{"write B's events", `INSERT INTO ` + b.Schema + `.events (received_at, event_name) VALUES (now(), 'x')`},
				{"read B's salts", `SELECT count(*) FROM ` + b.Schema + `.salts`},
				{"write B's salts", `INSERT INTO ` + b.Schema + `.salts (day, salt) VALUES (current_date, decode(repeat('00', 32), 'hex'))`},
				{"delete B's salts", `DELETE FROM ` + b.Schema + `.salts`},
				{"read B's aggregates", `SELECT count(*) FROM ` + b.Schema + `.daily_aggregates`},
				{"become B's ingest role", `SET ROLE ` + bRoles.Ingest.Username},
				{"become B", `SET ROLE ` + b.Username},
				{"become its own tenant's owner", `SET ROLE ` + a.Username},
			} {
				t.Run("A's ingest role may not "+d.what, func(t *testing.T) {
					_, err := asAIngest.Exec(ctx, d.sql)
					var pgErr *pgconn.PgError
					if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
						t.Errorf("%s: got %v, want permission denied (42501)", d.sql, err)
					}
				})
			}

			t.Run("A cannot list B's tables or schema in information_schema", func(t *testing.T) {
				var tables, columns, schemata int
				err := asA.QueryRow(ctx, `SELECT
					(SELECT count(*) FROM information_schema.tables WHERE table_schema = $1),
					(SELECT count(*) FROM information_schema.columns WHERE table_schema = $1),
					(SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1)`, b.Schema).
					Scan(&tables, &columns, &schemata)
				if err != nil {
					t.Fatal(err)
				}
				if tables+columns+schemata != 0 {
					t.Errorf("information_schema shows A %d tables, %d columns, %d schemata of B", tables, columns, schemata)
				}
			})

			t.Run("A cannot read B's column statistics", func(t *testing.T) {
				if _, err := asB.Exec(ctx, `ANALYZE `+b.Schema+`.events`); err != nil {
					t.Fatal(err)
				}
				var n int
				if err := asA.QueryRow(ctx, `SELECT count(*) FROM pg_stats WHERE schemaname = $1`, b.Schema).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n != 0 {
					t.Errorf("pg_stats shows A %d column statistics (with values) of B", n)
				}
			})

			t.Run("A works in its own schema", func(t *testing.T) {
				// The same statements succeed at home, so the denials above
				// are about B, not about a broken role.
				for _, sql := range []string{
					`INSERT INTO ` + a.Schema + `.events (received_at, event_name) VALUES (now(), 'pageview')`,
					`CREATE TABLE ` + a.Schema + `.scratch (x int)`,
					`DROP TABLE ` + a.Schema + `.scratch`,
				} {
					if _, err := asA.Exec(ctx, sql); err != nil {
						t.Errorf("%s: %v", sql, err)
					}
				}
			})
		})
	}

	t.Run("an EU tenant cannot log in to the US region's database", func(t *testing.T) {
		// Provisioning in the US region takes CONNECT away from PUBLIC there.
		us := openStore(t, srv.AdminConfig("US"))
		provision(t, us, "iso-us")
		_, eu := provision(t, openStore(t, srv.AdminConfig("EU")), "iso-eu")
		for _, c := range []storage.Credentials{eu.Owner, eu.Ingest} {
			c.Database = srv.Databases["US"]
			err := canLogIn(ctx, c)
			if r := storage.ReasonFor(err); r != storage.ReasonPermissionDenied {
				t.Errorf("%s: got %v (reason %q), want %q", c.Username, err, r, storage.ReasonPermissionDenied)
			}
		}
	})
}

// TestCatalogVisibilityAcrossTenants records what PostgreSQL's catalog still
// shows a tenant about the others: it cannot be closed per schema.
func TestCatalogVisibilityAcrossTenants(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	_, a := provision(t, st, "cat-a")
	_, b := provision(t, st, "cat-b")
	asA := tenantConn(t, a.Owner)
	for _, q := range []struct{ what, sql string }{
		{"B's schema name (pg_namespace)", `SELECT count(*) FROM pg_namespace WHERE nspname = $1`},
		{"B's role name (pg_roles)", `SELECT count(*) FROM pg_roles WHERE rolname = $1`},
		{"B's table names (pg_class)", `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1`},
		{"B's row counts (pg_stat_user_tables)", `SELECT count(*) FROM pg_stat_user_tables WHERE schemaname = $1`},
	} {
		var n int
		if err := asA.QueryRow(ctx, q.sql, b.Owner.Schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		t.Logf("a tenant sees %s: %v", q.what, n > 0)
	}
}
