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

package storage

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// WithSchemaVersion makes Provision migrate tenant schemas only up to
// version, so tests can make a tenant as an older operator did and check
// that the current one migrates it. It exists in tests only.
func WithSchemaVersion(version int) Option {
	return func(p *Postgres) { p.schemaVersion = version }
}

// PreparedStatements counts the statements prepared on one of the
// administrator's pooled connections (with WithMaxConns(1), the one).
func (p *Postgres) PreparedStatements(ctx context.Context) (int, error) {
	var n int
	// Not prepared itself, so that it counts only the others.
	err := p.pool.QueryRow(ctx, `SELECT count(*) FROM pg_prepared_statements`, pgx.QueryExecModeSimpleProtocol).Scan(&n)
	return n, err
}

// HoldRetentionLock takes the tenant's retention lock on conn, as a
// retention run does, and holds it until conn's transaction ends (ROLLBACK,
// or the connection closes). locked is false when another session holds it.
func HoldRetentionLock(ctx context.Context, conn *pgx.Conn, schema string) (locked bool, err error) {
	tx, err := lockRetention(ctx, conn, schema)
	return tx != nil, err
}

// WithLegacyNames makes Provision give new tenants legacy names
// (tenant_<name>, ingest_<name>), as an operator from before opaque names
// did, so tests can make such a tenant and check that the current one
// keeps its names. It exists in tests only.
func WithLegacyNames() Option {
	return func(p *Postgres) { p.legacyNames = true }
}

// LegacyNames are the names an operator from before opaque names gave
// tenant.
func LegacyNames(tenant string) TenantNames { return legacyNames(tenant) }
