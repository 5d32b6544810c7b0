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
	"errors"
	"hash/fnv"
	"strconv"

	"github.com/jackc/pgx/v5"
)

// The operator's locks are rows of a table in OperatorSchema, locked FOR
// UPDATE in the transaction that needs them and released when it ends. They
// are not advisory locks: pg_advisory_lock is executable by PUBLIC and its
// keys can be guessed, so any tenant's role could take another tenant's
// lock, or the region's, and hold it for as long as it liked. No tenant role
// can use OperatorSchema (it has no USAGE), so no tenant can see or lock
// these rows.
//
// Row 0 is the region's: database-wide changes (the database's ACL,
// dropping a role's privileges) take it. The tenants' locks are spread over
// rows 1 to tenantLockSlots by a hash of the tenant's name (not of its
// schema's: the lock is taken before the names are looked up, or drawn, in
// namesTable, so that two provisionings of a new tenant never record two),
// so the table neither grows with tenants nor keeps their names;
// two tenants that share a row take turns, which costs one of them a wait
// of one provisioning at most.
const (
	locksTable      = "locks"
	regionLockSlot  = 0
	tenantLockSlots = 1024
)

// locksTableDDL makes the table of locks; locksTableRows fills it. Both run
// as operatorRole, which owns the table.
var (
	locksTableDDL = `CREATE TABLE IF NOT EXISTS ` + pgx.Identifier{OperatorSchema, locksTable}.Sanitize() + ` (
	slot integer PRIMARY KEY CHECK (slot >= 0)
)`
	locksTableRows = `INSERT INTO ` + pgx.Identifier{OperatorSchema, locksTable}.Sanitize() +
		` (slot) SELECT generate_series(0, ` + strconv.Itoa(tenantLockSlots) + `) ON CONFLICT (slot) DO NOTHING`
)

// tenantLockSlot is the row of the locks table that stands for the tenant
// named tenant.
func tenantLockSlot(tenant string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(tenant))
	return 1 + int(h.Sum32()%tenantLockSlots)
}

// lockTenant takes the lock of the tenant named tenant, held until tx
// ends: provisioning, purging, holding, adopting and sweeping a tenant take
// turns. It waits up to the transaction's lock_timeout.
func lockTenant(ctx context.Context, tx pgx.Tx, tenant string) error {
	return lockSlot(ctx, tx, tenantLockSlot(tenant))
}

// lockRegion takes the region's lock, held until tx ends: changes to the
// database's own pg_database row take turns, as two at once fail with
// "tuple concurrently updated". Take it after the tenant's lock, never
// before, so that no two transactions wait on each other.
func lockRegion(ctx context.Context, tx pgx.Tx) error {
	return lockSlot(ctx, tx, regionLockSlot)
}

// lockSlot locks one row of the locks table FOR UPDATE. A row that is
// missing (deleted by hand) is put back first, so a lock is never silently
// not taken.
func lockSlot(ctx context.Context, tx pgx.Tx, slot int) error {
	table := pgx.Identifier{OperatorSchema, locksTable}.Sanitize()
	for attempt := 0; ; attempt++ {
		var locked int
		err := tx.QueryRow(ctx, `SELECT slot FROM `+table+` WHERE slot = $1 FOR UPDATE`, slot).Scan(&locked)
		if !errors.Is(err, pgx.ErrNoRows) || attempt > 0 {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+table+` (slot) VALUES ($1) ON CONFLICT (slot) DO NOTHING`, slot); err != nil {
			return err
		}
	}
}
