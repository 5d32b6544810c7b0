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
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// catalogSnapshot is everything of a tenant in the catalog, with the row
// versions (xmin), so two snapshots are equal only if nothing was written:
// both roles, the database's row (which granting CONNECT rewrites; no other
// test of this package provisions meanwhile), the schema and its ACL, and
// every relation (whose row a GRANT or REVOKE on it rewrites).
func catalogSnapshot(t *testing.T, tenant string) string {
	t.Helper()
	ctx := testContext(t)
	names := namesInDB(t, tenant)
	role := names.Schema
	var snap string
	err := adminConn(t).QueryRow(ctx, `
		SELECT concat_ws(' | ',
		  'role', r.xmin::text, r.rolcanlogin, r.rolsuper, r.rolinherit, r.rolcreaterole, r.rolcreatedb,
		  r.rolreplication, r.rolbypassrls, r.rolconnlimit, r.rolpassword,
		  'ingest role', i.xmin::text, i.rolcanlogin, i.rolsuper, i.rolinherit, i.rolcreaterole, i.rolcreatedb,
		  i.rolreplication, i.rolbypassrls, i.rolconnlimit, i.rolpassword,
		  'schema', n.xmin::text, n.nspowner::regrole::text, COALESCE(n.nspacl::text, 'default'),
		  'database', (SELECT d.xmin::text FROM pg_database d WHERE d.datname = current_database()),
		  'connect', (SELECT string_agg(a.grantee::regrole::text || ':' || a.privilege_type, ',' ORDER BY 1) FROM pg_database d,
		              aclexplode(d.datacl) a WHERE d.datname = current_database() AND a.grantee IN (r.oid, i.oid)),
		  'relations', (SELECT string_agg(c.relname || ':' || c.relowner::regrole::text || ':' || c.xmin::text || ':' ||
		                COALESCE(c.relacl::text, 'default'), ',' ORDER BY c.relname) FROM pg_class c WHERE c.relnamespace = n.oid))
		FROM pg_authid r, pg_authid i, pg_namespace n WHERE r.rolname = $1 AND i.rolname = $2 AND n.nspname = $1`,
		role, names.IngestRole).Scan(&snap)
	if err != nil {
		t.Fatalf("catalog snapshot of %s: %v", role, err)
	}
	return snap
}

func canLogIn(ctx context.Context, creds storage.Credentials) error {
	conn, err := storage.ConnectTenant(ctx, creds)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}

func TestProvisionTwiceIsANoOp(t *testing.T) {
	for _, tc := range []struct {
		name  string
		admin func() storage.AdminConfig
	}{
		{"with a superuser administrator", func() storage.AdminConfig { return srv.AdminConfig("EU") }},
		{"with a CREATEROLE-only administrator", func() storage.AdminConfig { return srv.LimitedAdminConfig("EU") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, tc.admin())
			name, roles := provision(t, st, "twice")
			first := roles.Owner

			names := recorded(t, st, name)
			if first.Username != names.Schema || first.Schema != first.Username {
				t.Errorf("role %q and schema %q, want both the recorded %q", first.Username, first.Schema, names.Schema)
			}
			if roles.Ingest.Username != names.IngestRole || roles.Ingest.Schema != first.Schema {
				t.Errorf("ingest role %q for schema %q, want the recorded %q for %q",
					roles.Ingest.Username, roles.Ingest.Schema, names.IngestRole, first.Schema)
			}
			for _, c := range []storage.Credentials{first, roles.Ingest} {
				if len(c.Password) < 43 {
					t.Errorf("%s's password has %d characters, want at least 43 (32 random bytes)", c.Username, len(c.Password))
				}
				if c.Host != srv.Host || int(c.Port) != srv.Port || c.Database != srv.Databases["EU"] {
					t.Errorf("%s's credentials point at %s:%d/%s, want the region's database", c.Username, c.Host, c.Port, c.Database)
				}
				if err := canLogIn(ctx, c); err != nil {
					t.Fatalf("%s cannot log in with the password Provision returned: %v", c.Username, err)
				}
			}
			if roles.Ingest.Password == first.Password {
				t.Error("the ingest role has the owner's password")
			}
			var version int
			if err := tenantConn(t, first).QueryRow(ctx, `SELECT version FROM `+first.Schema+`.schema_version`).Scan(&version); err != nil ||
				version != storage.SchemaVersion() {
				t.Errorf("schema_version %d (%v), want %d", version, err, storage.SchemaVersion())
			}
			before := catalogSnapshot(t, name)

			second, err := st.Provision(ctx, name, storage.ProvisionOptions{
				ExistingPassword: first.Password, ExistingIngestPassword: roles.Ingest.Password})
			if err != nil {
				t.Fatalf("second Provision: %v", err)
			}
			if second.Owner.Password != first.Password || second.Ingest.Password != roles.Ingest.Password {
				t.Errorf("second Provision changed a password although the Secrets' still work")
			}
			if after := catalogSnapshot(t, name); after != before {
				t.Errorf("second Provision wrote to the catalog:\nbefore: %s\nafter:  %s", before, after)
			}
			for _, c := range []storage.Credentials{second.Owner, second.Ingest} {
				if err := canLogIn(ctx, c); err != nil {
					t.Errorf("%s cannot log in after the second Provision: %v", c.Username, err)
				}
			}
		})
	}
}

func TestProvisionPasswordHandling(t *testing.T) {
	for _, admin := range []struct {
		name string
		cfg  storage.AdminConfig
	}{
		{"with a superuser administrator", srv.AdminConfig("EU")},
		{"with a CREATEROLE-only administrator", srv.LimitedAdminConfig("EU")},
	} {
		t.Run(admin.name, func(t *testing.T) { testPasswordHandling(t, admin.cfg) })
	}
}

func testPasswordHandling(t *testing.T, cfg storage.AdminConfig) {
	ctx := testContext(t)
	st := openStore(t, cfg)
	name, first := provision(t, st, "pw")

	for _, tc := range []struct {
		name                       string
		opts                       func(current storage.Provisioned) storage.ProvisionOptions
		wantOwnerKept, wantIngKept bool
	}{
		{"the Secrets' passwords are kept", func(cur storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{ExistingPassword: cur.Owner.Password, ExistingIngestPassword: cur.Ingest.Password}
		}, true, true},
		{"lost Secrets get new passwords", func(storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{}
		}, false, false},
		{"a lost ingest Secret gets a new ingest password and keeps the owner's", func(cur storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{ExistingPassword: cur.Owner.Password}
		}, true, false},
		{"a lost storage Secret gets a new owner password and keeps the ingest role's", func(cur storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{ExistingIngestPassword: cur.Ingest.Password}
		}, false, true},
		{"a rotation gets new passwords for both roles", func(cur storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{ExistingPassword: cur.Owner.Password, ExistingIngestPassword: cur.Ingest.Password, RotatePassword: true}
		}, false, false},
		{"Secrets whose passwords no longer match the roles get new ones", func(storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{ExistingPassword: "not-the-password-of-this-role", ExistingIngestPassword: "nor-of-this-one"}
		}, false, false},
		{"the owner's password in the ingest Secret is not taken for the ingest role's", func(cur storage.Provisioned) storage.ProvisionOptions {
			return storage.ProvisionOptions{ExistingPassword: cur.Owner.Password, ExistingIngestPassword: cur.Owner.Password}
		}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			current := first
			got, err := st.Provision(ctx, name, tc.opts(current))
			if err != nil {
				t.Fatalf("Provision: %v", err)
			}
			for _, r := range []struct {
				cur, got storage.Credentials
				wantKept bool
			}{{current.Owner, got.Owner, tc.wantOwnerKept}, {current.Ingest, got.Ingest, tc.wantIngKept}} {
				if kept := r.got.Password == r.cur.Password; kept != r.wantKept {
					t.Fatalf("%s's password kept = %v, want %v", r.cur.Username, kept, r.wantKept)
				}
				if err := canLogIn(ctx, r.got); err != nil {
					t.Errorf("%s's returned password does not work: %v", r.got.Username, err)
				}
				if !r.wantKept {
					if storage.ReasonFor(canLogIn(ctx, r.cur)) != storage.ReasonAuthenticationFailed {
						t.Errorf("%s's replaced password still works", r.cur.Username)
					}
				}
			}
			first = got
		})
	}
}

func TestConcurrentProvisioning(t *testing.T) {
	t.Run("eight different tenants at once all succeed", func(t *testing.T) {
		ctx := testContext(t)
		st := openStore(t, srv.AdminConfig("EU"), storage.WithMaxConns(8))
		before, err := st.CountTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		names := make([]string, 8)
		creds := make([]storage.Provisioned, 8)
		errs := make([]error, 8)
		var wg sync.WaitGroup
		for i := range names {
			names[i] = newTenantName("many")
			wg.Go(func() { creds[i], errs[i] = st.Provision(ctx, names[i], storage.ProvisionOptions{}) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Provision(%s): %v", names[i], err)
				continue
			}
			for _, c := range []storage.Credentials{creds[i].Owner, creds[i].Ingest} {
				if err := canLogIn(ctx, c); err != nil {
					t.Errorf("%s cannot log in: %v", c.Username, err)
				}
			}
		}
		after, err := st.CountTenants(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if after-before != 8 {
			t.Errorf("CountTenants went from %d to %d, want 8 more", before, after)
		}
	})

	t.Run("the same tenant from four reconciles at once takes turns", func(t *testing.T) {
		ctx := testContext(t)
		st := openStore(t, srv.LimitedAdminConfig("EU"), storage.WithMaxConns(4))
		name := newTenantName("same")
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Go(func() { _, errs[i] = st.Provision(ctx, name, storage.ProvisionOptions{}) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("Provision #%d: %v", i, err)
			}
		}
		l, err := st.Verify(ctx, name)
		if err != nil || !l.Schema || !l.Role || !l.IngestRole {
			t.Errorf("after concurrent provisioning: %v, %v", l, err)
		}
	})
}

func TestEventsTableCannotHoldAnIPAddress(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	_, roles := provision(t, st, "noip")
	schema := roles.Owner.Schema

	rows, err := adminConn(t).Query(ctx, `
		SELECT table_name, column_name, data_type, udt_name FROM information_schema.columns
		WHERE table_schema = $1 ORDER BY table_name, ordinal_position`, schema)
	if err != nil {
		t.Fatal(err)
	}
	type column struct{ Table, Name, Type, UDT string }
	cols, err := pgx.CollectRows(rows, pgx.RowToStructByPos[column])
	if err != nil {
		t.Fatal(err)
	}
	var eventsCols []string
	for _, c := range cols {
		if c.Type == "inet" || c.Type == "cidr" || c.UDT == "inet" || c.UDT == "cidr" || strings.HasPrefix(c.UDT, "macaddr") {
			t.Errorf("%s.%s is of type %s, which holds network addresses", c.Table, c.Name, c.Type)
		}
		if strings.Contains(strings.ToLower(c.Name), "ip") {
			t.Errorf("%s.%s has \"ip\" in its name", c.Table, c.Name)
		}
		if c.Table == "events" {
			eventsCols = append(eventsCols, c.Name)
		}
	}
	want := []string{"event_id", "received_at", "event_name", "url_path", "referrer",
		"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id_type",
		"browser_family", "os_family", "device_type", "country", "region", "city", "props",
		"visitor_id", "hostname", "title", "attribution_source", "attribution_medium", "engagement_ms", "scroll_depth"}
	if !slices.Equal(eventsCols, want) {
		t.Errorf("events has columns %v,\nwant exactly the policy's %v", eventsCols, want)
	}
	var tables []string
	for _, c := range cols {
		if !slices.Contains(tables, c.Table) && !strings.HasPrefix(c.Table, "events_") {
			tables = append(tables, c.Table)
		}
	}
	slices.Sort(tables)
	if want := []string{"daily_aggregates", "events", "rollup_ledger", "schema_version"}; !slices.Equal(tables, want) {
		t.Errorf("the schema's tables are %v, want %v: no salts, nothing else", tables, want)
	}
	var aggCols []string
	for _, c := range cols {
		if c.Table == "daily_aggregates" {
			aggCols = append(aggCols, c.Name)
		}
	}
	if wantAgg := []string{"day", "path", "country", "referrer_source", "pageviews", "visitors", "events", "hostname",
		"engagements", "engaged_ms", "scroll_depth_sum", "scroll_depth_count"}; !slices.Equal(aggCols, wantAgg) {
		t.Errorf("daily_aggregates has columns %v, want counters only: %v", aggCols, wantAgg)
	}
}

func TestProvisionMakesAWeekOfPartitionsAhead(t *testing.T) {
	ctx := testContext(t)
	now := time.Date(2026, 3, 28, 23, 59, 0, 0, time.FixedZone("UTC-5", -5*3600)) // already the 29th in UTC
	st := openStore(t, srv.AdminConfig("EU"), storage.WithClock(func() time.Time { return now }))
	_, roles := provision(t, st, "ahead")

	rows, err := adminConn(t).Query(ctx, `
		SELECT c.relname, c.relowner::regrole::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass($1) ORDER BY 1`, roles.Owner.Schema+".events")
	if err != nil {
		t.Fatal(err)
	}
	type part struct{ Name, Owner string }
	parts, err := pgx.CollectRows(rows, pgx.RowToStructByPos[part])
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range parts {
		got = append(got, p.Name)
		if p.Owner != roles.Owner.Username {
			t.Errorf("partition %s is owned by %s, want the tenant so retention can drop it", p.Name, p.Owner)
		}
	}
	want := []string{"events_20260329", "events_20260330", "events_20260331", "events_20260401",
		"events_20260402", "events_20260403", "events_20260404", "events_20260405"}
	if !slices.Equal(got, want) {
		t.Errorf("partitions %v, want %v", got, want)
	}
}

func TestProvisionRefusesNamesThatCannotBeSchemas(t *testing.T) {
	st := openStore(t, srv.AdminConfig("EU"))
	for _, tc := range []struct{ why, name string }{
		{"an empty name", ""},
		{"upper case", "Acme"},
		{"a leading dash", "-acme"},
		{"an underscore, which would collide with a dash", "ac_me"},
		{"a quote", `ac"me`},
		{"41 characters", strings.Repeat("a", 41)},
	} {
		t.Run("refuses "+tc.why, func(t *testing.T) {
			_, err := st.Provision(testContext(t), tc.name, storage.ProvisionOptions{})
			if r := storage.ReasonFor(err); r != storage.ReasonInvalidTenantName {
				t.Errorf("reason %q (err %v), want %q", r, err, storage.ReasonInvalidTenantName)
			}
			var se *storage.Error
			if !errors.As(err, &se) {
				t.Errorf("error %T is not a *storage.Error", err)
			}
		})
	}
	// The legacy names of tenants provisioned before opaque names, which
	// they keep.
	if got := storage.LegacyNames("acme-eu-2"); got != (storage.TenantNames{Schema: "tenant_acme_eu_2", IngestRole: "ingest_acme_eu_2"}) {
		t.Errorf("LegacyNames(acme-eu-2) = %+v", got)
	}
	// A suffix on the schema name would have been the schema of another
	// tenant: tenant_acme_ingest is tenant acme-ingest's.
	for _, other := range []string{"acme-ingest", "ingest-acme", "ingest"} {
		if storage.LegacyNames("acme").IngestRole == storage.LegacyNames(other).Schema {
			t.Errorf("acme's ingest role is tenant %s's schema and role", other)
		}
	}
	if n := len(storage.LegacyNames(strings.Repeat("a", 40)).IngestRole); n > 63 {
		t.Errorf("the longest tenant's ingest role name has %d bytes, more than PostgreSQL's 63", n)
	}
	if err := storage.ValidateTenantName(strings.Repeat("a", 40)); err != nil {
		t.Errorf("40 characters refused: %v", err)
	}
}

// Most of the administrator's statements name a tenant's schema, so each
// tenant's is a statement of its own: the connections must not keep one
// prepared per tenant (pgx's default keeps 512 per connection, in the
// operator's memory and in each server process's).
func TestTheAdministratorsConnectionsDoNotKeepAStatementPerTenant(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("eu"), storage.WithMaxConns(1))
	tenants := 2 * storage.AdminStatementCacheCapacity
	for range tenants {
		if _, err := st.Provision(ctx, newTenantName("stmt"), storage.ProvisionOptions{}); err != nil {
			t.Fatalf("Provision: %v", err)
		}
	}
	n, err := st.PreparedStatements(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n > storage.AdminStatementCacheCapacity {
		t.Errorf("%d statements prepared on the connection after provisioning %d tenants, want at most %d", n, tenants, storage.AdminStatementCacheCapacity)
	}
	t.Logf("%d statements prepared after provisioning %d tenants", n, tenants)
}
