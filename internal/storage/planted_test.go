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
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// plantSpy makes, as the tenant's owner, table seen and function spy() in
// its schema: spy records who runs it and tries to escalate with the
// rights of whoever that is (make the owner a superuser, which a superuser
// administrator can; make it a member of the operator's role, which a
// CREATEROLE administrator can). It returns the qualified spy().
func plantSpy(t *testing.T, owner *pgx.Conn, schema string) string {
	t.Helper()
	s := pgx.Identifier{schema}.Sanitize()
	_, err := owner.Exec(testContext(t), `
		CREATE TABLE `+s+`.seen (who text);
		GRANT INSERT ON `+s+`.seen TO PUBLIC;
		CREATE FUNCTION `+s+`.spy() RETURNS boolean LANGUAGE plpgsql AS $$
		BEGIN
		  INSERT INTO `+s+`.seen VALUES (current_user);
		  BEGIN EXECUTE format('ALTER ROLE %I SUPERUSER', `+storage.QuoteLiteral(schema)+`); EXCEPTION WHEN OTHERS THEN NULL; END;
		  BEGIN EXECUTE format('GRANT %I TO %I', 'millimetric_operator', `+storage.QuoteLiteral(schema)+`); EXCEPTION WHEN OTHERS THEN NULL; END;
		  RETURN true;
		END $$`)
	if err != nil {
		t.Fatalf("planting the spy: %v", err)
	}
	return s + ".spy()"
}

// TestTheAdministratorNeverRunsATenantsObjectsWithItsOwnRights: the
// tenant's owner replaces a table with a view and forces row-level security
// policies that call its own function on a table and on a day partition.
// Verify (the Retain path), OldestRawEventDay (the hourly read) and the
// sweep's expiry of a held tenant's old days must never run that function
// as the administrator.
func TestTheAdministratorNeverRunsATenantsObjectsWithItsOwnRights(t *testing.T) {
	for _, admin := range bothAdmins() {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			name, roles := provision(t, st, "planted")
			purgeAfter(t, st, name)
			s := roles.Owner.Schema
			owner := tenantConn(t, roles.Owner)
			spy := plantSpy(t, owner, s)
			today := s + "." + storage.PartitionName(time.Now())
			if _, err := owner.Exec(ctx, `
				DROP TABLE `+s+`.rollup_ledger;
				CREATE VIEW `+s+`.rollup_ledger AS SELECT current_date AS day WHERE `+spy+`;
				ALTER TABLE `+s+`.daily_aggregates ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
				CREATE POLICY spy ON `+s+`.daily_aggregates USING (`+spy+`);
				INSERT INTO `+s+`.events (received_at, event_name) VALUES (now(), 'pageview');
				ALTER TABLE `+today+` ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
				CREATE POLICY spy ON `+today+` USING (`+spy+`)`); err != nil {
				t.Fatalf("planting: %v", err)
			}

			left, err := st.Verify(ctx, name)
			if err != nil {
				t.Errorf("Verify: %v", err)
			} else if !left.Schema || left.Rows != 1 {
				t.Errorf("Verify: %+v, want the schema and its 1 event (the view holds no rows)", left)
			}
			_, err = st.OldestRawEventDay(ctx, name)
			if err == nil || !strings.Contains(err.Error(), "row-level security") {
				t.Errorf("OldestRawEventDay on a partition under a forced policy: %v, want a failure naming row-level security", err)
			}

			// An expired day under a forced policy, then the tenant held:
			// the sweep rolls the day up and drops it as the owner. (The
			// ledger is a table again, or the roll-up would fail before it
			// reads the day.)
			old := time.Now().UTC().AddDate(0, 0, -40)
			if _, err := storage.EnsureDayPartitions(ctx, owner, s, old, old); err != nil {
				t.Fatal(err)
			}
			oldPart := s + "." + storage.PartitionName(old)
			if _, err := owner.Exec(ctx, `
				DROP VIEW `+s+`.rollup_ledger;
				CREATE TABLE `+s+`.rollup_ledger (day date PRIMARY KEY, rolled_up_at timestamptz NOT NULL DEFAULT now(), raw_events bigint NOT NULL);
				INSERT INTO `+s+`.events (received_at, event_name) VALUES ('`+old.Format(time.RFC3339)+`', 'pageview');
				ALTER TABLE `+oldPart+` ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
				CREATE POLICY spy ON `+oldPart+` USING (`+spy+`)`); err != nil {
				t.Fatalf("planting on an expired day: %v", err)
			}
			if err := st.Retain(ctx, name, newUID(), time.Now(), storage.MaxRetainHold, 30); err != nil {
				t.Fatal(err)
			}
			if _, err := st.SweepRetained(ctx, time.Now()); err != nil {
				t.Errorf("SweepRetained: %v", err)
			}
			var oldLeft bool
			if err := adminConn(t).QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, oldPart).Scan(&oldLeft); err != nil || oldLeft {
				t.Errorf("the expired day's partition is still there (%v)", err)
			}

			su := adminConn(t)
			var seen []string
			var super, operatorMember bool
			err = su.QueryRow(ctx, `
				SELECT COALESCE((SELECT array_agg(DISTINCT who ORDER BY who) FROM `+s+`.seen), '{}'),
				       (SELECT rolsuper FROM pg_roles WHERE rolname = $1),
				       pg_has_role($1, 'millimetric_operator', 'MEMBER')`, s).Scan(&seen, &super, &operatorMember)
			if err != nil {
				t.Fatal(err)
			}
			for _, who := range seen {
				if who != s {
					t.Errorf("the tenant's function ran as %s, want only as the tenant's owner %s", who, s)
				}
			}
			if super || operatorMember {
				t.Errorf("the tenant's owner escalated: superuser %v, member of millimetric_operator %v", super, operatorMember)
			}
		})
	}
}

// TestTheAdministratorsSessionsLookUpNamesInPgCatalogOnly: a function in
// schema public that matches an argument's type better than the catalog's
// (has_database_privilege(name, text), which Ping would otherwise call for
// has_database_privilege(current_database(), 'CREATE')) is never called
// by the administrator's sessions: they search pg_catalog only. Where
// PUBLIC keeps CREATE on public (a database the administrator does not
// own), any tenant role could plant it.
func TestTheAdministratorsSessionsLookUpNamesInPgCatalogOnly(t *testing.T) {
	ctx := testContext(t)
	su := adminConn(t)
	if _, err := su.Exec(ctx, `
		CREATE TABLE public.planted_calls (who text);
		GRANT INSERT ON public.planted_calls TO PUBLIC;
		CREATE FUNCTION public.has_database_privilege(name, text) RETURNS boolean LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO public.planted_calls VALUES (current_user); RETURN true; END $$;
		CREATE FUNCTION public.pg_has_role(name, name, text) RETURNS boolean LANGUAGE plpgsql AS $$
		BEGIN INSERT INTO public.planted_calls VALUES (current_user); RETURN true; END $$`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = su.Exec(context.Background(), `DROP FUNCTION public.has_database_privilege(name, text);
			DROP FUNCTION public.pg_has_role(name, name, text); DROP TABLE public.planted_calls`)
	})
	var planted bool
	if err := su.QueryRow(ctx, `SELECT has_database_privilege(current_database(), 'CREATE')`).Scan(&planted); err != nil {
		t.Fatal(err)
	}
	var calls int
	if err := su.QueryRow(ctx, `SELECT count(*) FROM public.planted_calls`).Scan(&calls); err != nil || calls != 1 {
		t.Fatalf("set-up: a session with the default search_path called the planted function %d times (%v), want 1", calls, err)
	}
	if _, err := su.Exec(ctx, `TRUNCATE public.planted_calls`); err != nil {
		t.Fatal(err)
	}
	for _, admin := range bothAdmins() {
		t.Run(admin.name, func(t *testing.T) {
			st := openStore(t, admin.cfg)
			if err := st.Ping(ctx); err != nil {
				t.Fatal(err)
			}
			name, _ := provision(t, st, "search-path")
			purgeAfter(t, st, name)
			if _, err := st.Verify(ctx, name); err != nil {
				t.Fatal(err)
			}
			var who []string
			if err := su.QueryRow(ctx, `SELECT COALESCE(array_agg(who), '{}') FROM public.planted_calls`).Scan(&who); err != nil {
				t.Fatal(err)
			}
			if len(who) > 0 {
				t.Errorf("the planted functions ran as %v", who)
			}
		})
	}
}
