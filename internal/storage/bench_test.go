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
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// BenchmarkRetention compares ways of removing 30 expired days of raw
// events from one tenant:
//
//   - drop-partitions: DROP TABLE of each day's partition, what retention does;
//   - delete-rows: DELETE of the same rows from the partitioned table;
//   - delete-rows+vacuum: the DELETE plus the VACUUM it leaves to do;
//   - run-retention: the whole RunRetention, roll-up into aggregates included.
//
// Every iteration refills the expired days outside the timer, which is
// what makes the benchmark slow to run. The rows are shaped as ingest
// writes them (host name, path with an allowlisted query, the referrer's
// host, attribution, title, families, a visitor id). The day size is 3000
// rows; RETENTION_BENCH_ROWS_PER_DAY=3000,20000 runs other sizes (with
// -benchtime 3x, or each size's refills take minutes), and
// RETENTION_BENCH_DAYS (default 30) how many days expire at once, so a busy
// tenant's day can be measured alone:
//
//	RETENTION_BENCH_ROWS_PER_DAY=1000000 RETENTION_BENCH_DAYS=1 make bench-retention
//
// Besides time, it
// reports the WAL each way writes (WAL-MB/op): the test server runs with
// fsync=off, which hides most of the I/O cost of a large DELETE, but not its
// WAL volume, which replicas and backups have to carry.
//
//	go test -run '^$' -bench Retention ./internal/storage/
//	RETENTION_BENCH_ROWS_PER_DAY=3000,20000 go test -run '^$' -bench Retention -benchtime 3x ./internal/storage/
func BenchmarkRetention(b *testing.B) {
	sizes := []int{3000}
	if env := os.Getenv("RETENTION_BENCH_ROWS_PER_DAY"); env != "" {
		sizes = nil
		for _, f := range strings.Split(env, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil || n < 1 || n > 10_000_000 {
				b.Fatalf("RETENTION_BENCH_ROWS_PER_DAY=%q: want comma-separated row counts from 1 to 10,000,000", env)
			}
			sizes = append(sizes, n)
		}
	}
	expiredDays := 30
	if env := os.Getenv("RETENTION_BENCH_DAYS"); env != "" {
		n, err := strconv.Atoi(env)
		if err != nil || n < 1 || n > 300 {
			b.Fatalf("RETENTION_BENCH_DAYS=%q: want a number of days from 1 to 300", env)
		}
		expiredDays = n
	}
	for _, rowsPerDay := range sizes {
		b.Run(fmt.Sprintf("rows-per-day=%d", rowsPerDay), func(b *testing.B) { benchmarkRetention(b, rowsPerDay, expiredDays) })
	}
}

func benchmarkRetention(b *testing.B, benchRowsPerDay, expiredDays int) {
	creds, conn := retentionTenant(b, "bench", retentionNow)
	// Not testContext: its deadline is for one test, and a benchmark's
	// refills can take longer than that in all.
	ctx := context.Background()
	s := pgx.Identifier{creds.Schema}.Sanitize()
	midnight := func(t time.Time) time.Time { return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC) }
	first, last := midnight(daysAgo(31+expiredDays-1)), midnight(daysAgo(31))

	refill := func(b *testing.B) {
		b.Helper()
		if _, err := storage.EnsureDayPartitions(ctx, conn, creds.Schema, first, last); err != nil {
			b.Fatal(err)
		}
		for _, sql := range []string{
			`TRUNCATE ` + s + `.events, ` + s + `.daily_aggregates, ` + s + `.rollup_ledger`,
		} {
			if _, err := conn.Exec(ctx, sql); err != nil {
				b.Fatal(err)
			}
		}
		// i is a bigint: i * 86399 overflows an int4 past 24,855 rows a day.
		// About one visitor per three events.
		tag, err := conn.Exec(ctx, `
			INSERT INTO `+s+`.events (received_at, event_name, visitor_id, hostname, url_path, country, referrer,
			                          utm_source, utm_campaign, attribution_source, attribution_medium, title,
			                          browser_family, os_family, device_type)
			SELECT d + (i * 86399 / $3::bigint) * interval '1 second',
			       CASE WHEN i % 5 = 0 THEN 'Signup' ELSE 'pageview' END,
			       hashint8(i % GREATEST($3::bigint / 3, 1)),
			       CASE WHEN i % 4 = 0 THEN 'shop.acme.com' ELSE 'acme.com' END,
			       '/p/' || (i % 25) || CASE WHEN i % 6 = 0 THEN '?utm_campaign=spring' ELSE '' END,
			       (ARRAY['DE','FR','US','GB','NL'])[1 + i % 5],
			       CASE WHEN i % 3 = 0 THEN 'www.google.com' END,
			       CASE WHEN i % 7 = 0 THEN 'newsletter' END,
			       CASE WHEN i % 6 = 0 THEN 'spring' END,
			       CASE WHEN i % 7 = 0 THEN 'newsletter' WHEN i % 11 = 0 THEN 'google' END,
			       CASE WHEN i % 7 = 0 THEN 'email' WHEN i % 11 = 0 THEN 'cpc' END,
			       'Page ' || (i % 25) || ' · Acme',
			       (ARRAY['Chrome','Firefox','Safari','Edge'])[1 + i % 4],
			       (ARRAY['Windows','macOS','iOS','Android','Linux'])[1 + i % 5],
			       (ARRAY['desktop','mobile','tablet'])[1 + i % 3]
			FROM generate_series($1::timestamptz, $2::timestamptz, interval '1 day') d,
			     generate_series(1::bigint, $3::bigint) i`, first, last, benchRowsPerDay)
		if err != nil {
			b.Fatal(err)
		}
		if tag.RowsAffected() != int64(expiredDays*benchRowsPerDay) {
			b.Fatalf("inserted %d rows, want %d", tag.RowsAffected(), expiredDays*benchRowsPerDay)
		}
		if _, err := conn.Exec(ctx, `ANALYZE `+s+`.events`); err != nil {
			b.Fatal(err)
		}
	}
	keepFrom := midnight(daysAgo(30))

	for _, bc := range []struct {
		name string
		op   func(b *testing.B)
	}{
		{"drop-partitions", func(b *testing.B) {
			for d := first; !d.After(last); d = d.AddDate(0, 0, 1) {
				if _, err := conn.Exec(ctx, `DROP TABLE `+pgx.Identifier{creds.Schema, storage.PartitionName(d)}.Sanitize()); err != nil {
					b.Fatal(err)
				}
			}
		}},
		{"delete-rows", func(b *testing.B) {
			if _, err := conn.Exec(ctx, `DELETE FROM `+s+`.events WHERE received_at < $1`, keepFrom); err != nil {
				b.Fatal(err)
			}
		}},
		{"delete-rows+vacuum", func(b *testing.B) {
			if _, err := conn.Exec(ctx, `DELETE FROM `+s+`.events WHERE received_at < $1`, keepFrom); err != nil {
				b.Fatal(err)
			}
			if _, err := conn.Exec(ctx, `VACUUM `+s+`.events`); err != nil {
				b.Fatal(err)
			}
		}},
		{"run-retention", func(b *testing.B) {
			sum, err := storage.RunRetention(ctx, conn, creds.Schema, 30, retentionNow)
			if err != nil {
				b.Fatal(err)
			}
			if sum.PartitionsDropped != expiredDays {
				b.Fatalf("dropped %d partitions, want %d", sum.PartitionsDropped, expiredDays)
			}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var walBytes float64
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				refill(b)
				before := walLSN(b, conn)
				b.StartTimer()
				bc.op(b)
				b.StopTimer()
				walBytes += walDiff(b, conn, before)
				b.StartTimer()
			}
			var left int64
			b.StopTimer()
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+s+`.events WHERE received_at < $1`, keepFrom).Scan(&left); err != nil || left != 0 {
				b.Fatalf("%d expired rows left (%v)", left, err)
			}
			b.ReportMetric(float64(expiredDays*benchRowsPerDay), "rows/op")
			b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N)/float64(expiredDays), "ms/day")
			b.ReportMetric(walBytes/float64(b.N)/(1<<20), "WAL-MB/op")
		})
	}
}

func walLSN(b *testing.B, conn *pgx.Conn) string {
	b.Helper()
	var lsn string
	if err := conn.QueryRow(context.Background(), `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		b.Fatal(err)
	}
	return lsn
}

func walDiff(b *testing.B, conn *pgx.Conn, since string) float64 {
	b.Helper()
	var n float64
	if err := conn.QueryRow(context.Background(), `SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::pg_lsn)`, since).Scan(&n); err != nil {
		b.Fatal(err)
	}
	return n
}

// reprovisionNeighbours is how many tenants with a year of daily partitions
// each BenchmarkReprovision puts beside the one it provisions again.
const reprovisionNeighbours = 20

// BenchmarkReprovision times Provision of a tenant whose storage is there
// and filled in (a year of daily partitions): what a converged tenant's
// periodic verification costs. alone is the floor, the database holding
// only that tenant; beside-N is the same with N more tenants like it in the
// database. Provisioning must not read the whole catalog: with a scan of a
// schema's relations in pg_class it took 0.8 s beside 40 tenants and 5.7 s
// beside 1,000 (make bench-scale-pg), against about 10 ms alone.
func BenchmarkReprovision(b *testing.B) {
	ctx := context.Background()
	st := openStore(b, srv.AdminConfig("us"))
	admin, err := srv.Connect(ctx, "us")
	if err != nil {
		b.Fatal(err)
	}
	defer admin.Close(ctx)
	today := time.Now().UTC().Truncate(24 * time.Hour)
	filledIn := func(name string) storage.Provisioned {
		creds, err := st.Provision(ctx, name, storage.ProvisionOptions{})
		if err != nil {
			b.Fatal(err)
		}
		err = pgx.BeginFunc(ctx, admin, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{creds.Owner.Schema}.Sanitize()); err != nil {
				return err
			}
			_, err := storage.EnsureDayPartitions(ctx, tx, creds.Owner.Schema, today.AddDate(0, 0, -365), today)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		return creds
	}
	name := newTenantName("reprovision")
	creds := filledIn(name)
	again := func(b *testing.B) {
		var relations float64
		if err := admin.QueryRow(ctx, `SELECT count(*) FROM pg_class`).Scan(&relations); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := st.Provision(ctx, name, storage.ProvisionOptions{
				ExistingPassword: creds.Owner.Password, ExistingIngestPassword: creds.Ingest.Password}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(relations, "relations")
		b.ReportMetric(float64(b.Elapsed().Microseconds())/1000/float64(b.N), "ms/op")
	}
	b.Run("alone", again)
	for range reprovisionNeighbours {
		filledIn(newTenantName("neighbour"))
	}
	b.Run(fmt.Sprintf("beside-%d", reprovisionNeighbours), again)
}
