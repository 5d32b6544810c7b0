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
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// FuturePartitionDays is how many days after today have their events
// partition made ahead of time, by Provision and by every retention run: a
// week of missed retention runs before ingest has nowhere to write.
const FuturePartitionDays = 7

// DB is what the schema helpers need of a connection: *pgx.Conn, pgx.Tx and
// *pgxpool.Pool all have it.
type DB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// migration is one forward step of a tenant schema. Steps are applied in
// order, each exactly once, as the tenant role (so the tenant owns what they
// create); schema_version holds how many have been applied. Never edit a
// released step: append a new one.
type migration struct {
	name string
	sql  func(schema string) []string
}

// migrations is the tenant schema's history; len(migrations) is the current
// version, SchemaVersion().
var migrations = []migration{
	{name: "events, daily aggregates and the roll-up ledger", sql: migration1},
	{name: "daily salts, and the visitor id and host name of events", sql: migration2},
	{name: "visitors by the SDK's mm_aid: no salts, no anonymous_id; title and attribution of events", sql: migration3},
	{name: "engagement of events: engaged time and scroll depth of Plausible's engagement events", sql: migration4},
	{name: "daily aggregates by host name", sql: migration5},
}

// EventsTable is the table of a tenant schema that the ingest service uses,
// with its ingest role (TenantNames.IngestRole): the raw events, partitioned by UTC
// day. The ingest role may only INSERT (or COPY) into it, through the
// partitioned table: it can read nothing back, not even with RETURNING.
const EventsTable = "events"

// saltsTable held the daily salts of the address-based visitor hash of
// schema versions 2 and earlier; migration 3 drops it.
const saltsTable = "salts"

// saltLength was the length in bytes of a daily salt (migration 2).
const saltLength = 32

// SchemaVersion is the tenant schema version this operator makes: the
// number of migrations it knows.
func SchemaVersion() int { return len(migrations) }

// migration1 makes the first tables. The columns of events are the ones the
// privacy policy allows, and no more: in particular no column can hold an IP
// address (the policy says it is used at ingestion only and never stored),
// so there is no inet/cidr column and no free-form "ip" column. The only
// free-form column is props, the custom properties the customer chooses to
// send.
func migration1(schema string) []string {
	s := pgx.Identifier{schema}.Sanitize()
	return []string{
		`CREATE TABLE ` + s + `.events (
			event_id      uuid        NOT NULL DEFAULT gen_random_uuid(),
			received_at   timestamptz NOT NULL,
			anonymous_id  text,
			event_name    text        NOT NULL,
			url_path      text,
			referrer      text,
			utm_source    text,
			utm_medium    text,
			utm_campaign  text,
			utm_term      text,
			utm_content   text,
			click_id_type text,
			browser_family text,
			os_family     text,
			device_type   text,
			country       text,
			region        text,
			city          text,
			props         jsonb,
			PRIMARY KEY (event_id, received_at)
		) PARTITION BY RANGE (received_at)`,
		`CREATE INDEX ON ` + s + `.events (received_at)`,
		`COMMENT ON TABLE ` + s + `.events IS ` + QuoteLiteral(
			"Raw events, one partition per UTC day (events_YYYYMMDD), dropped after the plan's retention window. "+
				"No column holds an IP address: it is used at ingestion only."),
		`COMMENT ON COLUMN ` + s + `.events.anonymous_id IS ` + QuoteLiteral(
			"The first-party mm_aid identifier from the visitor's localStorage; never a cookie, never cross-site."),
		`COMMENT ON COLUMN ` + s + `.events.url_path IS ` + QuoteLiteral(
			"Path and allow-listed query parameters only."),
		`COMMENT ON COLUMN ` + s + `.events.click_id_type IS ` + QuoteLiteral(
			"Which click id was present (gclid, fbclid, ...), not its value."),

		`CREATE TABLE ` + s + `.daily_aggregates (
			day             date   NOT NULL,
			path            text   NOT NULL,
			country         text   NOT NULL,
			referrer_source text   NOT NULL,
			pageviews       bigint NOT NULL DEFAULT 0,
			visitors        bigint NOT NULL DEFAULT 0,
			events          bigint NOT NULL DEFAULT 0,
			PRIMARY KEY (day, path, country, referrer_source)
		)`,
		`COMMENT ON TABLE ` + s + `.daily_aggregates IS ` + QuoteLiteral(
			"Counters per UTC day, kept after the raw events are gone. No visitor identifier: "+
				"visitors is a count of distinct anonymous ids within the day. '' means unknown."),

		`CREATE TABLE ` + s + `.rollup_ledger (
			day          date        PRIMARY KEY,
			rolled_up_at timestamptz NOT NULL DEFAULT now(),
			raw_events   bigint      NOT NULL
		)`,
		`COMMENT ON TABLE ` + s + `.rollup_ledger IS ` + QuoteLiteral(
			"Days already rolled into daily_aggregates, written in the same transaction, so a day is counted once."),
	}
}

// migration2 adds what the ingest service needs for counting visitors
// without cookies: a salts table, and the visitor_id and hostname columns
// of events. visitor_id is a keyed hash, not an address: the policy's "no
// column can hold an IP address" still holds. Both columns are nullable
// without a default, so adding them rewrites no partition. daily_aggregates
// keeps its columns; only its comment now says what visitors counts.
func migration2(schema string) []string {
	s := pgx.Identifier{schema}.Sanitize()
	return []string{
		`CREATE TABLE ` + s + `.` + saltsTable + ` (
			day        date        PRIMARY KEY,
			salt       bytea       NOT NULL CHECK (octet_length(salt) = ` + strconv.Itoa(saltLength) + `),
			created_at timestamptz NOT NULL DEFAULT now()
		)`,
		`COMMENT ON TABLE ` + s + `.` + saltsTable + ` IS ` + QuoteLiteral(
			"One random salt per UTC day for the cookieless visitor hash, made by the first ingest replica of the day "+
				"(INSERT ... ON CONFLICT DO NOTHING). Salts older than the day before are deleted, by ingest and by "+
				"retention, so visitor ids cannot be recomputed or linked across days."),
		`ALTER TABLE ` + s + `.` + EventsTable + ` ADD COLUMN visitor_id bigint, ADD COLUMN hostname text`,
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.visitor_id IS ` + QuoteLiteral(
			"Keyed hash of the day's salt, the visitor's address, User-Agent and the site's domain: the same visitor "+
				"within one UTC day only. The address itself is never stored."),
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.hostname IS ` + QuoteLiteral(
			"The host of the page the event was sent from."),
		`COMMENT ON TABLE ` + s + `.daily_aggregates IS ` + QuoteLiteral(
			"Counters per UTC day, kept after the raw events are gone. No visitor identifier: "+
				"visitors is a count of distinct visitor ids (or, for events without one, anonymous ids) within the day. "+
				"'' means unknown."),
	}
}

// migration3 counts visitors as the privacy policy says: by the anonymous
// id the SDK makes in the browser (mm_aid), never by the address. The
// ingest service now stores only a keyed hash of that id, under a key of
// the tenant's that lives in its ingest Secret and never in the database,
// in visitor_id; so:
//   - the salts table goes: nothing hashes the address any more, and a salt
//     kept beside the hashes let anyone holding a dump recompute them;
//   - events.anonymous_id goes: nothing may hold the browser's own value,
//     and nothing ever wrote it;
//   - events gets the document title and the attribution source and
//     medium the policy lists, derived at ingestion from UTM parameters and
//     click ids.
//
// Rows already stored keep their visitor_id, the day's hash of address and
// User-Agent; they are not rewritten. Adding nullable columns and dropping
// one rewrites no partition.
func migration3(schema string) []string {
	s := pgx.Identifier{schema}.Sanitize()
	return []string{
		`DROP TABLE IF EXISTS ` + s + `.` + saltsTable,
		`ALTER TABLE ` + s + `.` + EventsTable + ` DROP COLUMN IF EXISTS anonymous_id,
			ADD COLUMN title text, ADD COLUMN attribution_source text, ADD COLUMN attribution_medium text`,
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.visitor_id IS ` + QuoteLiteral(
			"HMAC-SHA256, under the tenant's own key (kept in its ingest Secret, never in the database), of the "+
				"anonymous id the Millimetric SDK keeps in the browser's localStorage (mm_aid): the same browser on one "+
				"origin, for as long as the key is kept. NULL when the event came without one. Rows written before schema "+
				"version 3 hold the day's salted hash of address and User-Agent instead."),
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.title IS ` + QuoteLiteral(
			"The document title, at most 300 bytes."),
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.attribution_source IS ` + QuoteLiteral(
			"Lower-case utm_source when allow-listed, else the platform of the click id (gclid: google)."),
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.attribution_medium IS ` + QuoteLiteral(
			"Lower-case utm_medium when allow-listed, else the medium of the click id (gclid: cpc)."),
		`COMMENT ON TABLE ` + s + `.daily_aggregates IS ` + QuoteLiteral(
			"Counters per UTC day, kept after the raw events are gone. No visitor identifier: "+
				"visitors is a count of distinct visitor ids within the day; events without one count no visitor. "+
				"'' means unknown."),
	}
}

// migration4 records Plausible's engagement events as engagement, not as
// custom events: such a row keeps event_name 'engagement' and the page of
// the pageview it follows (url_path, hostname), and fills engagement_ms
// (the engaged time since the page's previous engagement event, so a
// page's engaged time is their sum) and scroll_depth (the deepest scroll
// so far, a percentage, so a page's is their maximum), either of which may
// be NULL when the tracker did not say. Every other row leaves both NULL.
// The aggregates count an engagement row as neither a pageview nor an
// event. engagement_ms is a bigint: the tracker may send up to 30 days in
// milliseconds, more than an integer holds. Adding nullable columns
// without a default rewrites no partition.
func migration4(schema string) []string {
	s := pgx.Identifier{schema}.Sanitize()
	return []string{
		`ALTER TABLE ` + s + `.` + EventsTable + ` ADD COLUMN engagement_ms bigint, ADD COLUMN scroll_depth smallint`,
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.event_name IS ` + QuoteLiteral(
			"'pageview', 'engagement' (engagement_ms and scroll_depth of the page: neither a pageview nor an event "+
				"of its own) or a custom event's name."),
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.engagement_ms IS ` + QuoteLiteral(
			"Of an 'engagement' row: milliseconds the visitor was engaged with the page since its previous engagement "+
				"row (a page's engaged time is their sum); NULL otherwise, or when not sent."),
		`COMMENT ON COLUMN ` + s + `.` + EventsTable + `.scroll_depth IS ` + QuoteLiteral(
			"Of an 'engagement' row: the deepest the visitor scrolled the page so far, 0 to 100 percent (a page's is "+
				"their maximum); NULL otherwise, or when not sent."),
	}
}

// migration5 gives daily_aggregates the page's host name, part of the key,
// so a tenant with several sites keeps them apart after the raw events are
// gone. Rows rolled up before have the empty string (unknown). The roll-up
// now also keys pages by their path without the query, and adds up the
// engagement of migration 4 (see expireDay). The columns have constant
// defaults, so adding them rewrites nothing.
func migration5(schema string) []string {
	s := pgx.Identifier{schema}.Sanitize()
	return []string{
		`ALTER TABLE ` + s + `.daily_aggregates ADD COLUMN hostname text NOT NULL DEFAULT '',
			ADD COLUMN engagements bigint NOT NULL DEFAULT 0, ADD COLUMN engaged_ms bigint NOT NULL DEFAULT 0,
			ADD COLUMN scroll_depth_sum bigint NOT NULL DEFAULT 0, ADD COLUMN scroll_depth_count bigint NOT NULL DEFAULT 0`,
		`ALTER TABLE ` + s + `.daily_aggregates DROP CONSTRAINT daily_aggregates_pkey,
			ADD PRIMARY KEY (day, hostname, path, country, referrer_source)`,
		`COMMENT ON TABLE ` + s + `.daily_aggregates IS ` + QuoteLiteral(
			"Counters per UTC day, page (host name and path, without the query) and country, and where the visitors "+
				"came from (referrer_source: the attribution source, else the referrer's host, else '(direct)'), "+
				"kept after the raw events are gone. No visitor identifier: visitors is a count of distinct visitor ids "+
				"within the day; events without one count none. events counts no engagement row; engagements counts "+
				"them, engaged_ms adds up their engaged time, and scroll_depth_sum / scroll_depth_count is the mean "+
				"scroll depth they reported. '' means unknown."),
	}
}

// migrate brings schema to version target (SchemaVersion in production;
// tests ask for older versions to test migrating from them). It runs in the
// caller's transaction, as the tenant role, with the tenant's provisioning
// lock held. A schema already at or past target is left as it is.
func migrate(ctx context.Context, tx pgx.Tx, schema string, target int) error {
	s := pgx.Identifier{schema}.Sanitize()
	var exists bool
	if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s+".schema_version").Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := tx.Exec(ctx, `CREATE TABLE `+s+`.schema_version (
			singleton   boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
			version     integer     NOT NULL,
			migrated_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO `+s+`.schema_version (version) VALUES (0)`); err != nil {
			return err
		}
	}
	var version int
	if err := tx.QueryRow(ctx, `SELECT version FROM `+s+`.schema_version`).Scan(&version); err != nil {
		return err
	}
	if version > len(migrations) {
		return newError(ReasonIncompatibleSchema, "migrate", fmt.Sprintf(
			"schema %s is at version %d, newer than this operator's %d: upgrade the operator", schema, version, len(migrations)), nil)
	}
	for i := version; i < target; i++ {
		for _, stmt := range migrations[i].sql(schema) {
			if _, err := tx.Exec(ctx, stmt); err != nil {
				return fmt.Errorf("migration %d (%s): %w", i+1, migrations[i].name, err)
			}
		}
	}
	if version < target {
		if _, err := tx.Exec(ctx, `UPDATE `+s+`.schema_version SET version = $1, migrated_at = now()`, target); err != nil {
			return err
		}
	}
	return nil
}

// schemaTables are the tables the migrations make, which restoreTables
// puts back when one is missing.
var schemaTables = []string{EventsTable, "daily_aggregates", "rollup_ledger"}

// restoreTables makes again, empty and as the migrations made it, each
// table of a schema at the current version that is missing: dropped by
// hand, say. What it held is gone, but ingest and retention work again
// (events gets its partitions next). Its statements are every migration's statements on that
// table, in order. It runs in Provision's transaction, as the tenant role.
func restoreTables(ctx context.Context, tx pgx.Tx, schema string) error {
	s := pgx.Identifier{schema}.Sanitize()
	for _, table := range schemaTables {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, s+"."+table).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue
		}
		for _, m := range migrations {
			for _, stmt := range m.sql(schema) {
				if !statementOn(stmt, s, table) {
					continue
				}
				if _, err := tx.Exec(ctx, stmt); err != nil {
					return fmt.Errorf("restoring table %s.%s: %w", schema, table, err)
				}
			}
		}
	}
	return nil
}

// statementOn says whether a migration statement is on table: the
// migrations name every table schema-qualified, followed by a space, a
// column's dot or a line break.
func statementOn(stmt, schema, table string) bool {
	name := schema + "." + table
	for _, next := range []string{" ", ".", "\n"} {
		if strings.Contains(stmt, name+next) {
			return true
		}
	}
	return false
}

// schemaVersionOf reads the version of schema from its schema_version table.
func schemaVersionOf(ctx context.Context, db DB, schema string) (int, error) {
	var version int
	err := db.QueryRow(ctx, `SELECT version FROM `+pgx.Identifier{schema, "schema_version"}.Sanitize()).Scan(&version)
	return version, err
}

// dayPartitions lists the day partitions of schema's events table, oldest
// first. Partitions whose names are not events_YYYYMMDD are left out.
func dayPartitions(ctx context.Context, db DB, schema string) ([]time.Time, error) {
	rows, err := db.Query(ctx, `
		SELECT c.relname
		FROM pg_inherits i
		JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass($1)`, pgx.Identifier{schema, "events"}.Sanitize())
	if err != nil {
		return nil, err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var days []time.Time
	for _, n := range names {
		if d, ok := parsePartitionName(n); ok {
			days = append(days, d)
		}
	}
	sort.Slice(days, func(i, j int) bool { return days[i].Before(days[j]) })
	return days, nil
}

// EnsureDayPartitions makes the events partitions for every UTC day from
// from's to to's, inclusive, that do not exist yet, and returns how many it
// made. Run it as the tenant role (or SET ROLE to it) so the tenant owns
// them and its retention job can drop them. The retention job and Provision
// call it for today through today+FuturePartitionDays; tests and backfills
// call it for past days.
func EnsureDayPartitions(ctx context.Context, db DB, schema string, from, to time.Time) (int, error) {
	if err := validateSchema(schema); err != nil {
		return 0, err
	}
	existing, err := dayPartitions(ctx, db, schema)
	if err != nil {
		return 0, err
	}
	have := make(map[time.Time]bool, len(existing))
	for _, d := range existing {
		have[d] = true
	}
	created := 0
	for day := utcDay(from); !day.After(utcDay(to)); day = day.AddDate(0, 0, 1) {
		if have[day] {
			continue
		}
		if _, err := db.Exec(ctx, createPartitionSQL(schema, day)); err != nil {
			return created, err
		}
		created++
	}
	return created, nil
}

func createPartitionSQL(schema string, day time.Time) string {
	// The bounds are formatted from a time.Time (digits and dashes only),
	// with an explicit +00 so they do not depend on the session's TimeZone.
	const layout = "2006-01-02 15:04:05+00"
	return fmt.Sprintf(`CREATE TABLE %s PARTITION OF %s FOR VALUES FROM ('%s') TO ('%s')`,
		pgx.Identifier{schema, PartitionName(day)}.Sanitize(),
		pgx.Identifier{schema, "events"}.Sanitize(),
		day.Format(layout), day.AddDate(0, 0, 1).Format(layout))
}
