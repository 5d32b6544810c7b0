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
	"fmt"
	"maps"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// event is one raw event as the tests write it; "" and a visitorID of 0
// are NULL.
type event struct {
	at                                               time.Time
	name, host, path, country, referrer, utm, source string
	visitorID                                        int64
}

// eventsOn makes n varied events within the UTC day of t.
func eventsOn(t time.Time, n int) []event {
	day := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
	names := []string{"pageview", "pageview", "pageview", "signup"}
	hosts := []string{"acme.com", "shop.acme.com", ""}
	paths := []string{"/", "/pricing?utm_campaign=spring", "/blog/post", "", "/pricing"}
	countries := []string{"DE", "FR", "US", "", "DE"}
	// Ingest stores a referrer's host; full URLs are rows written another
	// way, which the roll-up reduces to their host too.
	referrers := []string{"", "www.google.com", "https://news.ycombinator.com/item?id=1", "android-app://x", "News.Example"}
	utms := []string{"", "", "", "Newsletter", "", "", ""}
	sources := []string{"", "", "", "", "", "google", "", "", "", "", ""}
	evs := make([]event, n)
	for i := range evs {
		evs[i] = event{
			at:        day.Add(time.Duration(i*997%1440) * time.Minute),
			name:      names[i%len(names)],
			host:      hosts[i%len(hosts)],
			source:    sources[i%len(sources)],
			visitorID: int64(1 + i%7),
			path:      paths[i%len(paths)],
			country:   countries[i%len(countries)],
			referrer:  referrers[i%len(referrers)],
			utm:       utms[i%len(utms)],
		}
		if i%11 == 0 {
			evs[i].visitorID = 0 // some events without a visitor
		}
	}
	return evs
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// insertEvents writes evs as the tenant, making their day partitions first.
func insertEvents(t testing.TB, conn *pgx.Conn, schema string, evs []event) {
	t.Helper()
	ctx := testContext(t)
	for _, e := range evs {
		if _, err := storage.EnsureDayPartitions(ctx, conn, schema, e.at, e.at); err != nil {
			t.Fatalf("making the partition for %s: %v", e.at, err)
		}
	}
	rows := make([][]any, len(evs))
	for i, e := range evs {
		var visitorID any
		if e.visitorID != 0 {
			visitorID = e.visitorID
		}
		rows[i] = []any{e.at, e.name, visitorID, nullable(e.host), nullable(e.path), nullable(e.country), nullable(e.referrer),
			nullable(e.utm), nullable(e.source)}
	}
	_, err := conn.CopyFrom(ctx, pgx.Identifier{schema, "events"},
		[]string{"received_at", "event_name", "visitor_id", "hostname", "url_path", "country", "referrer", "utm_source", "attribution_source"},
		pgx.CopyFromRows(rows))
	if err != nil {
		t.Fatalf("inserting events: %v", err)
	}
}

type aggKey struct{ day, host, path, country, source string }
type aggVal struct{ pageviews, visitors, events int64 }

// expectedAggregates computes, in Go and independently of the SQL under
// test, the daily_aggregates rows evs should roll into.
func expectedAggregates(evs []event) map[aggKey]aggVal {
	visitors := map[aggKey]map[string]bool{}
	out := map[aggKey]aggVal{}
	for _, e := range evs {
		source := strings.ToLower(e.source)
		if source == "" {
			source = strings.ToLower(e.utm)
		}
		if source == "" && e.referrer != "" {
			source = strings.ToLower(e.referrer)
			if u, err := url.Parse(e.referrer); err == nil && strings.Contains(e.referrer, "://") {
				source = strings.ToLower(u.Hostname())
			}
		}
		if source == "" {
			source = "(direct)"
		}
		path, _, _ := strings.Cut(e.path, "?")
		k := aggKey{e.at.UTC().Format(time.DateOnly), e.host, path, e.country, source}
		v := out[k]
		v.events++
		if e.name == "pageview" {
			v.pageviews++
		}
		if visitors[k] == nil {
			visitors[k] = map[string]bool{}
		}
		if e.visitorID != 0 {
			visitors[k][fmt.Sprint(e.visitorID)] = true
		}
		v.visitors = int64(len(visitors[k]))
		out[k] = v
	}
	return out
}

func readAggregates(t testing.TB, conn *pgx.Conn, schema string) map[aggKey]aggVal {
	t.Helper()
	rows, err := conn.Query(testContext(t), `SELECT day::text, hostname, path, country, referrer_source, pageviews, visitors, events
		FROM `+pgx.Identifier{schema, "daily_aggregates"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	out := map[aggKey]aggVal{}
	var k aggKey
	var v aggVal
	_, err = pgx.ForEachRow(rows, []any{&k.day, &k.host, &k.path, &k.country, &k.source, &v.pageviews, &v.visitors, &v.events}, func() error {
		out[k] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawCountOn counts the raw events of t's UTC day.
func rawCountOn(t testing.TB, conn *pgx.Conn, schema string, day time.Time) int64 {
	t.Helper()
	start := time.Date(day.Year(), day.Month(), day.Day(), 0, 0, 0, 0, time.UTC)
	var n int64
	err := conn.QueryRow(testContext(t), `SELECT count(*) FROM `+pgx.Identifier{schema, "events"}.Sanitize()+`
		WHERE received_at >= $1 AND received_at < $2`, start, start.AddDate(0, 0, 1)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func partitionCount(t testing.TB, conn *pgx.Conn, schema string) int {
	t.Helper()
	var n int
	err := conn.QueryRow(testContext(t), `SELECT count(*) FROM pg_inherits WHERE inhparent = to_regclass($1)`,
		schema+".events").Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// retentionTenant provisions a tenant whose clock is now and connects as it.
func retentionTenant(t testing.TB, prefix string, now time.Time) (storage.Credentials, *pgx.Conn) {
	t.Helper()
	st := openStore(t, srv.AdminConfig("EU"), storage.WithClock(func() time.Time { return now }))
	_, p := provision(t, st, prefix)
	return p.Owner, tenantConn(t, p.Owner)
}

var retentionNow = time.Date(2026, 5, 17, 10, 30, 0, 0, time.UTC)

func daysAgo(n int) time.Time { return retentionNow.AddDate(0, 0, -n) }

func TestRetentionKeepsThePlansWindowAndRollsUpTheRest(t *testing.T) {
	for _, tc := range []struct {
		name     string
		days     int
		keptAges []int
		goneAges []int
	}{
		{"a 30-day plan keeps an event 29 days old and drops one 31 days old", 30, []int{0, 1, 29, 30}, []int{31, 45}},
		{"a 90-day plan keeps events 31 and 89 days old", 90, []int{0, 31, 89, 90}, []int{91, 200}},
		{"a 365-day plan keeps events 91 and 364 days old", 365, []int{31, 91, 364, 365}, []int{366}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			creds, conn := retentionTenant(t, "ret", retentionNow)
			var all, gone []event
			perDay := map[int]int64{}
			for i, age := range append(append([]int{}, tc.keptAges...), tc.goneAges...) {
				evs := eventsOn(daysAgo(age), 40+i*7)
				perDay[age] = int64(len(evs))
				all = append(all, evs...)
				if i >= len(tc.keptAges) {
					gone = append(gone, evs...)
				}
			}
			insertEvents(t, conn, creds.Schema, all)
			for age, n := range perDay {
				if got := rawCountOn(t, conn, creds.Schema, daysAgo(age)); got != n {
					t.Fatalf("set-up: %d events %d days ago, want %d", got, age, n)
				}
			}
			partitionsBefore := partitionCount(t, conn, creds.Schema)

			sum, err := storage.RunRetention(ctx, conn, creds.Schema, tc.days, retentionNow)
			if err != nil {
				t.Fatalf("RunRetention: %v", err)
			}
			if sum.Skipped || sum.DaysRolledUp != len(tc.goneAges) || sum.PartitionsDropped != len(tc.goneAges) ||
				sum.PartitionsCreated != 0 || sum.EventsRolledUp != int64(len(gone)) {
				t.Errorf("summary %+v, want %d days rolled up and dropped, %d events, nothing created",
					sum, len(tc.goneAges), len(gone))
			}
			if got := partitionCount(t, conn, creds.Schema); got != partitionsBefore-len(tc.goneAges) {
				t.Errorf("%d partitions left, want %d", got, partitionsBefore-len(tc.goneAges))
			}
			oldestKept := eventsOn(daysAgo(tc.keptAges[len(tc.keptAges)-1]), 1)[0].at
			if sum.OldestRawEvent == nil || !sum.OldestRawEvent.Equal(oldestKept) {
				t.Errorf("oldest raw event %v, want %v", sum.OldestRawEvent, oldestKept)
			}
			for _, age := range tc.keptAges {
				if got := rawCountOn(t, conn, creds.Schema, daysAgo(age)); got != perDay[age] {
					t.Errorf("%d events %d days old left, want all %d kept", got, age, perDay[age])
				}
			}
			for _, age := range tc.goneAges {
				if got := rawCountOn(t, conn, creds.Schema, daysAgo(age)); got != 0 {
					t.Errorf("%d raw events %d days old left, want none", got, age)
				}
			}
			want := expectedAggregates(gone)
			got := readAggregates(t, conn, creds.Schema)
			if !maps.Equal(got, want) {
				t.Errorf("daily_aggregates\n got %v\nwant %v", got, want)
			}
			for _, age := range tc.goneAges {
				var raw int64
				err := conn.QueryRow(ctx, `SELECT raw_events FROM `+creds.Schema+`.rollup_ledger WHERE day = $1`,
					daysAgo(age)).Scan(&raw)
				if err != nil || raw != perDay[age] {
					t.Errorf("ledger for %d days ago: %d raw events (%v), want %d", age, raw, err, perDay[age])
				}
			}

			again, err := storage.RunRetention(ctx, conn, creds.Schema, tc.days, retentionNow)
			if err != nil {
				t.Fatalf("second RunRetention: %v", err)
			}
			if again.DaysRolledUp+again.PartitionsDropped+again.PartitionsCreated != 0 || again.Skipped {
				t.Errorf("second run did something: %+v", again)
			}
			if got2 := readAggregates(t, conn, creds.Schema); !maps.Equal(got2, got) {
				t.Errorf("second run changed daily_aggregates")
			}
		})
	}
}

func TestRetentionRunsOneAtATime(t *testing.T) {
	ctx := testContext(t)
	creds, conn := retentionTenant(t, "once", retentionNow)
	var gone []event
	for age := 40; age < 45; age++ {
		gone = append(gone, eventsOn(daysAgo(age), 30)...)
	}
	insertEvents(t, conn, creds.Schema, gone)
	partitions := partitionCount(t, conn, creds.Schema)

	t.Run("a run while another holds the lock skips and does nothing", func(t *testing.T) {
		holder := tenantConn(t, creds)
		if locked, err := storage.HoldRetentionLock(ctx, holder, creds.Schema); err != nil || !locked {
			t.Fatalf("holding the retention lock: %v, %v", locked, err)
		}
		sum, err := storage.RunRetention(ctx, conn, creds.Schema, 30, retentionNow)
		if err != nil {
			t.Fatal(err)
		}
		if !sum.Skipped || sum.PartitionsDropped != 0 || sum.DaysRolledUp != 0 {
			t.Errorf("summary %+v, want skipped with nothing done", sum)
		}
		if got := partitionCount(t, conn, creds.Schema); got != partitions {
			t.Errorf("%d partitions after a skipped run, want %d", got, partitions)
		}
		if _, err := holder.Exec(ctx, `ROLLBACK`); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("four runs at once do the work of one", func(t *testing.T) {
		conns := make([]*pgx.Conn, 4)
		for i := range conns {
			conns[i] = tenantConn(t, creds)
		}
		sums := make([]storage.RetentionSummary, len(conns))
		errs := make([]error, len(conns))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range conns {
			wg.Go(func() {
				<-start
				sums[i], errs[i] = storage.RunRetention(ctx, conns[i], creds.Schema, 30, retentionNow)
			})
		}
		close(start)
		wg.Wait()
		rolled, dropped := 0, 0
		for i := range sums {
			if errs[i] != nil {
				t.Errorf("run %d: %v", i, errs[i])
			}
			rolled += sums[i].DaysRolledUp
			dropped += sums[i].PartitionsDropped
		}
		if rolled != 5 || dropped != 5 {
			t.Errorf("runs rolled up %d and dropped %d days in all, want 5 and 5: %+v", rolled, dropped, sums)
		}
		if got, want := readAggregates(t, conn, creds.Schema), expectedAggregates(gone); !maps.Equal(got, want) {
			t.Errorf("daily_aggregates\n got %v\nwant %v", got, want)
		}
	})
}

func TestRetentionCountsADayOnce(t *testing.T) {
	ctx := testContext(t)
	creds, conn := retentionTenant(t, "ledger", retentionNow)
	day := daysAgo(60)
	insertEvents(t, conn, creds.Schema, eventsOn(day, 25))
	// As if an earlier run had rolled the day up: the ledger has it.
	if _, err := conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.rollup_ledger (day, raw_events) VALUES ($1, 25)`, day); err != nil {
		t.Fatal(err)
	}
	sum, err := storage.RunRetention(ctx, conn, creds.Schema, 30, retentionNow)
	if err != nil {
		t.Fatal(err)
	}
	if sum.DaysRolledUp != 0 || sum.PartitionsDropped != 1 {
		t.Errorf("summary %+v, want the partition dropped without a second roll-up", sum)
	}
	if got := readAggregates(t, conn, creds.Schema); len(got) != 0 {
		t.Errorf("a day already in the ledger was added to daily_aggregates again: %v", got)
	}
}

func TestRetentionMakesPartitionsAsTheClockMoves(t *testing.T) {
	ctx := testContext(t)
	creds, conn := retentionTenant(t, "ahead", retentionNow)
	sum, err := storage.RunRetention(ctx, conn, creds.Schema, 30, retentionNow.AddDate(0, 0, 3))
	if err != nil {
		t.Fatal(err)
	}
	if sum.PartitionsCreated != 3 || sum.OldestRawEvent != nil {
		t.Errorf("summary %+v, want 3 partitions created and no raw event", sum)
	}
	var name string
	if err := conn.QueryRow(ctx, `SELECT max(c.relname) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = to_regclass($1)`, creds.Schema+".events").Scan(&name); err != nil {
		t.Fatal(err)
	}
	if want := storage.PartitionName(retentionNow.AddDate(0, 0, 3+storage.FuturePartitionDays)); name != want {
		t.Errorf("newest partition %s, want %s", name, want)
	}
}

func TestRetentionRunsOnlyAsTheTenant(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"))
	_, a := provision(t, st, "own-a")
	_, b := provision(t, st, "own-b")
	for _, tc := range []struct {
		name string
		conn func() *pgx.Conn
	}{
		{"a superuser is refused", func() *pgx.Conn { return adminConn(t) }},
		{"another tenant is refused", func() *pgx.Conn { return tenantConn(t, a.Owner) }},
		{"the tenant's own ingest role is refused", func() *pgx.Conn { return tenantConn(t, b.Ingest) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := storage.RunRetention(ctx, tc.conn(), b.Owner.Schema, 30, time.Now())
			if r := storage.ReasonFor(err); r != storage.ReasonPermissionDenied {
				t.Errorf("got %v (reason %q), want %q", err, r, storage.ReasonPermissionDenied)
			}
		})
	}
	t.Run("its own tenant may", func(t *testing.T) {
		if _, err := storage.RunRetention(ctx, tenantConn(t, b.Owner), b.Owner.Schema, 30, time.Now()); err != nil {
			t.Error(err)
		}
	})
}

func TestRetentionCountsVisitorsByVisitorIDAndEventsWithoutOneAsNone(t *testing.T) {
	ctx := testContext(t)
	creds, conn := retentionTenant(t, "visitors", retentionNow)
	day := daysAgo(40)
	at := time.Date(day.Year(), day.Month(), day.Day(), 12, 0, 0, 0, time.UTC)
	ev := func(visitorID int64) event {
		return event{at: at, name: "pageview", path: "/", country: "DE", visitorID: visitorID}
	}
	evs := []event{
		// One visitor on three events.
		ev(101), ev(101), ev(101),
		// Another on two.
		ev(102), ev(102),
		// Events without a visitor id (Plausible's script) count none.
		ev(0), ev(0),
	}
	insertEvents(t, conn, creds.Schema, evs)

	sum, err := storage.RunRetention(ctx, conn, creds.Schema, 30, retentionNow)
	if err != nil {
		t.Fatal(err)
	}
	if sum.DaysRolledUp != 1 || sum.EventsRolledUp != int64(len(evs)) {
		t.Fatalf("summary %+v, want the day and its %d events rolled up", sum, len(evs))
	}
	got := readAggregates(t, conn, creds.Schema)
	key := aggKey{day.Format(time.DateOnly), "", "/", "DE", "(direct)"}
	if got[key].visitors != 2 || got[key].pageviews != int64(len(evs)) {
		t.Errorf("visitors, pageviews = %d, %d; want 2, %d: %v", got[key].visitors, got[key].pageviews, len(evs), got)
	}
	if want := expectedAggregates(evs); !maps.Equal(got, want) {
		t.Errorf("daily_aggregates\n got %v\nwant %v", got, want)
	}
}

func TestRetentionLeavesASchemaItDoesNotKnowForTheOperatorToMigrate(t *testing.T) {
	ctx := testContext(t)
	st := openStore(t, srv.AdminConfig("EU"), storage.WithSchemaVersion(1))
	_, p := provision(t, st, "ret-v1")
	_, err := storage.RunRetention(ctx, tenantConn(t, p.Owner), p.Owner.Schema, 30, retentionNow)
	if r := storage.ReasonFor(err); r != storage.ReasonIncompatibleSchema {
		t.Errorf("got %v (reason %q), want %q", err, r, storage.ReasonIncompatibleSchema)
	}
}
