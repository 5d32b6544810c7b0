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
	"testing"

	"github.com/millimetric/tenant-operator/internal/storage"
)

func TestPurgeRemovesOneTenantEntirely(t *testing.T) {
	for _, admin := range []struct {
		name string
		cfg  storage.AdminConfig
	}{
		{"by a superuser", srv.AdminConfig("EU")},
		{"by a CREATEROLE-only administrator", srv.LimitedAdminConfig("EU")},
	} {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg)
			gone, goneRoles := provision(t, st, "purged")
			kept, keptRoles := provision(t, st, "kept")
			goneCreds, keptCreds := goneRoles.Owner, keptRoles.Owner
			for _, c := range []storage.Credentials{goneCreds, keptCreds} {
				insertEvents(t, tenantConn(t, c), c.Schema, eventsOn(retentionNow, 20))
			}
			before, err := st.Verify(ctx, gone)
			if err != nil {
				t.Fatal(err)
			}
			if !before.Schema || !before.Role || !before.IngestRole || before.Rows != 20 || before.Relations == 0 || before.Dependencies == 0 {
				t.Fatalf("before Purge, Verify says %+v: it would not notice leftovers", before)
			}
			// Open sessions of the purged tenant's roles, the owner's holding
			// a lock on its table, the ingest role's in a transaction that
			// has written to it.
			sessionsBefore := before.Sessions
			session := tenantConn(t, goneCreds)
			if _, err := session.Exec(ctx, `BEGIN; LOCK TABLE `+goneCreds.Schema+`.events IN ACCESS SHARE MODE`); err != nil {
				t.Fatal(err)
			}
			ingestSession := tenantConn(t, goneRoles.Ingest)
			if _, err := ingestSession.Exec(ctx, `BEGIN; INSERT INTO `+goneCreds.Schema+`.events (received_at, event_name) VALUES (now(), 'pageview')`); err != nil {
				t.Fatal(err)
			}
			if during, err := st.Verify(ctx, gone); err != nil || during.Sessions != sessionsBefore+2 {
				t.Fatalf("Verify counts %d sessions (%v), want %d: the owner's and the ingest role's new ones too",
					during.Sessions, err, sessionsBefore+2)
			}

			if err := st.Purge(ctx, gone); err != nil {
				t.Fatalf("Purge: %v", err)
			}
			left, err := st.Verify(ctx, gone)
			if err != nil {
				t.Fatal(err)
			}
			if !left.Empty() {
				t.Errorf("after Purge: %s (%+v)", left, left)
			}
			var schemas, roles, deps int
			err = adminConn(t).QueryRow(ctx, `SELECT
				(SELECT count(*) FROM pg_namespace WHERE nspname = $1),
				(SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)),
				(SELECT count(*) FROM pg_shdepend d LEFT JOIN pg_roles r ON r.oid = d.refobjid
				 WHERE d.refclassid = 'pg_authid'::regclass AND r.oid IS NULL AND d.deptype <> 'p')`,
				goneCreds.Schema, goneRoles.Ingest.Username).Scan(&schemas, &roles, &deps)
			if err != nil {
				t.Fatal(err)
			}
			if schemas+roles+deps != 0 {
				t.Errorf("catalog still has %d schemas, %d roles, %d dangling dependencies", schemas, roles, deps)
			}
			if _, err := session.Exec(ctx, `SELECT 1`); err == nil {
				t.Errorf("the purged tenant's open session still works")
			}
			if _, err := ingestSession.Exec(ctx, `SELECT 1`); err == nil {
				t.Errorf("the purged tenant's open ingest session still works")
			}
			for _, c := range []storage.Credentials{goneCreds, goneRoles.Ingest} {
				if r := storage.ReasonFor(canLogIn(ctx, c)); r != storage.ReasonAuthenticationFailed {
					t.Errorf("logging in as the purged tenant's %s: reason %q, want %q", c.Username, r, storage.ReasonAuthenticationFailed)
				}
			}

			still, err := st.Verify(ctx, kept)
			if err != nil {
				t.Fatal(err)
			}
			if !still.Schema || !still.Role || !still.IngestRole || still.Rows != 20 {
				t.Errorf("the other tenant lost something: %+v", still)
			}
			for _, c := range []storage.Credentials{keptCreds, keptRoles.Ingest} {
				if err := canLogIn(ctx, c); err != nil {
					t.Errorf("the other tenant's %s cannot log in: %v", c.Username, err)
				}
			}

			if err := st.Purge(ctx, gone); err != nil {
				t.Errorf("second Purge: %v", err)
			}
			if err := st.Purge(ctx, newTenantName("never-existed")); err != nil {
				t.Errorf("Purge of a tenant that never existed: %v", err)
			}
		})
	}
}
