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
	"fmt"

	"github.com/jackc/pgx/v5"
)

// namesTable maps each tenant of the region to its names in the database
// (TenantNames): the one place that says which schema and roles are whose.
// The names themselves say nothing about the customer (see
// OpaqueSchemaPrefix); this table does, so it is in OperatorSchema, which no
// tenant role can use. It is keyed by the tenant's name, which is unique
// among the cluster's tenants at any time, and records the tenant's
// metadata.uid: a tenant object of the same name with another uid (a
// restore without status) takes the row over only while no hold keeps it
// for the deleted tenant (Adopt decides that). The tenant's status shows
// the names too, but the status can be lost; this table is what Provision,
// Purge, Verify, Retain, Adopt, the sweep and the oldest-event read go by.
// A row goes when its tenant is purged.
const namesTable = "tenant_names"

// namesTableDDL makes the mapping. Names are unique: two tenants never
// share a schema or a role.
var namesTableDDL = `CREATE TABLE IF NOT EXISTS ` + pgx.Identifier{OperatorSchema, namesTable}.Sanitize() + ` (
	tenant      text PRIMARY KEY,
	tenant_uid  text UNIQUE,
	schema      text NOT NULL UNIQUE,
	ingest_role text NOT NULL UNIQUE,
	recorded_at timestamptz NOT NULL DEFAULT pg_catalog.now()
)`

// recordedNames is the row of namesTable for tenant: its names and the uid
// recorded with them ("" when none was). ok is false when there is no row.
func recordedNames(ctx context.Context, db DB, tenant string) (names TenantNames, uid string, ok bool, err error) {
	var recordedUID *string
	err = db.QueryRow(ctx, `SELECT schema, ingest_role, tenant_uid FROM `+pgx.Identifier{OperatorSchema, namesTable}.Sanitize()+
		` WHERE tenant = $1`, tenant).Scan(&names.Schema, &names.IngestRole, &recordedUID)
	if errors.Is(err, pgx.ErrNoRows) {
		return TenantNames{}, "", false, nil
	}
	if err != nil {
		return TenantNames{}, "", false, err
	}
	if err := names.validate(); err != nil {
		return TenantNames{}, "", false, err
	}
	if recordedUID != nil {
		uid = *recordedUID
	}
	return names, uid, true, nil
}

// tenantNames finds the names of tenant: those recorded in namesTable,
// else, for a tenant an operator from before opaque names provisioned and
// this one has not yet, its legacy names, when its legacy owner role is in
// the registry of roles the operator made (a role of that name made by
// someone else is not the tenant's). ok is false when it has neither: the
// tenant has nothing in the database. OperatorSchema must exist.
func tenantNames(ctx context.Context, db DB, tenant string) (names TenantNames, ok bool, err error) {
	names, _, ok, err = recordedNames(ctx, db, tenant)
	if err != nil || ok {
		return names, ok, err
	}
	legacy := legacyNames(tenant)
	ours, err := registeredOf(ctx, db, []string{legacy.Schema})
	if err != nil || len(ours) == 0 {
		return TenantNames{}, false, err
	}
	return legacy, true, nil
}

// namesOf is tenantNames for the calls that only read, and so make no
// OperatorSchema: where there is none, no operator with the mapping and the
// registry has been there, and a tenant can only have its legacy names.
func (p *Postgres) namesOf(ctx context.Context, op, tenant string) (TenantNames, bool, error) {
	ready, err := p.operatorSchemaReady(ctx, op, false)
	if err != nil {
		return TenantNames{}, false, err
	}
	if !ready {
		return legacyNames(tenant), true, nil
	}
	names, ok, err := tenantNames(ctx, p.pool, tenant)
	return names, ok, wrap(op, err, p.cfg.Password)
}

// Names implements Store.
func (p *Postgres) Names(ctx context.Context, tenant string) (_ *TenantNames, err error) {
	op := "read the names of " + tenant
	ctx, done := p.deadline(ctx, op)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return nil, err
	}
	ready, err := p.operatorSchemaReady(ctx, op, false)
	if err != nil || !ready {
		return nil, err
	}
	names, ok, err := tenantNames(ctx, p.pool, tenant)
	if err != nil || !ok {
		return nil, wrap(op, err, p.cfg.Password)
	}
	return &names, nil
}

// provisionNames decides the names Provision gives tenant, under the
// tenant's lock, and records them in namesTable:
//   - the names recorded for it. When the row was recorded with another
//     uid than uid (the tenant object was made again, as a restore without
//     status does), the row is taken over with uid, unless a hold keeps it
//     for the deleted tenant: then a *RetainedDataError, and nothing
//     changes (Adopt, which ends a hold, is how held data is given);
//   - else its legacy names, when an operator from before opaque names
//     provisioned it (its legacy owner role is registered): its data
//     stays where it is. A hold under the name keeps them from a tenant
//     object with a uid, as above;
//   - else new opaque names, drawn until neither name is taken by a schema
//     or role of the server or a row of the mapping.
func (p *Postgres) provisionNames(ctx context.Context, tx pgx.Tx, tenant, uid string) (TenantNames, error) {
	table := pgx.Identifier{OperatorSchema, namesTable}.Sanitize()
	names, recordedUID, ok, err := recordedNames(ctx, tx, tenant)
	if err != nil {
		return TenantNames{}, err
	}
	// Names that are there already go to a tenant object other than the
	// one they were recorded for only when no hold keeps them.
	notHeld := func() error {
		if uid == "" {
			return nil
		}
		held, err := holdOf(ctx, tx, tenant)
		if err == nil && held != nil {
			err = &RetainedDataError{Tenant: tenant, Held: held}
		}
		return err
	}
	if ok {
		if uid == "" || recordedUID == uid {
			return names, nil
		}
		if err := notHeld(); err != nil {
			return TenantNames{}, err
		}
		_, err = tx.Exec(ctx, `UPDATE `+table+` SET tenant_uid = $2, recorded_at = pg_catalog.now() WHERE tenant = $1`, tenant, uid)
		return names, err
	}
	legacy := legacyNames(tenant)
	ours, err := registeredOf(ctx, tx, []string{legacy.Schema})
	if err != nil {
		return TenantNames{}, err
	}
	switch {
	case len(ours) > 0:
		if err := notHeld(); err != nil {
			return TenantNames{}, err
		}
		names = legacy
	case p.legacyNames:
		names = legacy
	default:
		for attempt := 0; ; attempt++ {
			if names, err = newOpaqueNames(); err != nil {
				return TenantNames{}, err
			}
			var taken bool
			err := tx.QueryRow(ctx, `
				SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname IN ($1, $2))
				    OR EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname IN ($1, $2))
				    OR EXISTS (SELECT 1 FROM `+table+` WHERE schema = $1 OR ingest_role = $2)`,
				names.Schema, names.IngestRole).Scan(&taken)
			if err != nil {
				return TenantNames{}, err
			}
			if !taken {
				break
			}
			if attempt == 3 {
				return TenantNames{}, newError(ReasonStorageError, "provision "+tenant, "no free opaque name was drawn in 4 attempts", nil)
			}
		}
	}
	var recorded *string
	if uid != "" {
		recorded = &uid
	}
	_, err = tx.Exec(ctx, `INSERT INTO `+table+` (tenant, tenant_uid, schema, ingest_role) VALUES ($1, $2, $3, $4)`,
		tenant, recorded, names.Schema, names.IngestRole)
	return names, err
}

// forgetNames removes the tenant's row from namesTable, as its schema and
// roles are dropped: nothing of a purged tenant is kept, not even its name.
func forgetNames(ctx context.Context, tx pgx.Tx, tenant string) error {
	_, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{OperatorSchema, namesTable}.Sanitize()+` WHERE tenant = $1`, tenant)
	return err
}

// holdOf is the hold recorded under tenant's name, nil when there is none.
func holdOf(ctx context.Context, db DB, tenant string) (*RetainedTenant, error) {
	held := RetainedTenant{Tenant: tenant}
	var uid *string
	err := db.QueryRow(ctx, `
		SELECT schema, tenant_uid, deleted_at, expires_at, COALESCE(retention_days, 0)
		FROM `+pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()+` WHERE tenant = $1`,
		tenant).Scan(&held.Schema, &uid, &held.DeletedAt, &held.ExpiresAt, &held.RetentionDays)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if uid != nil {
		held.UID = *uid
	}
	held.DeletedAt, held.ExpiresAt = held.DeletedAt.UTC(), held.ExpiresAt.UTC()
	return &held, nil
}

// String names the schema and roles, for a message.
func (n TenantNames) String() string {
	return fmt.Sprintf("schema and owner role %s, ingest role %s", n.Schema, n.IngestRole)
}
