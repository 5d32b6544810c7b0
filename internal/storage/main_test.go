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
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
	"github.com/millimetric/tenant-operator/internal/storage/pgtest"
)

// srv is the package's PostgreSQL server, shared by all tests; tests keep
// out of each other's way by using tenant names of their own.
var srv *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &srv)) }

var tenantSeq atomic.Int64

// newTenantName is a tenant name no other test uses.
func newTenantName(prefix string) string {
	return fmt.Sprintf("%s-%d", prefix, tenantSeq.Add(1))
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// openStore opens a Store for region with cfg, closed when the test ends.
func openStore(t testing.TB, cfg storage.AdminConfig, opts ...storage.Option) *storage.Postgres {
	t.Helper()
	st, err := storage.Open(context.Background(), cfg, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}

// provision provisions a fresh tenant and returns its name and the
// credentials of its roles.
func provision(t testing.TB, st storage.Store, prefix string) (string, storage.Provisioned) {
	t.Helper()
	name := newTenantName(prefix)
	p, err := st.Provision(testContext(t), name, storage.ProvisionOptions{})
	if err != nil {
		t.Fatalf("Provision(%s): %v", name, err)
	}
	return name, p
}

// tenantConn connects with a tenant's credentials, closed when the test ends.
func tenantConn(t testing.TB, creds storage.Credentials) *pgx.Conn {
	t.Helper()
	conn, err := storage.ConnectTenant(testContext(t), creds)
	if err != nil {
		t.Fatalf("connecting as %s: %v", creds.Username, err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// adminConn is a superuser connection to the EU region's database.
func adminConn(t testing.TB) *pgx.Conn {
	t.Helper()
	conn, err := srv.Connect(testContext(t), "EU")
	if err != nil {
		t.Fatalf("admin connection: %v", err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

// recorded are the tenant's names as the store recorded them.
func recorded(t testing.TB, st storage.Store, tenant string) storage.TenantNames {
	t.Helper()
	names, err := st.Names(testContext(t), tenant)
	if err != nil || names == nil {
		t.Fatalf("Names(%s) = %v, %v; want the names Provision recorded", tenant, names, err)
	}
	return *names
}

// namesInDB are the tenant's names as the EU database's mapping records
// them, read as a superuser.
func namesInDB(t testing.TB, tenant string) storage.TenantNames {
	t.Helper()
	var n storage.TenantNames
	if err := adminConn(t).QueryRow(testContext(t), `SELECT schema, ingest_role FROM `+storage.OperatorSchema+`.tenant_names WHERE tenant = $1`,
		tenant).Scan(&n.Schema, &n.IngestRole); err != nil {
		t.Fatalf("the names recorded for %s: %v", tenant, err)
	}
	return n
}
