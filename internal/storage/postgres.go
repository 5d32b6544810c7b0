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
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Store keeps the tenants of one region's database. Implementations are
// safe for concurrent use.
type Store interface {
	// Ping checks that the administrator can log in and has what
	// provisioning needs (superuser, or CREATEROLE and CREATE on the
	// database).
	Ping(ctx context.Context) error
	// Provision makes, or repairs, the tenant's roles, schema and tables and
	// returns the credentials of both roles. It is idempotent.
	Provision(ctx context.Context, tenant string, opts ProvisionOptions) (Provisioned, error)
	// Purge deletes everything of the tenant: its sessions, schema, tables,
	// rows and roles. Purging a tenant that is gone is not an error.
	Purge(ctx context.Context, tenant string) error
	// Verify reports what of the tenant exists; after Purge it is empty.
	Verify(ctx context.Context, tenant string) (Leftovers, error)
	// CountTenants counts the tenant schemas in the region's database.
	CountTenants(ctx context.Context) (int, error)
	// OldestRawEventDay is the start (00:00 UTC) of the oldest UTC day, up
	// to today, whose events partition holds a row: what retention has left
	// of the tenant's raw events. It is nil when no raw event is stored or
	// the tenant has no schema. It reads partition sizes and probes at most
	// a few partitions for one row; it never scans the events.
	OldestRawEventDay(ctx context.Context, tenant string) (*time.Time, error)
	// Retain holds a deleted tenant's schema, data and roles for hold (at
	// most MaxRetainHold) from deletedAt, recorded in the region's database
	// with the deleted tenant's uid (its metadata.uid); both roles lose
	// LOGIN at once and their sessions are ended. A second Retain keeps the
	// first hold; a tenant with no schema records nothing.
	// retentionDays is the tenant's plan's window, which SweepRetained keeps
	// enforcing on the held raw events.
	Retain(ctx context.Context, tenant, uid string, deletedAt time.Time, hold time.Duration, retentionDays int) error
	// Adopt ends the hold under the tenant's name for a tenant of that name
	// created again that asks for it by the deleted tenant's uid, and
	// returns the hold; nil when nothing is held. Provision, run next, lets
	// its roles log in again. Data held for another uid, or when uid is "",
	// is never given: a *RetainedDataError, and the hold stays, as it does
	// when uid asks for data that is not held. A hold that has ended, or
	// whose purge has begun, is not given back: ReasonBusy until the sweep
	// has purged it.
	Adopt(ctx context.Context, tenant, uid string) (*RetainedTenant, error)
	// Hold is the hold recorded under the tenant's name, nil when there is
	// none.
	Hold(ctx context.Context, tenant string) (*RetainedTenant, error)
	// Retained lists the held tenants, the hold ending first first.
	Retained(ctx context.Context) ([]RetainedTenant, error)
	// SweepRetained purges every held tenant whose hold ended by now, and
	// returns those it purged; of the others it drops the raw events past
	// their plan's window, as their retention would.
	SweepRetained(ctx context.Context, now time.Time) ([]RetainedTenant, error)
	// Names are the tenant's names in the database, as Provision recorded
	// them (or its legacy names, for a tenant provisioned before names were
	// recorded); nil when the tenant has none. It writes nothing.
	Names(ctx context.Context, tenant string) (*TenantNames, error)
}

// DefaultConnectionLimit is the connection limit of each of a tenant's
// roles when ProvisionOptions.ConnectionLimit is 0: enough for a few ingest
// replicas' pools (ingest role) or the retention job (owner role), small
// enough that one tenant cannot take the server's max_connections.
const DefaultConnectionLimit = 20

// ProvisionOptions are the tenant-specific inputs of Provision.
type ProvisionOptions struct {
	// UID is the tenant's metadata.uid, recorded with its names. A tenant
	// of the same name with another uid takes the names over only when no
	// hold keeps them for the deleted tenant. "" records none (tools and
	// tests that have no tenant object).
	UID string
	// ExistingPassword is the owner role's password in the tenant's storage
	// Secret, "" if there is no Secret (first provisioning, or the Secret
	// was lost). It is kept when the role exists, unless RotatePassword is
	// set or it no longer matches the role's password: a superuser
	// administrator checks it against the stored verifier, any other logs
	// in with it.
	ExistingPassword string
	// ExistingIngestPassword is the ingest role's password in the tenant's
	// ingest Secret, "" if there is none. It is kept or replaced as
	// ExistingPassword is.
	ExistingIngestPassword string
	// RotatePassword asks for new passwords for both roles even if the
	// existing ones work.
	RotatePassword bool
	// ConnectionLimit is the connection limit of the tenant's owner role;
	// 0 means DefaultConnectionLimit.
	ConnectionLimit int
	// IngestConnectionLimit is the connection limit of the ingest role,
	// which each ingest pod holds one connection of: it follows the most
	// pods the tenant may run (IngestConnections). 0 means
	// DefaultConnectionLimit.
	IngestConnectionLimit int
}

// MaxIngestConnections caps the ingest role's connection limit, whatever
// the tenant's replicas or autoscaling allow (up to 100 pods, which
// IngestConnections would give 202 connections). Every tenant of a region
// shares the server's max_connections (100 by default, a few hundred to a
// few thousand on managed services); without a cap one tenant's ingest
// role could hold most of them and leave the others, retention and the
// operator none. 64 serves 31 pods with the full margin of
// IngestConnections, and up to 63 pods with one connection each, which a
// pod needs (it writes with COPY over one connection); a tenant that needs
// more pods than that needs a database of its own.
const MaxIngestConnections = 64

// IngestConnections is the ingest role's connection limit for a tenant
// that may run up to maxPods ingest pods: one connection per pod, one more
// pod during a rolling update, and as many again for connections a
// restarted pod opens before the server has noticed its old ones are gone.
// Never below DefaultConnectionLimit, never above MaxIngestConnections.
func IngestConnections(maxPods int) int {
	return min(MaxIngestConnections, max(DefaultConnectionLimit, 2*(maxPods+1)))
}

// roleSetting is a session default of a tenant's role (ALTER ROLE ... SET).
type roleSetting struct {
	name, value string
	// superuserOnly: only a superuser may set it (PGC_SUSET), and so only
	// a superuser can change it, in a session or as the role's default;
	// an administrator that may not set it leaves it unset.
	superuserOnly bool
}

// ownerRoleSettings are the session defaults of a tenant's owner role,
// which only the retention job logs in as. A run's statements roll up and
// drop one day at a time; statement_timeout stops one that is stuck long
// before the run's own 30-minute timeout, and the server then frees what
// it held. A run holds its retention lock in a transaction that waits idle
// for the whole run, and turns idle_in_transaction_session_timeout off in
// that transaction only (see lockRetention). temp_file_limit bounds what
// one query may spill to disk: the roll-up of a busy day sorts its events.
var ownerRoleSettings = []roleSetting{
	{name: "statement_timeout", value: "10min"},
	{name: "idle_in_transaction_session_timeout", value: "5min"},
	{name: "temp_file_limit", value: "2GB", superuserOnly: true},
}

// ingestRoleSettings are the session defaults of a tenant's ingest role.
// Its statements are COPYs of at most a second's events, so a minute is
// long; it never needs a temporary file of any size.
var ingestRoleSettings = []roleSetting{
	{name: "statement_timeout", value: "1min"},
	{name: "idle_in_transaction_session_timeout", value: "1min"},
	{name: "temp_file_limit", value: "64MB", superuserOnly: true},
}

// RoleSettings describes the session defaults Provision gives a tenant's
// roles, so that a controller can tell when they change (a new operator
// version) and provision again.
func RoleSettings() string {
	var b strings.Builder
	for _, set := range [][]roleSetting{ownerRoleSettings, ingestRoleSettings} {
		for _, rs := range set {
			fmt.Fprintf(&b, "%s=%s;", rs.name, rs.value)
		}
		b.WriteString("|")
	}
	return b.String()
}

// Provisioned are the credentials of a tenant's two roles, as Provision
// returns them. Both have the region's connection settings and name the
// tenant's schema (Schema); they differ in Username and Password.
type Provisioned struct {
	// Owner are the credentials of the schema's owner, the role named like
	// the schema (TenantNames.Schema): it may do anything in the schema,
	// and is for the retention job only.
	Owner Credentials
	// Ingest are the credentials of the ingest role (TenantNames.IngestRole):
	// it may only insert into EventsTable and nothing else, and is for
	// the ingest service.
	Ingest Credentials
}

// Leftovers is what of a tenant exists in the region's database.
type Leftovers struct {
	// Schema is true when the tenant's schema exists.
	Schema bool `json:"schema"`
	// Role is true when the tenant's owner role exists.
	Role bool `json:"role"`
	// IngestRole is true when the tenant's ingest role exists.
	IngestRole bool `json:"ingestRole"`
	// Relations counts tables, partitions, indexes and sequences in the
	// schema.
	Relations int `json:"relations"`
	// Rows counts the rows of the tenant's tables (events,
	// daily_aggregates, rollup_ledger) that exist.
	Rows int64 `json:"rows"`
	// Sessions counts server sessions logged in as either of the tenant's
	// roles, in any database.
	Sessions int `json:"sessions"`
	// Dependencies counts catalog entries of this database and of shared
	// objects that still name either of the tenant's roles (pg_shdepend:
	// objects they own, privileges granted to them).
	Dependencies int `json:"dependencies"`
}

// Empty is true when nothing of the tenant is left.
func (l Leftovers) Empty() bool { return l == Leftovers{} }

// String says what is left, for a message.
func (l Leftovers) String() string {
	if l.Empty() {
		return "nothing left"
	}
	var parts []string
	if l.Schema {
		parts = append(parts, "schema")
	}
	if l.Role {
		parts = append(parts, "role")
	}
	if l.IngestRole {
		parts = append(parts, "ingest role")
	}
	if l.Relations > 0 {
		parts = append(parts, fmt.Sprintf("%d relations", l.Relations))
	}
	if l.Rows > 0 {
		parts = append(parts, fmt.Sprintf("%d rows", l.Rows))
	}
	if l.Sessions > 0 {
		parts = append(parts, fmt.Sprintf("%d sessions", l.Sessions))
	}
	if l.Dependencies > 0 {
		parts = append(parts, fmt.Sprintf("%d dependencies", l.Dependencies))
	}
	return strings.Join(parts, ", ") + " left"
}

// Option changes how Open sets up a Postgres.
type Option func(*Postgres)

// WithClock sets the clock that decides which days' partitions Provision
// makes ahead of time, up to which day OldestRawEventDay looks, and whether
// a hold Adopt finds has ended. The default is the database's clock (now()),
// not the operator's: one clock for every operator replica and every
// tenant's retention job, whatever their machines' clocks say. Tests move
// it.
func WithClock(now func() time.Time) Option { return func(p *Postgres) { p.now = now } }

// clock is the store's time: WithClock's, else the database's now(), read
// on db (in a transaction, the transaction's start).
func (p *Postgres) clock(ctx context.Context, db DB) (time.Time, error) {
	if p.now != nil {
		return p.now(), nil
	}
	return DatabaseNow(ctx, db)
}

// DatabaseNow is the database's clock, now(): in a transaction, when it
// began. It is what decides which UTC day it is for retention and the
// partitions, so that no machine's wrong clock makes raw events outlive
// the plan's window, or drops them early.
func DatabaseNow(ctx context.Context, db DB) (time.Time, error) {
	var now time.Time
	err := db.QueryRow(ctx, `SELECT pg_catalog.now()`).Scan(&now)
	return now.UTC(), err
}

// WithMaxConns bounds the administrator's connections to the region; the
// default is 4.
func WithMaxConns(n int32) Option { return func(p *Postgres) { p.maxConns = n } }

// WithLockTimeout bounds how long Provision and Purge wait for a lock (the
// tenant's provisioning lock, its tables) before failing with ReasonBusy, so
// a stuck session cannot hang a reconcile. The default is 30 seconds.
func WithLockTimeout(d time.Duration) Option { return func(p *Postgres) { p.lockTimeout = d } }

// DefaultCallTimeout bounds each call of a Postgres (a Store method), so
// that a connection that stops answering (a black-holed network, a server
// that hangs) fails the call, and frees the reconcile worker making it,
// instead of holding it until the kernel gives up on the connection (about
// 15 minutes of TCP retransmissions). It is the store's, not each
// caller's, so that no call can forget it. It is long enough for the
// longest call's work: a purge or a migration of a schema with a year of
// partitions, after waiting up to the lock timeout (30 s) for the tenant's
// lock. Server-side, each transaction's statement_timeout is the same, so
// the server gives up too.
const DefaultCallTimeout = 2 * time.Minute

// errCallDeadline is the cause of a call's context ending at its deadline.
var errCallDeadline = errors.New("the storage call's deadline passed")

// WithCallTimeout sets the deadline of each call; the default is
// DefaultCallTimeout.
func WithCallTimeout(d time.Duration) Option { return func(p *Postgres) { p.callTimeout = d } }

// deadline bounds one call: it returns ctx with the call's deadline and a
// function for the call to defer with its error, which cancels ctx and
// turns a failure at the deadline into a ReasonConnectionFailed error that
// says so. A deadline of the caller's that comes first is left as it is.
func (p *Postgres) deadline(ctx context.Context, op string) (context.Context, func(*error)) {
	ctx, cancel := context.WithTimeoutCause(ctx, p.callTimeout, errCallDeadline)
	return ctx, func(err *error) {
		if *err != nil && errors.Is(context.Cause(ctx), errCallDeadline) {
			*err = newError(ReasonConnectionFailed, op, fmt.Sprintf(
				"the database did not answer within %s, the deadline of each storage call; it is tried again later", p.callTimeout), *err)
		}
		cancel()
	}
}

// AdminSearchPath is the search_path of the administrator's sessions.
const AdminSearchPath = "pg_catalog, pg_temp"

// AdminStatementCacheCapacity is how many prepared statements each of the
// administrator's connections keeps (pgx's default is 512). Most of its
// statements name a tenant's schema or partition, so they are statements
// of their own per tenant, seldom run again on the same connection before
// they would be evicted; a cache of 512 on each connection held about a
// kilobyte per tenant in the operator at 1,000 tenants, and as many
// prepared statements in each of the region's server processes. The
// statements shared by all tenants stay cached.
const AdminStatementCacheCapacity = 64

// Postgres is the Store of one region's PostgreSQL database.
type Postgres struct {
	pool *pgxpool.Pool
	// cfg fills the tenants' Credentials (host, port, database, sslmode,
	// CA) and its password is scrubbed from error messages.
	cfg AdminConfig
	// now is WithClock's clock; nil means the database's (see clock).
	now         func() time.Time
	maxConns    int32
	lockTimeout time.Duration
	callTimeout time.Duration
	// schemaVersion is the version Provision migrates schemas to; 0 means
	// SchemaVersion(). Only tests set it, to make schemas of older versions.
	schemaVersion int
	// legacyNames makes Provision give a new tenant legacy names, as an
	// operator from before opaque names did. Only tests set it.
	legacyNames bool
}

var _ Store = (*Postgres)(nil)

// Open prepares a connection pool to the region's database. It does not
// connect: a region that is down still gives a Postgres whose calls fail
// with ReasonConnectionFailed, and Ping says whether it is up. Errors are
// about the settings (ReasonInvalidConfig).
func Open(ctx context.Context, cfg AdminConfig, opts ...Option) (*Postgres, error) {
	p := &Postgres{cfg: cfg, maxConns: 4, lockTimeout: 30 * time.Second, callTimeout: DefaultCallTimeout}
	for _, o := range opts {
		o(p)
	}
	connCfg, err := cfg.endpoint().connConfig()
	if err != nil {
		return nil, err
	}
	poolCfg, err := pgxpool.ParseConfig("")
	if err != nil {
		return nil, wrap("open", err, cfg.Password)
	}
	connCfg.StatementCacheCapacity = AdminStatementCacheCapacity
	// The administrator's sessions look up unqualified names in pg_catalog
	// only: the default search_path ("$user", public) would let a function
	// in public (or in a schema named like the administrator) that matches
	// an argument's type better than the catalog's, say
	// has_database_privilege(name, text), run in its place, with the
	// administrator's rights. Tenant and operator objects are always named
	// with their schema.
	connCfg.RuntimeParams["search_path"] = AdminSearchPath
	poolCfg.ConnConfig = connCfg
	poolCfg.MaxConns = p.maxConns
	poolCfg.MinConns = 0
	poolCfg.MaxConnIdleTime = 5 * time.Minute
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, wrap("open", err, cfg.Password)
	}
	p.pool = pool
	return p, nil
}

// Close closes the pool's connections.
func (p *Postgres) Close() { p.pool.Close() }

// Ping implements Store.
func (p *Postgres) Ping(ctx context.Context) (err error) {
	ctx, done := p.deadline(ctx, "ping")
	defer done(&err)
	var super, createRole, createOnDB bool
	err = p.pool.QueryRow(ctx, `
		SELECT r.rolsuper, r.rolcreaterole, has_database_privilege(current_database(), 'CREATE')
		FROM pg_roles r WHERE r.rolname = current_user`).Scan(&super, &createRole, &createOnDB)
	if err != nil {
		return wrap("ping", err, p.cfg.Password)
	}
	if !super && !createRole {
		return newError(ReasonPermissionDenied, "ping",
			fmt.Sprintf("administrator %q is neither superuser nor CREATEROLE", p.cfg.Username), nil)
	}
	if !super && !createOnDB {
		return newError(ReasonPermissionDenied, "ping",
			fmt.Sprintf("administrator %q may not CREATE in database %q", p.cfg.Username, p.cfg.Database), nil)
	}
	return nil
}

// CountTenants implements Store.
func (p *Postgres) CountTenants(ctx context.Context) (_ int, err error) {
	ctx, done := p.deadline(ctx, "count tenants")
	defer done(&err)
	var n int
	err = p.pool.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname ~ $1`, tenantSchemaPattern).Scan(&n)
	if err != nil {
		return 0, wrap("count tenants", err, p.cfg.Password)
	}
	return n, nil
}

// inTx runs fn in a transaction with the lock and statement timeouts set
// (the statement timeout is the call's, see DefaultCallTimeout),
// and turns its error into an *Error.
func (p *Postgres) inTx(ctx context.Context, op string, secrets []string, fn func(pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, p.lockTimeout.Milliseconds())); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL statement_timeout = %d`, p.callTimeout.Milliseconds())); err != nil {
			return err
		}
		return fn(tx)
	})
	return wrap(op, err, append(secrets, p.cfg.Password)...)
}

// roleState is a role's row of pg_roles, as far as Provision cares.
type roleState struct {
	exists                                            bool
	super, inherit, createRole, createDB, login, repl bool
	bypassRLS                                         bool
	connLimit                                         int
	adminMember                                       bool // current_user has the role's privileges (USAGE)
	storedPassword                                    *string
	canReadPasswords                                  bool
}

func readRole(ctx context.Context, tx pgx.Tx, role string) (roleState, error) {
	var st roleState
	err := tx.QueryRow(ctx, `
		SELECT rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication,
		       rolbypassrls, rolconnlimit, pg_has_role(current_user, oid, 'USAGE')
		FROM pg_roles WHERE rolname = $1`, role).Scan(
		&st.super, &st.inherit, &st.createRole, &st.createDB, &st.login, &st.repl,
		&st.bypassRLS, &st.connLimit, &st.adminMember)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, nil
	}
	if err != nil {
		return st, err
	}
	st.exists = true
	// Only a superuser can read stored passwords; others trust the Secret.
	if err := tx.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&st.canReadPasswords); err != nil {
		return st, err
	}
	if st.canReadPasswords {
		if err := tx.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, role).Scan(&st.storedPassword); err != nil {
			return st, err
		}
	}
	return st, nil
}

// Provision implements Store. Everything happens in one transaction under
// the tenant's lock (a row in OperatorSchema, which Provision makes first if
// the region's database has none yet), so two operators (or two reconciles)
// provisioning the same tenant take turns, and different tenants proceed in
// parallel. A second call with the passwords it returned changes nothing.
//
// What it makes:
//   - the tenant's names, recorded in namesTable (provisionNames): opaque
//     ones for a new tenant (see OpaqueSchemaPrefix), those recorded before
//     for one provisioned already;
//   - an owner role named like the schema, and an ingest role: LOGIN, no
//     other attribute, a small connection limit (the ingest role's at most
//     MaxIngestConnections), session defaults (ensureRoleSettings), each a
//     password of 32 random bytes sent to the server as a SCRAM verifier;
//   - the schema, owned by the owner role, with nothing granted to
//     PUBLIC;
//   - the tables of SchemaVersion, and events partitions for today and the
//     next FuturePartitionDays UTC days, made as the owner so it owns them;
//   - for the ingest role, granted by the owner: USAGE on the schema and
//     INSERT on events, and nothing else. Any
//     other privilege it has in the schema (say, SELECT on events granted by
//     hand) is revoked, so it can never read events back or add a column;
//   - CONNECT on the database granted to both roles, and CONNECT, CREATE and
//     TEMPORARY revoked from PUBLIC, so tenant roles can do nothing in the
//     database outside their own schema; EXECUTE on the advisory lock and
//     large object functions revoked from PUBLIC too (see hardenDatabase).
//
// When the administrator is not a superuser it grants itself membership in
// the owner role, which PostgreSQL requires to create a schema owned by it.
// It needs no membership in the ingest role, which owns nothing.
func (p *Postgres) Provision(ctx context.Context, tenant string, opts ProvisionOptions) (_ Provisioned, err error) {
	ctx, done := p.deadline(ctx, "provision "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return Provisioned{}, err
	}
	var owner, ingest string
	limit := opts.ConnectionLimit
	if limit <= 0 {
		limit = DefaultConnectionLimit
	}
	ingestLimit := opts.IngestConnectionLimit
	if ingestLimit <= 0 {
		ingestLimit = DefaultConnectionLimit
	}
	ingestLimit = min(ingestLimit, MaxIngestConnections)
	target := p.schemaVersion
	if target <= 0 {
		target = SchemaVersion()
	}
	var ownerPassword, ingestPassword string
	secrets := []string{opts.ExistingPassword, opts.ExistingIngestPassword}
	if _, err := p.operatorSchemaReady(ctx, "provision "+tenant, true); err != nil {
		return Provisioned{}, err
	}
	err = p.inTx(ctx, "provision "+tenant, secrets, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		names, err := p.provisionNames(ctx, tx, tenant, opts.UID)
		if err != nil {
			return err
		}
		owner, ingest = names.Schema, names.IngestRole
		ownerID := pgx.Identifier{owner}.Sanitize()
		var st roleState
		st, ownerPassword, err = p.ensureLoginRole(ctx, tx, "provision "+tenant, owner, owner, opts.ExistingPassword, opts.RotatePassword, limit)
		if err != nil {
			return err
		}
		if !st.adminMember {
			var member bool
			if err := tx.QueryRow(ctx, `SELECT pg_has_role(current_user, $1, 'USAGE')`, owner).Scan(&member); err != nil {
				return err
			}
			if !member {
				if _, err := tx.Exec(ctx, `GRANT `+ownerID+` TO CURRENT_USER`); err != nil {
					return err
				}
			}
		}
		if _, ingestPassword, err = p.ensureLoginRole(ctx, tx, "provision "+tenant, owner, ingest, opts.ExistingIngestPassword, opts.RotatePassword, ingestLimit); err != nil {
			return err
		}
		for _, role := range []string{owner, ingest} {
			if err := revokeForeignMemberships(ctx, tx, role); err != nil {
				return err
			}
		}
		if err := ensureRoleSettings(ctx, tx, owner, ownerRoleSettings); err != nil {
			return err
		}
		if err := ensureRoleSettings(ctx, tx, ingest, ingestRoleSettings); err != nil {
			return err
		}

		// The schema, owned by the owner role, private.
		var schemaOwner *string
		var publicHasRights bool
		err = tx.QueryRow(ctx, `
			SELECT n.nspowner::regrole::text,
			       EXISTS (SELECT 1 FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a WHERE a.grantee = 0)
			FROM pg_namespace n WHERE n.nspname = $1`, owner).Scan(&schemaOwner, &publicHasRights)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			if _, err := tx.Exec(ctx, `CREATE SCHEMA `+ownerID+` AUTHORIZATION `+ownerID); err != nil {
				return err
			}
		case err != nil:
			return err
		default:
			if *schemaOwner != ownerID && *schemaOwner != owner {
				if _, err := tx.Exec(ctx, `ALTER SCHEMA `+ownerID+` OWNER TO `+ownerID); err != nil {
					return err
				}
			}
			if publicHasRights {
				if _, err := tx.Exec(ctx, `REVOKE ALL ON SCHEMA `+ownerID+` FROM PUBLIC`); err != nil {
					return err
				}
			}
		}

		// Tables and partitions, made as the owner so it owns them, and the
		// ingest role's grants, made by the owner so the owner can take
		// them back.
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+ownerID); err != nil {
			return err
		}
		if err := migrate(ctx, tx, owner, target); err != nil {
			return err
		}
		if target == SchemaVersion() {
			if err := restoreTables(ctx, tx, owner); err != nil {
				return err
			}
		}
		now, err := p.clock(ctx, tx)
		if err != nil {
			return err
		}
		today := utcDay(now)
		if _, err := EnsureDayPartitions(ctx, tx, owner, today, today.AddDate(0, 0, FuturePartitionDays)); err != nil {
			return err
		}
		if err := grantIngest(ctx, tx, owner, ingest); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `RESET ROLE`); err != nil {
			return err
		}

		return hardenDatabase(ctx, tx, owner, ingest)
	})
	if err != nil {
		return Provisioned{}, err
	}
	creds := func(user, password string) Credentials {
		return Credentials{
			Host:     p.cfg.Host,
			Port:     p.cfg.Port,
			Database: p.cfg.Database,
			SSLMode:  p.cfg.SSLMode,
			Schema:   owner,
			Username: user,
			Password: password,
			CACert:   p.cfg.CACert,
		}
	}
	return Provisioned{Owner: creds(owner, ownerPassword), Ingest: creds(ingest, ingestPassword)}, nil
}

// ensureLoginRole makes role, or puts back what drifted of it, as a login
// role with no other attribute and a connection limit of limit. It returns
// the role as it was and its password: existing when the role exists, it
// still works and rotate is not set, else a new one, sent to the server as
// a SCRAM verifier only.
func (p *Postgres) ensureLoginRole(ctx context.Context, tx pgx.Tx, op, schema, role, existing string, rotate bool, limit int) (roleState, string, error) {
	roleID := pgx.Identifier{role}.Sanitize()
	st, err := readRole(ctx, tx, role)
	if err != nil {
		return st, "", err
	}
	// A role of this name that the operator did not make is not taken
	// over, before anything of it is changed.
	if st.exists {
		ours, err := registered(ctx, tx, role)
		if err != nil {
			return st, "", err
		}
		if !ours {
			return st, "", roleConflict(op, role, schema)
		}
	}

	// The password: kept when the Secret's still works, new otherwise.
	keep := st.exists && existing != "" && !rotate
	switch {
	case keep && st.canReadPasswords:
		keep = st.storedPassword != nil && passwordMatches(*st.storedPassword, role, existing)
	case keep:
		keep = p.passwordWorks(ctx, role, existing)
	}
	password, passwordClause := existing, ""
	if !keep {
		if password, err = generatePassword(); err != nil {
			return st, "", err
		}
		verifier, err := SCRAMVerifier(password)
		if err != nil {
			return st, "", err
		}
		passwordClause = " PASSWORD " + QuoteLiteral(verifier)
	}

	attrs := fmt.Sprintf(" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT NOREPLICATION NOBYPASSRLS CONNECTION LIMIT %d", limit)
	if !st.exists {
		if _, err := tx.Exec(ctx, `CREATE ROLE `+roleID+attrs+passwordClause); err != nil {
			return st, "", err
		}
		return st, password, register(ctx, tx, role, schema)
	}
	// Only what drifted: ALTER ROLE with SUPERUSER, REPLICATION or
	// BYPASSRLS in it needs a superuser, even to say NO.
	var fix []string
	if st.super {
		fix = append(fix, "NOSUPERUSER")
	}
	if st.repl {
		fix = append(fix, "NOREPLICATION")
	}
	if st.bypassRLS {
		fix = append(fix, "NOBYPASSRLS")
	}
	if st.createDB {
		fix = append(fix, "NOCREATEDB")
	}
	if st.createRole {
		fix = append(fix, "NOCREATEROLE")
	}
	if st.inherit {
		fix = append(fix, "NOINHERIT")
	}
	if !st.login {
		fix = append(fix, "LOGIN")
	}
	if st.connLimit != limit {
		fix = append(fix, fmt.Sprintf("CONNECTION LIMIT %d", limit))
	}
	if len(fix) > 0 || passwordClause != "" {
		if _, err := tx.Exec(ctx, `ALTER ROLE `+roleID+" "+strings.Join(fix, " ")+passwordClause); err != nil {
			return st, "", err
		}
	}
	return st, password, nil
}

// ensureRoleSettings makes want the role's session defaults in every
// database (ALTER ROLE ... SET), and removes a default of the same names
// set for the role in this database only, which would take precedence.
// Only what differs is written. A superuserOnly setting the administrator
// may not set (it is not a superuser) is left as it is, as PostgreSQL
// would refuse it.
//
// These are defaults: statement_timeout and
// idle_in_transaction_session_timeout bound what the tenant's own
// workloads leave running or open, and a session of the role may still
// change them for itself (the next provisioning puts back a default the
// role changed). temp_file_limit only a superuser can change.
func ensureRoleSettings(ctx context.Context, tx pgx.Tx, role string, want []roleSetting) error {
	var everywhere, here []string
	var db string
	var canSetSuperuserOnly bool
	err := tx.QueryRow(ctx, `
		SELECT pg_catalog.current_database(),
		       COALESCE((SELECT d.setconfig FROM pg_catalog.pg_db_role_setting d JOIN pg_catalog.pg_roles r ON r.oid = d.setrole
		                 WHERE r.rolname = $1 AND d.setdatabase = 0), '{}'),
		       COALESCE((SELECT d.setconfig FROM pg_catalog.pg_db_role_setting d JOIN pg_catalog.pg_roles r ON r.oid = d.setrole
		                 JOIN pg_catalog.pg_database b ON b.oid = d.setdatabase
		                 WHERE r.rolname = $1 AND b.datname = pg_catalog.current_database()), '{}'),
		       (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)`, role).Scan(&db, &everywhere, &here, &canSetSuperuserOnly)
	if err != nil {
		return err
	}
	roleID, dbID := pgx.Identifier{role}.Sanitize(), pgx.Identifier{db}.Sanitize()
	for _, rs := range want {
		if rs.superuserOnly && !canSetSuperuserOnly {
			continue
		}
		for _, kv := range here {
			if strings.HasPrefix(kv, rs.name+"=") {
				if _, err := tx.Exec(ctx, `ALTER ROLE `+roleID+` IN DATABASE `+dbID+` RESET `+rs.name); err != nil {
					return err
				}
			}
		}
		if !slices.Contains(everywhere, rs.name+"="+rs.value) {
			if _, err := tx.Exec(ctx, `ALTER ROLE `+roleID+` SET `+rs.name+` = `+QuoteLiteral(rs.value)); err != nil {
				return err
			}
		}
	}
	return nil
}

// ingestTableGrants are the ingest role's privileges on the tables of its
// tenant's schema, each list sorted. On every other relation it has none.
// It never has SELECT on events: a leaked ingest password can add events
// but read none back.
var ingestTableGrants = map[string][]string{
	EventsTable: {"INSERT"},
}

// ingestSchemaGrants are the ingest role's privileges on its tenant's
// schema: it may name the tables, not create any.
var ingestSchemaGrants = []string{"USAGE"}

// grantIngest makes the ingest role's privileges in schema exactly
// ingestSchemaGrants and ingestTableGrants. It runs as the schema's owner,
// so the grants are the owner's. A privilege only missing is granted; any
// other difference (an extra privilege, a grant option, a column privilege)
// is repaired with REVOKE ALL and a fresh GRANT. Nothing is written when the
// privileges are as they should be. Tables of ingestTableGrants that do not
// exist (a schema at an older version) are skipped.
func grantIngest(ctx context.Context, tx pgx.Tx, schema, ingest string) error {
	s, roleID := pgx.Identifier{schema}.Sanitize(), pgx.Identifier{ingest}.Sanitize()
	// Privileges as "INSERT" or, with the grant option, "INSERT*".
	var schemaHas []string
	err := tx.QueryRow(ctx, `
		SELECT COALESCE(array_agg(a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
		                          ORDER BY a.privilege_type), '{}')
		FROM pg_namespace n, aclexplode(n.nspacl) a, pg_roles r
		WHERE n.nspname = $1 AND r.rolname = $2 AND a.grantee = r.oid`, schema, ingest).Scan(&schemaHas)
	if err != nil {
		return err
	}
	if err := fixGrants(ctx, tx, "SCHEMA "+s, roleID, schemaHas, ingestSchemaGrants, false); err != nil {
		return err
	}

	tables := make([]string, 0, len(ingestTableGrants))
	for t := range ingestTableGrants {
		tables = append(tables, t)
	}
	// The relations to look at are the tables the role should have
	// privileges on, found by name, and every relation it has any privilege
	// on, found in pg_shdepend (an ACL naming a role, of the relation or of
	// one of its columns, is recorded there against the role). Both are
	// index lookups: a scan of the schema's relations in pg_class, which has
	// no index by schema, reads the whole catalog, and with a year of daily
	// partitions for each of 1,000 tenants took 5.7 s of each provisioning.
	rows, err := tx.Query(ctx, `
		WITH n AS (SELECT oid FROM pg_namespace WHERE nspname = $1),
		     r AS (SELECT oid FROM pg_roles WHERE rolname = $2),
		     rel AS (
		       SELECT c.oid FROM pg_class c, n WHERE c.relname = ANY($3) AND c.relnamespace = n.oid
		       UNION
		       SELECT d.objid FROM pg_shdepend d, r
		       WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid AND d.deptype = 'a'
		         AND d.classid = 'pg_class'::regclass
		         AND d.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()))
		SELECT c.relname,
		       COALESCE((SELECT array_agg(a.privilege_type || CASE WHEN a.is_grantable THEN '*' ELSE '' END
		                                  ORDER BY a.privilege_type)
		                 FROM aclexplode(c.relacl) a WHERE a.grantee = r.oid), '{}'),
		       EXISTS (SELECT 1 FROM pg_attribute att, aclexplode(att.attacl) a
		               WHERE att.attrelid = c.oid AND att.attacl IS NOT NULL AND a.grantee = r.oid)
		FROM rel JOIN pg_class c ON c.oid = rel.oid, n, r
		WHERE c.relnamespace = n.oid
		ORDER BY c.relname`, schema, ingest, tables)
	if err != nil {
		return err
	}
	type relGrants struct {
		name    string
		has     []string
		columns bool
	}
	rels, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (relGrants, error) {
		var g relGrants
		err := row.Scan(&g.name, &g.has, &g.columns)
		return g, err
	})
	if err != nil {
		return err
	}
	for _, rel := range rels {
		target := "TABLE " + pgx.Identifier{schema, rel.name}.Sanitize()
		if err := fixGrants(ctx, tx, target, roleID, rel.has, ingestTableGrants[rel.name], rel.columns); err != nil {
			return err
		}
	}
	return nil
}

// fixGrants makes role's privileges on target (as in GRANT ... ON target)
// want, given that it has has (sorted, "*" marking a grant option) and
// column privileges when columns is true.
func fixGrants(ctx context.Context, tx pgx.Tx, target, role string, has, want []string, columns bool) error {
	if slices.Equal(has, want) && !columns {
		return nil
	}
	var missing []string
	onlyMissing := !columns
	for _, priv := range has {
		if !slices.Contains(want, priv) {
			onlyMissing = false
		}
	}
	for _, priv := range want {
		if !slices.Contains(has, priv) {
			missing = append(missing, priv)
		}
	}
	if !onlyMissing {
		// REVOKE ALL on a table takes its column privileges too; CASCADE
		// takes whatever the role granted on with a grant option.
		if _, err := tx.Exec(ctx, `REVOKE ALL ON `+target+` FROM `+role+` CASCADE`); err != nil {
			return err
		}
		missing = want
	}
	if len(missing) == 0 {
		return nil
	}
	_, err := tx.Exec(ctx, `GRANT `+strings.Join(missing, ", ")+` ON `+target+` TO `+role)
	return err
}

// passwordWorks tells whether role can log in with password, for an
// administrator who cannot read stored passwords. Only a refused password
// (or login) says no: any other failure, such as the server being busy,
// leaves the Secret's password trusted rather than rotating it needlessly.
func (p *Postgres) passwordWorks(ctx context.Context, role, password string) bool {
	creds := Credentials{Host: p.cfg.Host, Port: p.cfg.Port, Database: p.cfg.Database, SSLMode: p.cfg.SSLMode,
		Username: role, Password: password, CACert: p.cfg.CACert}
	conn, err := ConnectTenant(ctx, creds)
	if err != nil {
		return ReasonFor(err) != ReasonAuthenticationFailed
	}
	_ = conn.Close(ctx)
	return true
}

// hardenDatabase grants roles CONNECT on the current database and takes
// CONNECT, CREATE and TEMPORARY away from PUBLIC there, and CREATE on schema
// public (PostgreSQL before 15 granted it), so a tenant role can log in to
// its region's database only and create nothing outside its own schema.
// Statements run only when something is missing, so a repeated Provision
// writes nothing.
//
// It also takes EXECUTE on every advisory lock function (pg_advisory_* and
// pg_try_advisory_*, session and transaction, exclusive and shared, and the
// unlocks) away from PUBLIC in this database. PostgreSQL grants them to
// every role, and advisory lock keys are shared by the whole database, so
// any tenant's role could otherwise hold a key that someone else's work
// depends on. The operator itself takes no advisory lock (see lockTenant).
// The same for every large object function (lo_create, lo_from_bytea,
// lo_put, lo_import, loread, ...): large objects live outside any schema,
// in the database-wide pg_largeobject, so a tenant's role could fill the
// region's disk with them where no schema of its own shows it.
// Only the functions' owner, the bootstrap superuser, can revoke them: with
// an administrator that is not a superuser (a managed service's) they stay
// executable, which PostgreSQL allows silently, and are not looked at
// again; the operator's locks do not depend on it.
//
// ACL changes on the database rewrite its one pg_database row, and two
// transactions doing that at once fail with "tuple concurrently updated":
// the region's lock makes them take turns. Only they take it: the ACLs are
// read first without it, and only when one must change is the lock taken
// (after the tenant's lock, held until commit) and the ACLs read again
// under it. A converged tenant's provisioning, the common case, so never
// waits on another tenant's.
func hardenDatabase(ctx context.Context, tx pgx.Tx, roles ...string) error {
	acl, err := readDatabaseACL(ctx, tx, roles)
	if err != nil || !acl.needsChange(roles) {
		return err
	}
	if err := lockRegion(ctx, tx); err != nil {
		return err
	}
	if acl, err = readDatabaseACL(ctx, tx, roles); err != nil {
		return err
	}
	dbID := pgx.Identifier{acl.db}.Sanitize()
	// If the administrator neither owns the database nor is a superuser,
	// PostgreSQL answers these with a warning, not an error: tenants then
	// keep PUBLIC's CONNECT, and isolation still holds inside the database.
	if acl.publicHasDB {
		if _, err := tx.Exec(ctx, `REVOKE ALL ON DATABASE `+dbID+` FROM PUBLIC`); err != nil {
			return err
		}
	}
	if acl.publicCreatesInPublic {
		if _, err := tx.Exec(ctx, `REVOKE CREATE ON SCHEMA public FROM PUBLIC`); err != nil {
			return err
		}
	}
	if len(acl.publicFunctions) > 0 {
		if _, err := tx.Exec(ctx, `REVOKE EXECUTE ON FUNCTION `+strings.Join(acl.publicFunctions, ", ")+` FROM PUBLIC`); err != nil {
			return err
		}
	}
	if missing := acl.missingConnect(roles); len(missing) > 0 {
		ids := make([]string, len(missing))
		for i, role := range missing {
			ids[i] = pgx.Identifier{role}.Sanitize()
		}
		if _, err := tx.Exec(ctx, `GRANT CONNECT ON DATABASE `+dbID+` TO `+strings.Join(ids, ", ")); err != nil {
			return err
		}
	}
	return nil
}

// databaseACL is what hardenDatabase reads of the database's privileges.
type databaseACL struct {
	db                    string
	publicHasDB           bool
	publicCreatesInPublic bool
	// publicFunctions are the advisory lock and large object functions
	// PUBLIC may execute and the administrator may take back (it is their
	// owner's member: a superuser), as pg_catalog.name(argument types).
	publicFunctions []string
	// withConnect are those of the roles asked about that may connect.
	withConnect []string
}

func readDatabaseACL(ctx context.Context, tx pgx.Tx, roles []string) (databaseACL, error) {
	var a databaseACL
	err := tx.QueryRow(ctx, `
		SELECT d.datname,
		       EXISTS (SELECT 1 FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a WHERE a.grantee = 0),
		       COALESCE((SELECT array_agg(r.rolname::text) FROM aclexplode(COALESCE(d.datacl, acldefault('d', d.datdba))) a
		                 JOIN pg_roles r ON r.oid = a.grantee
		                 WHERE r.rolname = ANY($1) AND a.privilege_type = 'CONNECT'), '{}'),
		       COALESCE((SELECT EXISTS (SELECT 1 FROM aclexplode(COALESCE(n.nspacl, acldefault('n', n.nspowner))) a
		                                WHERE a.grantee = 0 AND a.privilege_type = 'CREATE')
		                 FROM pg_namespace n WHERE n.nspname = 'public'), false),
		       COALESCE((SELECT array_agg('pg_catalog.' || quote_ident(p.proname) || '(' || pg_get_function_identity_arguments(p.oid) || ')'
		                                  ORDER BY p.proname, p.oid)
		                 FROM pg_proc p
		                 WHERE p.pronamespace = 'pg_catalog'::regnamespace
		                   AND (p.proname LIKE 'pg\_advisory\_%' OR p.proname LIKE 'pg\_try\_advisory\_%'
		                        OR p.proname LIKE 'lo\_%' OR p.proname IN ('loread', 'lowrite'))
		                   AND pg_has_role(current_user, p.proowner, 'USAGE')
		                   AND EXISTS (SELECT 1 FROM aclexplode(COALESCE(p.proacl, acldefault('f', p.proowner))) a
		                               WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')), '{}')
		FROM pg_database d WHERE d.datname = current_database()`, roles).Scan(
		&a.db, &a.publicHasDB, &a.withConnect, &a.publicCreatesInPublic, &a.publicFunctions)
	return a, err
}

// missingConnect are the roles that may not connect yet.
func (a databaseACL) missingConnect(roles []string) []string {
	var missing []string
	for _, role := range roles {
		if !slices.Contains(a.withConnect, role) {
			missing = append(missing, role)
		}
	}
	return missing
}

// needsChange says whether hardenDatabase has anything to change.
func (a databaseACL) needsChange(roles []string) bool {
	return a.publicHasDB || a.publicCreatesInPublic || len(a.publicFunctions) > 0 || len(a.missingConnect(roles)) > 0
}

// Purge implements Store. It first forbids both roles to log in and ends
// their sessions (so nothing holds the tables or reconnects meanwhile), then
// drops the schema with everything in it, whatever the roles own or were
// granted in this database, and the roles.
//
// If a role owns objects in another database of the cluster, DROP ROLE
// fails and the error's message names that database.
func (p *Postgres) Purge(ctx context.Context, tenant string) (err error) {
	ctx, done := p.deadline(ctx, "purge "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return err
	}
	op := "purge " + tenant

	if _, err := p.operatorSchemaReady(ctx, op, true); err != nil {
		return err
	}
	var existing []string
	err = p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		names, ok, err := tenantNames(ctx, tx, tenant)
		if err != nil || !ok {
			return err
		}
		// Only the roles the operator made: one of the tenant's name made
		// by someone else is not the tenant's to lock out or drop. The
		// ingest role first: it holds privileges the owner granted.
		ours, err := registeredOf(ctx, tx, []string{names.IngestRole, names.Schema})
		if err != nil {
			return err
		}
		existing, err = lockOut(ctx, tx, ours)
		return err
	})
	if err != nil {
		return err
	}
	if err := p.endSessions(ctx, op, existing); err != nil {
		return err
	}
	return p.inTx(ctx, op, nil, func(tx pgx.Tx) error {
		if err := lockTenant(ctx, tx, tenant); err != nil {
			return err
		}
		names, ok, err := tenantNames(ctx, tx, tenant)
		if err != nil || !ok {
			return err
		}
		if _, err := tx.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{names.Schema}.Sanitize()+` CASCADE`); err != nil {
			return err
		}
		roles := []string{names.IngestRole, names.Schema}
		ours, err := registeredOf(ctx, tx, roles)
		if err != nil {
			return err
		}
		lockedRegion := false
		for _, role := range ours {
			var exists bool
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
				return err
			}
			if !exists {
				continue
			}
			// DROP OWNED revokes the role's CONNECT on the database: a
			// pg_database row change, serialized like hardenDatabase's.
			if !lockedRegion {
				if err := lockRegion(ctx, tx); err != nil {
					return err
				}
				lockedRegion = true
			}
			roleID := pgx.Identifier{role}.Sanitize()
			if _, err := tx.Exec(ctx, `DROP OWNED BY `+roleID+` CASCADE`); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `DROP ROLE `+roleID); err != nil {
				return err
			}
		}
		if err := unregister(ctx, tx, roles); err != nil {
			return err
		}
		return forgetNames(ctx, tx, tenant)
	})
}

// Verify implements Store. It reads the catalog as the administrator and
// counts the rows of the tenant's tables as the tenant's owner (see
// asSchemaOwner).
func (p *Postgres) Verify(ctx context.Context, tenant string) (_ Leftovers, err error) {
	ctx, done := p.deadline(ctx, "verify "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return Leftovers{}, err
	}
	// The tenant's names are those recorded (namesOf); nothing recorded
	// means nothing is left. Its roles are those the operator made
	// (rolesTable): a role of the same name made by someone else is not the
	// tenant's, and Purge leaves it. Where the registry was never made,
	// every role of the tenant's legacy names counts.
	ready, err := p.operatorSchemaReady(ctx, "verify "+tenant, false)
	if err != nil {
		return Leftovers{}, err
	}
	names, ok := legacyNames(tenant), true
	if ready {
		if names, ok, err = tenantNames(ctx, p.pool, tenant); err != nil {
			return Leftovers{}, wrap("verify "+tenant, err, p.cfg.Password)
		}
	}
	if !ok {
		return Leftovers{}, nil
	}
	schema, ingest := names.Schema, names.IngestRole
	roles := []string{schema, ingest}
	if ready {
		if roles, err = registeredOf(ctx, p.pool, roles); err != nil {
			return Leftovers{}, wrap("verify "+tenant, err, p.cfg.Password)
		}
	}
	var l Leftovers
	err = p.pool.QueryRow(ctx, `
		SELECT
		  EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1),
		  EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1 AND rolname = ANY($3)),
		  EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $2 AND rolname = ANY($3)),
		  (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1),
		  (SELECT count(*) FROM pg_stat_activity WHERE usename = ANY($3)),
		  (SELECT count(*) FROM pg_shdepend d JOIN pg_roles r ON r.oid = d.refobjid
		   WHERE d.refclassid = 'pg_authid'::regclass AND r.rolname = ANY($3)
		     AND d.dbid IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())))`,
		schema, ingest, roles).Scan(&l.Schema, &l.Role, &l.IngestRole, &l.Relations, &l.Sessions, &l.Dependencies)
	if err != nil {
		return Leftovers{}, wrap("verify "+tenant, err, p.cfg.Password)
	}
	if l.Schema {
		// The rows are counted as the schema's owner: the tables are the
		// tenant's, and whatever the owner planted in them (a view in a
		// table's place, a rule, a forced row-level security policy calling
		// its own function) then runs with the owner's rights, never the
		// administrator's. Only tables are counted: a view or anything else
		// under a table's name holds no rows of its own. A policy the owner
		// forced on its own table hides rows from this count, as it does
		// from the owner; the count is for a person's message, and after a
		// purge, when it matters, there is no schema left to count.
		err := p.asSchemaOwner(ctx, schema, false, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `
				SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
				WHERE n.nspname = $1 AND c.relname = ANY($2) AND c.relkind IN ('r', 'p')
				ORDER BY c.relname`, schema, schemaTables)
			if err != nil {
				return err
			}
			tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return err
			}
			for _, table := range tables {
				var n int64
				if err := tx.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, table}.Sanitize()).Scan(&n); err != nil {
					return err
				}
				l.Rows += n
			}
			return nil
		})
		if err != nil {
			return Leftovers{}, wrap("verify "+tenant, err, p.cfg.Password)
		}
	}
	return l, nil
}

// asSchemaOwner runs fn in a transaction of the administrator's in which
// the current role is the owner of schema (SET LOCAL ROLE), for statements
// that read the tenant's own objects. Whatever the tenant's owner role made
// there (a view or rule in a table's place, a trigger, a row-level security
// policy and the functions they call) runs as that owner, with the owner's
// rights, not with the administrator's: the administrator is a superuser, or
// may create roles and grant memberships. With noRowSecurity, row_security
// is off: a statement that a row-level security policy would filter fails
// instead of reading fewer rows, so a policy cannot hide rows from what the
// operator measures. A schema that does not exist is not an error: fn is
// not run.
func (p *Postgres) asSchemaOwner(ctx context.Context, schema string, noRowSecurity bool, fn func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, p.pool, func(tx pgx.Tx) error {
		var owner string
		err := tx.QueryRow(ctx, `SELECT r.rolname FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
			WHERE n.nspname = $1`, schema).Scan(&owner)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{owner}.Sanitize()); err != nil {
			return err
		}
		if noRowSecurity {
			if _, err := tx.Exec(ctx, `SET LOCAL row_security = off`); err != nil {
				return err
			}
		}
		return fn(tx)
	})
}
