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
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// MaxRetainHold is the longest hold Retain accepts: the policy deletes
// account data within 30 days of closure.
const MaxRetainHold = 30 * 24 * time.Hour

// OperatorSchema is the schema, in each region's database, where the
// operator keeps its own records: its locks (see lockTenant), the holds of
// retained tenants, the registry of the roles it made and which names are
// whose tenant's (namesTable). It matches neither kind of tenant schema
// name (validateSchema), so no tenant can have it, and CountTenants does not
// count it. No tenant role has USAGE on it.
const OperatorSchema = "millimetric_operator"

// operatorRole owns OperatorSchema and its tables: a role that cannot log
// in, which each region's administrator makes itself a member of. Whichever
// administrator a region has, a superuser, a CREATEROLE-only one, or a new
// one after the platform team changed the admin Secret, can then keep the
// records; a table owned by the first administrator would lock out the next
// and stop the sweep. Tenant roles are never members.
const operatorRole = "millimetric_operator"

// retainedTable holds one row per retained tenant.
const retainedTable = "retained_tenants"

// retainedTableDDL makes the table of holds. tenant_uid is the deleted
// tenant's metadata.uid, which a tenant must name to adopt the data (NULL in
// holds recorded before holds carried it: those are never adopted, only
// purged when they end). purge_started_at is set by the sweep, under the
// tenant's lock, before it purges: from then on Adopt refuses the tenant, so
// a purge that runs in several transactions can never purge a tenant that
// was adopted meanwhile. retention_days is the deleted tenant's plan's
// window, which the sweep keeps enforcing on the held raw events (NULL in
// holds recorded before holds carried it). retainedTableUID and
// retainedTableRetention add those columns to a table made before them.
var (
	retainedTableDDL = `CREATE TABLE IF NOT EXISTS ` + pgx.Identifier{OperatorSchema, retainedTable}.Sanitize() + ` (
	tenant           text PRIMARY KEY,
	schema           text NOT NULL,
	deleted_at       timestamptz NOT NULL,
	expires_at       timestamptz NOT NULL,
	purge_started_at timestamptz,
	tenant_uid       text,
	retention_days   integer CHECK (retention_days > 0),
	CHECK (expires_at > deleted_at)
)`
	retainedTableUID       = `ALTER TABLE ` + pgx.Identifier{OperatorSchema, retainedTable}.Sanitize() + ` ADD COLUMN IF NOT EXISTS tenant_uid text`
	retainedTableRetention = `ALTER TABLE ` + pgx.Identifier{OperatorSchema, retainedTable}.Sanitize() +
		` ADD COLUMN IF NOT EXISTS retention_days integer CHECK (retention_days > 0)`
)

// RetainedTenant is the hold of a deleted tenant's data under deletionPolicy
// Retain, as Retained and SweepRetained report it.
type RetainedTenant struct {
	// Tenant is the deleted tenant's name.
	Tenant string
	// UID is the deleted tenant's metadata.uid: what a tenant created
	// again under the same name must name to adopt the data. It is "" for
	// a hold recorded before holds carried it, which cannot be adopted.
	UID string
	// Schema is its schema, as recorded for it (TenantNames.Schema).
	Schema string
	// DeletedAt is when the tenant was deleted: the start of the hold.
	DeletedAt time.Time
	// ExpiresAt is when the hold ends and the sweep purges the tenant.
	ExpiresAt time.Time
	// RetentionDays is the deleted tenant's plan's window, which the sweep
	// keeps enforcing on the held raw events; 0 for a hold recorded before
	// holds carried it.
	RetentionDays int
}

// Hold is how long the tenant is held.
func (r RetainedTenant) Hold() time.Duration { return r.ExpiresAt.Sub(r.DeletedAt) }

// Retain implements Store. It records the hold, with the deleted tenant's
// uid, in OperatorSchema, beside the tenant's schema, so it outlives the
// tenant object, and in the same transaction, under the tenant's lock,
// forbids both of the tenant's roles to log in; then it ends their
// sessions. The schema, its data and the roles stay until Adopt or
// SweepRetained. A second Retain of a held tenant keeps the first hold (its
// uid, deletedAt and expiry) and re-applies NOLOGIN.
//
// A tenant with no schema has no data to hold: Retain records nothing and
// changes nothing. hold must be positive and at most MaxRetainHold, uid not
// empty and retentionDays, the plan's window, which SweepRetained keeps
// enforcing on the held raw events, positive.
func (p *Postgres) Retain(ctx context.Context, tenant, uid string, deletedAt time.Time, hold time.Duration, retentionDays int) (err error) {
	ctx, done := p.deadline(ctx, "retain "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return err
	}
	op := "retain " + tenant
	if hold <= 0 || hold > MaxRetainHold {
		return newError(ReasonInvalidConfig, op,
			fmt.Sprintf("a hold of %s is not allowed: it must be more than 0 and at most %s (30 days)", hold, MaxRetainHold), nil)
	}
	if uid == "" {
		return newError(ReasonInvalidConfig, op, "a hold needs the deleted tenant's uid, which adopting its data must name", nil)
	}
	if retentionDays < 1 {
		return newError(ReasonInvalidConfig, op, fmt.Sprintf("a hold needs the plan's retention window, not %d days", retentionDays), nil)
	}
	if _, err := p.operatorSchemaReady(ctx, op, true); err != nil {
		return err
	}
	deletedAt = deletedAt.UTC().Truncate(time.Microsecond)
	var locked []string
	err = p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		locked = nil
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		names, ok, err := tenantNames(ctx, tx, tenant)
		if err != nil || !ok {
			return err
		}
		schema := names.Schema
		var hasSchema bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, schema).Scan(&hasSchema); err != nil {
			return err
		}
		if !hasSchema {
			return nil
		}
		if _, err := tx.Exec(ctx, `
			INSERT INTO `+pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()+` (tenant, tenant_uid, schema, deleted_at, expires_at, retention_days)
			VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (tenant) DO NOTHING`,
			tenant, uid, schema, deletedAt, deletedAt.Add(hold), retentionDays); err != nil {
			return err
		}
		// The ingest role first, as in Purge; both lose LOGIN in this
		// transaction, so neither can log in once the hold is recorded.
		locked, err = lockOut(ctx, tx, []string{names.IngestRole, schema})
		return err
	})
	if err != nil {
		return err
	}
	return p.endSessions(ctx, op, locked)
}

// endSessions ends the server sessions of roles, waiting up to 5s for each
// to end. The roles must already be unable to log in (committed), so that
// none comes back.
// lockOut takes LOGIN from those of roles that exist, in the caller's
// transaction, and returns them. When the administrator is not a
// superuser it first grants itself each role, which PostgreSQL requires to
// end a role's sessions and to drop what it owns or was granted.
func lockOut(ctx context.Context, tx pgx.Tx, roles []string) ([]string, error) {
	var existing []string
	for _, role := range roles {
		st, err := readRole(ctx, tx, role)
		if err != nil {
			return nil, err
		}
		if !st.exists {
			continue
		}
		existing = append(existing, role)
		roleID := pgx.Identifier{role}.Sanitize()
		if !st.adminMember {
			if _, err := tx.Exec(ctx, `GRANT `+roleID+` TO CURRENT_USER`); err != nil {
				return nil, err
			}
		}
		if st.login {
			if _, err := tx.Exec(ctx, `ALTER ROLE `+roleID+` NOLOGIN`); err != nil {
				return nil, err
			}
		}
	}
	return existing, nil
}

// endSessions ends the sessions of roles, waiting up to 5 s for each, so
// they release their locks.
func (p *Postgres) endSessions(ctx context.Context, op string, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	_, err := p.pool.Exec(ctx, `
		SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity
		WHERE usename = ANY($1) AND pid <> pg_backend_pid()`, roles)
	return wrap(op, err, p.cfg.Password)
}

// RetainedDataError is why Adopt did not give a tenant the data held under
// its name: the tenant did not ask for it, asked for another deleted
// tenant's, or asked for data that is not held (any more). Nothing was
// changed. A controller shows it as a condition; the storage is not at
// fault.
type RetainedDataError struct {
	// Tenant is the name of the tenant that was to be provisioned.
	Tenant string
	// UID is the metadata.uid of the deleted tenant whose data it asked
	// for, "" when it asked for none.
	UID string
	// Held is the hold recorded under the tenant's name, nil when nothing is
	// held there.
	Held *RetainedTenant
}

// Error says what is held and what was asked for.
func (e *RetainedDataError) Error() string {
	switch {
	case e.Held == nil:
		return fmt.Sprintf("no data of a deleted tenant named %s with uid %s is held", e.Tenant, e.UID)
	case e.Held.UID == "":
		return fmt.Sprintf("the data held under the name %s until %s was recorded without the deleted tenant's uid and cannot be adopted",
			e.Tenant, e.Held.ExpiresAt.UTC().Format(time.RFC3339))
	case e.UID == "":
		return fmt.Sprintf("the data of the deleted tenant %s (uid %s) is held until %s, and adopting it was not asked for",
			e.Tenant, e.Held.UID, e.Held.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		return fmt.Sprintf("the data held under the name %s is of the deleted tenant with uid %s, not %s",
			e.Tenant, e.Held.UID, e.UID)
	}
}

// Adopt implements Store. Under the tenant's lock it gives the data held
// under the tenant's name to the tenant created again under it, if uid is
// the deleted tenant's, recorded by Retain: it ends the hold and returns
// it. The caller provisions the tenant right after: Provision gives both
// roles LOGIN back, as it repairs any drift.
//
// Nothing held under the name (never retained, adopted already, or purged
// by the sweep, in which case nothing of it is left) is nil, nil when uid
// is "" or a schema of that name exists, live; when uid asks for data and
// there is none, a *RetainedDataError with no hold. Data held for another
// deleted tenant, or held when uid is "", is never given: the hold stays as
// it is and the error is a *RetainedDataError that carries it, so a name
// alone never hands a tenant someone else's data. A hold whose schema is
// gone (purged by hand) holds nothing: its record is removed.
//
// A hold that has ended (by the store's clock) or whose purge has begun is
// not given back either: Adopt fails with ReasonBusy until the sweep has
// purged the tenant.
func (p *Postgres) Adopt(ctx context.Context, tenant, uid string) (_ *RetainedTenant, err error) {
	ctx, done := p.deadline(ctx, "adopt "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return nil, err
	}
	op := "adopt " + tenant
	if _, err := p.operatorSchemaReady(ctx, op, true); err != nil {
		return nil, err
	}
	table := pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()
	var adopted *RetainedTenant
	var refused *RetainedDataError
	err = p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		adopted, refused = nil, nil
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		// The schema recorded under the name: the held tenant's, which the
		// hold names too, or a live tenant's.
		names, hasNames, err := tenantNames(ctx, tx, tenant)
		if err != nil {
			return err
		}
		var hasSchema bool
		if err := tx.QueryRow(ctx, `SELECT $2 AND EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, names.Schema, hasNames).Scan(&hasSchema); err != nil {
			return err
		}
		held := RetainedTenant{Tenant: tenant}
		var heldUID *string
		var purging *time.Time
		err = tx.QueryRow(ctx, `
			SELECT schema, tenant_uid, deleted_at, expires_at, purge_started_at
			FROM `+table+` WHERE tenant = $1 FOR UPDATE`,
			tenant).Scan(&held.Schema, &heldUID, &held.DeletedAt, &held.ExpiresAt, &purging)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		found := err == nil
		if found && purging == nil && !hasSchema {
			// Purged by hand: nothing is held any more.
			if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE tenant = $1`, tenant); err != nil {
				return err
			}
			found = false
		}
		if !found {
			if uid != "" && !hasSchema {
				refused = &RetainedDataError{Tenant: tenant, UID: uid}
			}
			return nil
		}
		held.DeletedAt, held.ExpiresAt = held.DeletedAt.UTC(), held.ExpiresAt.UTC()
		if heldUID != nil {
			held.UID = *heldUID
		}
		if uid == "" || held.UID != uid {
			refused = &RetainedDataError{Tenant: tenant, UID: uid, Held: &held}
			return nil
		}
		now, err := p.clock(ctx, tx)
		if err != nil {
			return err
		}
		if purging != nil || !now.Before(held.ExpiresAt) {
			return newError(ReasonBusy, op, fmt.Sprintf(
				"the hold of the deleted tenant %s ended at %s: its data is being purged, and the tenant is provisioned anew once nothing of it is left",
				tenant, held.ExpiresAt.Format(time.RFC3339)), nil)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE tenant = $1`, tenant); err != nil {
			return err
		}
		adopted = &held
		return nil
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	return adopted, nil
}

// Hold implements Store: the hold recorded under the tenant's name, nil
// when there is none. It writes nothing.
func (p *Postgres) Hold(ctx context.Context, tenant string) (_ *RetainedTenant, err error) {
	ctx, done := p.deadline(ctx, "read the hold of "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return nil, err
	}
	op := "read the hold of " + tenant
	ok, err := p.operatorSchemaReady(ctx, op, false)
	if err != nil || !ok {
		return nil, err
	}
	held, err := holdOf(ctx, p.pool, tenant)
	return held, wrap(op, err, p.cfg.Password)
}

// Retained implements Store: the held tenants, the hold ending first
// first. It writes nothing; a region where nothing was ever retained has no
// table of holds, and none is made.
func (p *Postgres) Retained(ctx context.Context) (_ []RetainedTenant, err error) {
	ctx, done := p.deadline(ctx, "list retained tenants")
	defer done(&err)
	op := "list retained tenants"
	ok, err := p.operatorSchemaReady(ctx, op, false)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `
		SELECT tenant, COALESCE(tenant_uid, ''), schema, deleted_at, expires_at, COALESCE(retention_days, 0)
		FROM `+pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()+` ORDER BY expires_at, tenant`)
	if err != nil {
		return nil, wrap(op, err, p.cfg.Password)
	}
	held, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RetainedTenant, error) {
		var r RetainedTenant
		err := row.Scan(&r.Tenant, &r.UID, &r.Schema, &r.DeletedAt, &r.ExpiresAt, &r.RetentionDays)
		r.DeletedAt, r.ExpiresAt = r.DeletedAt.UTC(), r.ExpiresAt.UTC()
		return r, err
	})
	if err != nil {
		return nil, wrap(op, err, p.cfg.Password)
	}
	return held, nil
}

// SweepRetained implements Store. Each held tenant whose hold has ended by
// now is purged (Purge, then Verify that nothing is left) and its record
// removed; a tenant whose schema and roles are gone already only loses its
// record. It returns the holds it ended, the earliest first. A tenant
// adopted meanwhile is skipped: the sweep claims each tenant under the
// tenant's lock before purging it, and Adopt refuses a claimed one.
//
// Each tenant still held has its plan's window enforced as retention would
// (expireHeld): nothing runs the tenant's retention job while it is held,
// and a hold of up to 30 days would otherwise keep a 30-day plan's raw
// events for up to 60.
//
// One tenant's failure does not stop the others: the error joins every
// failure, each naming its tenant, and the holds ended so far are returned
// with it. A failed tenant stays held and is tried again at the next sweep.
func (p *Postgres) SweepRetained(ctx context.Context, now time.Time) (_ []RetainedTenant, err error) {
	ctx, done := p.deadline(ctx, "sweep retained tenants")
	defer done(&err)
	op := "sweep retained tenants"
	ok, err := p.operatorSchemaReady(ctx, op, false)
	if err != nil || !ok {
		return nil, err
	}
	rows, err := p.pool.Query(ctx, `
		SELECT tenant FROM `+pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()+`
		WHERE expires_at <= $1 ORDER BY expires_at, tenant`, now)
	if err != nil {
		return nil, wrap(op, err, p.cfg.Password)
	}
	due, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, wrap(op, err, p.cfg.Password)
	}
	var purged []RetainedTenant
	var errs []error
	for _, tenant := range due {
		held, ok, err := p.sweepOne(ctx, tenant, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if ok {
			purged = append(purged, held)
		}
	}
	rows, err = p.pool.Query(ctx, `
		SELECT tenant, retention_days FROM `+pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()+`
		WHERE expires_at > $1 AND purge_started_at IS NULL AND retention_days IS NOT NULL ORDER BY tenant`, now)
	if err != nil {
		return purged, errors.Join(append(errs, wrap(op, err, p.cfg.Password))...)
	}
	type heldWindow struct {
		tenant string
		days   int
	}
	windows, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (heldWindow, error) {
		var h heldWindow
		err := row.Scan(&h.tenant, &h.days)
		return h, err
	})
	if err != nil {
		return purged, errors.Join(append(errs, wrap(op, err, p.cfg.Password))...)
	}
	for _, h := range windows {
		if err := p.expireHeld(ctx, h.tenant, h.days, now); err != nil {
			errs = append(errs, err)
		}
	}
	return purged, errors.Join(errs...)
}

// expireHeld does for a held tenant what its retention job would: every
// UTC day of raw events older than retentionDays before now's day is
// rolled into daily_aggregates (so an adopted tenant keeps its counts) and
// its partition dropped, oldest first, each day in a savepoint of its own
// (expireDayOnce). It runs in one transaction of the administrator's under
// the tenant's lock, only while the tenant is still held and its purge has
// not begun, and acting as the schema's owner (SET LOCAL ROLE), never with
// the administrator's own rights on the tenant's objects; it takes the
// tenant's retention lock as a run does. A schema older than retention
// needs (held by an older operator) is left as it is, with an error: its
// hold ends within 30 days anyway.
func (p *Postgres) expireHeld(ctx context.Context, tenant string, retentionDays int, now time.Time) error {
	op := "expiring the raw events of retained tenant " + tenant
	if err := ValidateTenantName(tenant); err != nil {
		return newError(ReasonStorageError, op,
			fmt.Sprintf("%s.%s holds a record of %q, which is not a tenant name; remove it by hand", OperatorSchema, retainedTable, tenant), err)
	}
	keepFrom := KeepFrom(now, retentionDays)
	return p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		// The schema the hold records, checked as a recorded name is before
		// it goes into a statement.
		var schema string
		var owner *string
		err := tx.QueryRow(ctx, `
			SELECT h.schema, (SELECT r.rolname::text FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
			        WHERE n.nspname = h.schema)
			FROM `+pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()+` h
			WHERE h.tenant = $1 AND h.purge_started_at IS NULL`, tenant).Scan(&schema, &owner)
		if errors.Is(err, pgx.ErrNoRows) || (err == nil && owner == nil) {
			return nil // adopted, being purged, or no schema left to expire
		}
		if err != nil {
			return err
		}
		if err := validateSchema(schema); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{*owner}.Sanitize()); err != nil {
			return err
		}
		var one int
		if err := tx.QueryRow(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` FOR UPDATE`).Scan(&one); err != nil {
			return err
		}
		version, err := schemaVersionOf(ctx, tx, schema)
		if err != nil {
			return err
		}
		days, err := dayPartitions(ctx, tx, schema)
		if err != nil {
			return err
		}
		if len(days) > 0 && days[0].Before(keepFrom) && version < retentionSchemaVersion() {
			return newError(ReasonIncompatibleSchema, op, fmt.Sprintf(
				"schema %s is at version %d, older than the %d retention needs: its expired raw events stay until its hold ends",
				schema, version, retentionSchemaVersion()), nil)
		}
		for _, day := range days {
			if !day.Before(keepFrom) {
				break
			}
			if _, _, err := expireDayOnce(ctx, tx, schema, day); err != nil {
				return fmt.Errorf("expiring %s: %w", day.Format(time.DateOnly), err)
			}
		}
		return nil
	})
}

// sweepOne claims the tenant's ended hold, purges the tenant, checks that
// nothing of it is left and removes the record. ok is false when the hold
// was gone (adopted) or had not ended after all.
func (p *Postgres) sweepOne(ctx context.Context, tenant string, now time.Time) (RetainedTenant, bool, error) {
	op := "sweep retained tenant " + tenant
	if err := ValidateTenantName(tenant); err != nil {
		return RetainedTenant{}, false, newError(ReasonStorageError, op,
			fmt.Sprintf("%s.%s holds a record of %q, which is not a tenant name; remove it by hand", OperatorSchema, retainedTable, tenant), err)
	}
	table := pgx.Identifier{OperatorSchema, retainedTable}.Sanitize()
	held := RetainedTenant{Tenant: tenant}
	claimed := false
	err := p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		err := tx.QueryRow(ctx, `
			UPDATE `+table+` SET purge_started_at = COALESCE(purge_started_at, $2)
			WHERE tenant = $1 AND expires_at <= $2
			RETURNING COALESCE(tenant_uid, ''), schema, deleted_at, expires_at`, tenant, now).Scan(&held.UID, &held.Schema, &held.DeletedAt, &held.ExpiresAt)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		claimed = err == nil
		return err
	})
	if err != nil || !claimed {
		return RetainedTenant{}, false, err
	}
	held.DeletedAt, held.ExpiresAt = held.DeletedAt.UTC(), held.ExpiresAt.UTC()

	if err := p.Purge(ctx, tenant); err != nil {
		return RetainedTenant{}, false, err
	}
	left, err := p.Verify(ctx, tenant)
	if err != nil {
		return RetainedTenant{}, false, err
	}
	if !left.Empty() {
		return RetainedTenant{}, false, newError(ReasonStorageError, op, "after purging, "+left.String(), nil)
	}
	err = p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM `+table+` WHERE tenant = $1`, tenant)
		return err
	})
	if err != nil {
		return RetainedTenant{}, false, err
	}
	return held, true, nil
}

// operatorSchemaReady makes sure the administrator can use OperatorSchema
// and that it has its current tables, the locks, the holds and the registry
// of roles, and says
// whether it exists. When it is complete and the administrator is a member
// of operatorRole it only reads the catalog. Otherwise it makes what is
// missing: operatorRole (NOLOGIN), the administrator's membership in it,
// and, when create is set or the schema exists already, OperatorSchema and
// its tables, owned by operatorRole and with nothing granted to PUBLIC.
//
// It takes no lock, as the locks are among what it makes: two operators
// making the schema at once conflict on the catalog's unique indexes, and
// the one that lost tries again and finds it made.
func (p *Postgres) operatorSchemaReady(ctx context.Context, op string, create bool) (bool, error) {
	var exists, complete, member bool
	err := p.pool.QueryRow(ctx, `
		WITH tables AS (
		  SELECT c.oid, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		  WHERE n.nspname = $1 AND c.relname = ANY($2))
		SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		       (SELECT count(*) FROM tables) = cardinality($2)
		         AND (SELECT count(*) FROM tables t JOIN pg_attribute a ON a.attrelid = t.oid
		              WHERE t.relname = $4 AND a.attname IN ('tenant_uid', 'retention_days') AND NOT a.attisdropped) = 2,
		       COALESCE((SELECT pg_has_role(current_user, r.oid, 'USAGE') FROM pg_roles r WHERE r.rolname = $3), false)`,
		OperatorSchema, []string{locksTable, retainedTable, rolesTable, namesTable}, operatorRole, retainedTable).Scan(&exists, &complete, &member)
	if err != nil {
		return false, wrap(op, err, p.cfg.Password)
	}
	if exists && complete && member {
		return true, nil
	}
	if !exists && !create {
		return false, nil
	}
	for attempt := 1; ; attempt++ {
		err = p.inTx(ctx, op, nil, func(tx pgx.Tx) error { return makeOperatorSchema(ctx, tx) })
		if attempt == 3 || !isCatalogRace(err) {
			break
		}
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// makeOperatorSchema makes whatever of operatorRole, the administrator's
// membership in it, OperatorSchema and its tables is missing.
func makeOperatorSchema(ctx context.Context, tx pgx.Tx) error {
	roleID, schemaID := pgx.Identifier{operatorRole}.Sanitize(), pgx.Identifier{OperatorSchema}.Sanitize()
	// Roles are the cluster's, shared by every region database on it: a
	// concurrent CREATE ROLE from another database is not an error.
	if _, err := tx.Exec(ctx, `
		DO $$ BEGIN
		  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '`+operatorRole+`') THEN
		    CREATE ROLE `+roleID+` NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS;
		  END IF;
		EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
		END $$`); err != nil {
		return err
	}
	var isMember bool
	if err := tx.QueryRow(ctx, `SELECT pg_has_role(current_user, $1, 'USAGE')`, operatorRole).Scan(&isMember); err != nil {
		return err
	}
	if !isMember {
		if _, err := tx.Exec(ctx, `GRANT `+roleID+` TO CURRENT_USER`); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+schemaID+` AUTHORIZATION `+roleID); err != nil {
		return err
	}
	// The registry of roles is backfilled only by the transaction that
	// makes it (rolesTableBackfill).
	var registryMissing bool
	if err := tx.QueryRow(ctx, `SELECT pg_catalog.to_regclass($1) IS NULL`,
		pgx.Identifier{OperatorSchema, rolesTable}.Sanitize()).Scan(&registryMissing); err != nil {
		return err
	}
	rolesStatements := []string{
		rolesTableDDL,
		`REVOKE ALL ON TABLE ` + pgx.Identifier{OperatorSchema, rolesTable}.Sanitize() + ` FROM PUBLIC`,
	}
	if registryMissing {
		rolesStatements = append(rolesStatements, rolesTableBackfill)
	}
	rolesStatements = append(rolesStatements,
		namesTableDDL,
		`REVOKE ALL ON TABLE `+pgx.Identifier{OperatorSchema, namesTable}.Sanitize()+` FROM PUBLIC`)
	// As the owner role, so that it owns the tables.
	for _, stmt := range []string{
		`SET LOCAL ROLE ` + roleID,
		`REVOKE ALL ON SCHEMA ` + schemaID + ` FROM PUBLIC`,
		locksTableDDL,
		locksTableRows,
		`REVOKE ALL ON TABLE ` + pgx.Identifier{OperatorSchema, locksTable}.Sanitize() + ` FROM PUBLIC`,
		retainedTableDDL,
		retainedTableUID,
		retainedTableRetention,
		`REVOKE ALL ON TABLE ` + pgx.Identifier{OperatorSchema, retainedTable}.Sanitize() + ` FROM PUBLIC`,
	} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	for _, stmt := range append(rolesStatements, `RESET ROLE`) {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			return err
		}
	}
	return nil
}

// isCatalogRace says whether err is what a transaction gets that made a
// schema, table or role another one made at the same time.
func isCatalogRace(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case "23505", "42P06", "42P07", "42710": // unique_violation, duplicate_schema, duplicate_table, duplicate_object
		return true
	}
	return false
}
