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

// RetentionSummary is what one retention run did. It is printed as one JSON
// line by the retention command, so its field names are part of that
// command's interface.
type RetentionSummary struct {
	// Schema is the tenant schema the run worked on.
	Schema string `json:"schema"`
	// RetentionDays is the plan's window.
	RetentionDays int `json:"retentionDays"`
	// Now is the clock the run used.
	Now time.Time `json:"now"`
	// KeepFrom is the oldest UTC day whose raw events are kept
	// (today - RetentionDays), as YYYY-MM-DD.
	KeepFrom string `json:"keepFrom"`
	// Skipped is true when another run held the tenant's retention lock, in
	// which case this run did nothing.
	Skipped bool `json:"skipped"`
	// DaysRolledUp counts expired days rolled into daily_aggregates by this
	// run (a day rolled up by an earlier, interrupted run is not counted).
	DaysRolledUp int `json:"daysRolledUp"`
	// EventsRolledUp counts the raw events of those days.
	EventsRolledUp int64 `json:"eventsRolledUp"`
	// PartitionsDropped counts expired day partitions dropped.
	PartitionsDropped int `json:"partitionsDropped"`
	// PartitionsCreated counts future day partitions made.
	PartitionsCreated int `json:"partitionsCreated"`
	// OldestRawEvent is the received_at of the oldest raw event left, nil
	// when there is none.
	OldestRawEvent *time.Time `json:"oldestRawEvent"`
}

// retentionSchemaVersion is the oldest tenant schema version RunRetention
// works on: the roll-up reads the columns of events (attribution_source,
// migration 3) and writes the key of daily_aggregates (hostname, the
// aggregates' migration) of this operator's schema. The operator migrates
// a tenant's schema when it reconciles it, before a run of this version's
// retention needs it.
func retentionSchemaVersion() int { return SchemaVersion() }

// retentionLockTimeout bounds the wait for the lock that dropping a
// partition takes on events. Ingest's inserts queue behind a waiting DROP,
// so the wait is short and retried rather than long.
const retentionLockTimeout = 5 * time.Second

// KeepFrom is the first UTC day whose raw events a retention window of
// days keeps at now: day D is expired when D < today(now) - days (UTC
// days). With 30 days, an event received 30 days ago is kept and one
// received 31 days ago is not. RunRetention, the sweep of held tenants
// (expireHeld) and the operator's compliance check (DaysPastWindow) all
// judge by it.
func KeepFrom(now time.Time, days int) time.Time {
	return utcDay(now).AddDate(0, 0, -days)
}

// DaysPastWindow is how many whole UTC days day is before KeepFrom(now,
// days): 0 or less while the window keeps it.
func DaysPastWindow(day, now time.Time, days int) int {
	return int(KeepFrom(now, days).Sub(utcDay(day)) / (24 * time.Hour))
}

// RunRetention enforces the retention window on one tenant's schema, with
// that tenant's own connection (ConnectTenant): the run refuses a superuser
// or any role that does not own the schema, so it can never reach another
// tenant's data.
//
// A day is expired when it is before KeepFrom(now, retentionDays). Each
// expired day, oldest first, is handled in a transaction
// of its own that
//  1. rolls the day's events into daily_aggregates (pageviews: events named
//     "pageview"; visitors: distinct visitor ids, events without one
//     counting none; events: all), unless rollup_ledger already has
//     the day, and records the day in the ledger;
//  2. drops the day's partition.
//
// So a day is counted exactly once, and its raw events are never dropped
// without being counted, however runs are interrupted. Then the partitions
// for today through today+FuturePartitionDays are made if missing.
//
// One run at a time per tenant: the run holds the tenant's retention lock
// (lockRetention) in a second session of its own, opened with conn's
// settings, and if another session has it, returns at once with Skipped set
// and nothing done. A schema older than the run knows
// (ReasonIncompatibleSchema) is left for the operator to migrate first.
func RunRetention(ctx context.Context, conn *pgx.Conn, schema string, retentionDays int, now time.Time) (RetentionSummary, error) {
	today := utcDay(now)
	keepFrom := KeepFrom(now, retentionDays)
	sum := RetentionSummary{Schema: schema, RetentionDays: retentionDays, Now: now.UTC(), KeepFrom: keepFrom.Format(time.DateOnly)}
	if err := validateSchema(schema); err != nil {
		return sum, err
	}
	if retentionDays < 1 {
		return sum, newError(ReasonInvalidConfig, "retention", fmt.Sprintf("retention of %d days is not positive", retentionDays), nil)
	}
	if err := checkRetentionRole(ctx, conn, schema); err != nil {
		return sum, err
	}

	lockConn, err := pgx.ConnectConfig(ctx, conn.Config())
	if err != nil {
		return sum, wrap("retention: opening the session that holds the retention lock", err)
	}
	defer func() {
		// Closing the session ends its transaction and so frees the lock,
		// even when ctx is done; a broken connection frees it anyway.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = lockConn.Close(cctx)
	}()
	lock, err := lockRetention(ctx, lockConn, schema)
	if err != nil {
		return sum, wrap("retention", err)
	}
	if lock == nil {
		sum.Skipped = true
		return sum, nil
	}

	version, err := schemaVersionOf(ctx, conn, schema)
	if err != nil {
		return sum, wrap("retention", err)
	}
	if version < retentionSchemaVersion() {
		return sum, newError(ReasonIncompatibleSchema, "retention", fmt.Sprintf(
			"schema %s is at version %d, older than the %d this retention needs: the operator migrates it when it next reconciles the tenant",
			schema, version, retentionSchemaVersion()), nil)
	}

	days, err := dayPartitions(ctx, conn, schema)
	if err != nil {
		return sum, wrap("retention", err)
	}
	for _, day := range days {
		if !day.Before(keepFrom) {
			break
		}
		rolled, events, err := expireDay(ctx, conn, schema, day)
		if err != nil {
			return sum, wrap("retention: expiring "+day.Format(time.DateOnly), err)
		}
		if rolled {
			sum.DaysRolledUp++
			sum.EventsRolledUp += events
		}
		sum.PartitionsDropped++
	}

	created, err := EnsureDayPartitions(ctx, conn, schema, today, today.AddDate(0, 0, FuturePartitionDays))
	sum.PartitionsCreated = created
	if err != nil {
		return sum, wrap("retention: creating partitions", err)
	}

	if err := conn.QueryRow(ctx, `SELECT min(received_at) FROM `+pgx.Identifier{schema, "events"}.Sanitize()).
		Scan(&sum.OldestRawEvent); err != nil {
		return sum, wrap("retention", err)
	}
	if sum.OldestRawEvent != nil {
		t := sum.OldestRawEvent.UTC()
		sum.OldestRawEvent = &t
	}
	return sum, nil
}

// lockRetention takes the tenant's retention lock on conn: it begins a
// transaction there and locks the one row of the schema's schema_version
// table FOR UPDATE NOWAIT. The lock is held until the returned transaction
// ends; lock is nil, with no error, when another session holds it.
//
// It is a row in the tenant's own schema, not an advisory lock: only the
// schema's owner (and the administrator) may lock that row, since locking a
// row needs UPDATE on its table, and no other tenant's role may even use
// the schema. The tenant's ingest role has no privilege on schema_version
// either, so not even the tenant's own ingest credentials can keep its
// retention from running. The row is also what a migration of the schema
// updates: a retention run and a migration of the same tenant take turns,
// so a run never works on a schema that changes under it (Provision waits
// for the run, up to its lock timeout; a run that finds a migration under
// way skips, like one that finds another run).
//
// The transaction is idle for as long as the run works on its own
// connection; idle_in_transaction_session_timeout is turned off in it, so
// that a limit set on the tenant's role does not end the session and free
// the lock halfway through a run.
func lockRetention(ctx context.Context, conn *pgx.Conn, schema string) (lock pgx.Tx, err error) {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return nil, err
	}
	_, err = tx.Exec(ctx, `SET LOCAL idle_in_transaction_session_timeout = 0`)
	if err == nil {
		var one int
		err = tx.QueryRow(ctx, `SELECT 1 FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()+` FOR UPDATE NOWAIT`).Scan(&one)
	}
	if err != nil {
		_ = tx.Rollback(context.WithoutCancel(ctx))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "55P03" { // lock_not_available
			return nil, nil
		}
		return nil, err
	}
	return tx, nil
}

// checkRetentionRole makes sure the run uses the tenant's own role.
func checkRetentionRole(ctx context.Context, conn *pgx.Conn, schema string) error {
	var super bool
	var owner *string
	err := conn.QueryRow(ctx, `
		SELECT r.rolsuper, (SELECT n.nspowner::regrole::text FROM pg_namespace n WHERE n.nspname = $1)
		FROM pg_roles r WHERE r.rolname = current_user`, schema).Scan(&super, &owner)
	if err != nil {
		return wrap("retention", err)
	}
	switch {
	case super:
		return newError(ReasonPermissionDenied, "retention",
			"retention runs with the tenant's own credentials, not a superuser's", nil)
	case owner == nil:
		return newError(ReasonIncompatibleSchema, "retention", fmt.Sprintf("schema %s does not exist", schema), nil)
	case *owner != schema:
		return newError(ReasonPermissionDenied, "retention",
			fmt.Sprintf("retention for %s must run as its owner %s", schema, *owner), nil)
	}
	return nil
}

// expireDay rolls day up (unless the ledger has it) and drops its partition,
// in one transaction, retrying a few times when the lock on events is busy.
func expireDay(ctx context.Context, conn txBeginner, schema string, day time.Time) (rolled bool, events int64, err error) {
	for attempt := 1; ; attempt++ {
		rolled, events, err = expireDayOnce(ctx, conn, schema, day)
		var pgErr *pgconn.PgError
		if err == nil || attempt == 5 || !errors.As(err, &pgErr) || pgErr.Code != "55P03" {
			return rolled, events, err
		}
		select {
		case <-ctx.Done():
			return false, 0, ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
}

// txBeginner is what expireDayOnce needs of a connection: a *pgx.Conn (a
// retention run's, a transaction of its own) or a pgx.Tx (the sweep's of
// a held tenant, a savepoint in it).
type txBeginner interface {
	Begin(ctx context.Context) (pgx.Tx, error)
}

func expireDayOnce(ctx context.Context, conn txBeginner, schema string, day time.Time) (rolled bool, events int64, err error) {
	s := pgx.Identifier{schema}.Sanitize()
	part := pgx.Identifier{schema, PartitionName(day)}.Sanitize()
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, retentionLockTimeout.Milliseconds())); err != nil {
			return err
		}
		var done bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+s+`.rollup_ledger WHERE day = $1)`, day).Scan(&done); err != nil {
			return err
		}
		if !done {
			err := tx.QueryRow(ctx, `
				WITH agg AS (
					INSERT INTO `+s+`.daily_aggregates (day, hostname, path, country, referrer_source, pageviews, visitors, events,
					                                        engagements, engaged_ms, scroll_depth_sum, scroll_depth_count)
					SELECT $1::date, `+rollupKey+`,
					       count(*) FILTER (WHERE event_name = 'pageview'),
					       count(DISTINCT visitor_id),
					       count(*) FILTER (WHERE event_name <> 'engagement'),
					       count(*) FILTER (WHERE event_name = 'engagement'),
					       COALESCE(sum(engagement_ms) FILTER (WHERE event_name = 'engagement'), 0),
					       COALESCE(sum(scroll_depth) FILTER (WHERE event_name = 'engagement'), 0),
					       count(scroll_depth) FILTER (WHERE event_name = 'engagement')
					FROM `+part+`
					GROUP BY 2, 3, 4, 5
					RETURNING events + engagements AS rows
				)
				INSERT INTO `+s+`.rollup_ledger (day, rolled_up_at, raw_events)
				SELECT $1::date, now(), COALESCE(sum(rows), 0) FROM agg
				RETURNING raw_events`, day).Scan(&events)
			if err != nil {
				return err
			}
			rolled = true
		}
		_, err := tx.Exec(ctx, `DROP TABLE `+part)
		return err
	})
	return rolled, events, err
}

// rollupKey is the roll-up's key of an event, the columns after day of
// daily_aggregates' primary key; the empty string stands for unknown, since they are all
// part of the key:
//   - hostname: the page's host name;
//   - path: the page's path without its query, so a page is one row
//     whatever campaign brought its visitors (the campaign is the source);
//   - country;
//   - referrer_source: the attribution source ingest derived (utm_source,
//     source, ref, or a click id's platform), else the referrer's host,
//     else "(direct)". Ingest stores the referrer as its host; a full URL
//     (a row written another way) is reduced to its host here too.
//
// Rows stored before attribution_source existed (schema version 3) have
// none, and fall back on utm_source.
const rollupKey = `COALESCE(hostname, ''),
	COALESCE(split_part(url_path, '?', 1), ''),
	COALESCE(country, ''),
	COALESCE(NULLIF(lower(COALESCE(attribution_source, utm_source)), ''),
	         NULLIF(CASE WHEN referrer ~ '://'
	                     THEN lower(substring(referrer from '^[A-Za-z][A-Za-z0-9+.-]*://([^/:?#@]+)'))
	                     ELSE lower(referrer) END, ''),
	         '(direct)')`

// oldestRawEventTimeout bounds OldestRawEventDay: its statements wait only
// for a retention run's DROP of a partition, which commits at once, so a
// longer wait means something is stuck and the caller should retry later.
const oldestRawEventTimeout = 15 * time.Second

// OldestRawEventDay implements Store, in the tenant's schema as recorded
// (namesOf), as the region's administrator (a
// superuser, or a member of the tenant's owner role: Provision makes it
// one) acting as the tenant's owner, as Verify counts rows.
//
// One statement lists the day partitions (events_YYYYMMDD) up to today, by
// the store's clock (the database's), oldest first, with whether their heap file is empty:
// a partition never written to has size 0, which skips the future ones
// Provision and retention make ahead of time and the past days that received
// nothing, without touching them. Then each partition that has pages is
// probed, oldest first, with EXISTS (SELECT 1 ...), which stops at the first
// visible row: normally a single page, more only when the partition's first
// pages hold rows deleted but not yet vacuumed away. The first that has a row
// is the answer, so the usual cost is two statements. A partition that
// retention drops between the two is taken as empty.
func (p *Postgres) OldestRawEventDay(ctx context.Context, tenant string) (_ *time.Time, err error) {
	ctx, done := p.deadline(ctx, "reading the oldest raw event of "+tenant)
	defer done(&err)
	if err := ValidateTenantName(tenant); err != nil {
		return nil, err
	}
	op := "reading the oldest raw event of " + tenant
	ctx, cancel := context.WithTimeout(ctx, oldestRawEventTimeout)
	defer cancel()
	names, ok, err := p.namesOf(ctx, op, tenant)
	if err != nil || !ok {
		return nil, err
	}
	schema := names.Schema

	// Everything below reads the tenant's partitions as the schema's owner
	// with row_security off (asSchemaOwner): what the owner planted there
	// runs with its own rights, and a row-level security policy on a
	// partition makes the read fail, visibly, rather than hide old rows.
	var oldest *time.Time
	err = p.asSchemaOwner(ctx, schema, true, func(tx pgx.Tx) error {
		now, err := p.clock(ctx, tx)
		if err != nil {
			return err
		}
		// The size is in the select list, not the WHERE clause, so it is
		// computed (it takes a brief lock on the partition) only for the
		// partitions the name filter keeps.
		rows, err := tx.Query(ctx, `
			SELECT c.relname, COALESCE(pg_catalog.pg_relation_size(c.oid), 0) > 0
			FROM pg_catalog.pg_inherits i
			JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
			WHERE i.inhparent = pg_catalog.to_regclass($1) AND c.relname ~ '^events_[0-9]{8}$' AND c.relname <= $2
			ORDER BY c.relname`,
			pgx.Identifier{schema, EventsTable}.Sanitize(), PartitionName(now))
		if err != nil {
			return err
		}
		type partition struct {
			name     string
			hasPages bool
		}
		parts, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (partition, error) {
			var part partition
			err := row.Scan(&part.name, &part.hasPages)
			return part, err
		})
		if err != nil {
			return err
		}
		for _, part := range parts {
			day, ok := parsePartitionName(part.name)
			if !ok || !part.hasPages {
				continue
			}
			var found bool
			// In a savepoint of its own, so a partition dropped since it
			// was listed fails only its probe.
			err := pgx.BeginFunc(ctx, tx, func(sp pgx.Tx) error {
				return sp.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{schema, part.name}.Sanitize()+`)`).Scan(&found)
			})
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
				continue // dropped by retention since it was listed
			}
			if err != nil {
				return err
			}
			if found {
				oldest = &day
				return nil
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap(op, err, p.cfg.Password)
	}
	return oldest, nil
}
