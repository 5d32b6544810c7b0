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

package app_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// aggregate is a daily_aggregates row: its key and its counters.
type aggregate struct {
	host, path, country, source string
}

type counters struct {
	pageviews, visitors, events                              int64
	engagements, engagedMs, scrollDepthSum, scrollDepthCount int64
}

// TestWhatIngestStoresRollsUpIntoAggregatesThatKeepWhereVisitorsCameFrom
// runs the whole pipeline with no hand-made row: events sent over HTTP to
// a real ingest service (its clock 40 days back), written by it into the
// tenant's schema, then the real retention run of a 30-day plan, and the
// daily_aggregates it leaves. After the window the aggregates are all that
// is left, so what they lose is lost for good: each page is one row per
// host and path whatever campaign brought its visitors, and where visitors
// came from is the attribution source, else the referrer's host.
func TestWhatIngestStoresRollsUpIntoAggregatesThatKeepWhereVisitorsCameFrom(t *testing.T) {
	ctx := testContext(t)
	p := provisionTenant(t, "pipeline")
	schema := p.Owner.Schema
	owner, err := storage.ConnectTenant(ctx, p.Owner)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = owner.Close(context.Background()) })
	past := time.Now().UTC().AddDate(0, 0, -40)
	if _, err := storage.EnsureDayPartitions(ctx, owner, schema, past, past); err != nil {
		t.Fatal(err)
	}
	svc := startService(t, p.Ingest, tenantConfig("pipeline", 0), nil)
	svc.clock.advance(time.Until(past))

	jane, joe := newAnonymousID(t), newAnonymousID(t)
	send := func(ev map[string]any) {
		t.Helper()
		body, _ := json.Marshal(ev)
		if a := svc.send(t, "", firefox, string(body)); a.status != http.StatusAccepted {
			t.Fatalf("%s: %d %s", body, a.status, a.body)
		}
	}
	// Jane comes from a news site to the pricing page of a spring
	// campaign, looks at it again, and signs up.
	send(map[string]any{"n": "pageview", "u": "https://acme.test/pricing?utm_campaign=spring", "d": "acme.test", "r": "https://news.example/item?id=42", "aid": jane})
	send(map[string]any{"n": "pageview", "u": "https://acme.test/pricing", "d": "acme.test", "r": "https://news.example/item?id=42", "aid": jane})
	send(map[string]any{"n": "Signup", "u": "https://acme.test/pricing", "d": "acme.test", "r": "https://news.example/item?id=42", "aid": jane})
	// Plausible's tracker reports her engagement with the page twice:
	// engagement, neither a pageview nor an event of its own.
	send(map[string]any{"n": "engagement", "u": "https://acme.test/pricing", "d": "acme.test", "r": "https://news.example/item?id=42", "sd": 40, "e": 3000, "aid": jane})
	send(map[string]any{"n": "engagement", "u": "https://acme.test/pricing", "d": "acme.test", "r": "https://news.example/item?id=42", "sd": 80, "e": 12000, "aid": jane})
	// Joe follows a newsletter's ?ref= link to the shop, then a tweet's
	// tagged link to the pricing page.
	send(map[string]any{"n": "pageview", "u": "https://shop.acme.test/cart?ref=Newsletter", "d": "shop.acme.test", "aid": joe})
	send(map[string]any{"n": "pageview", "u": "https://acme.test/pricing?utm_source=Twitter", "d": "acme.test", "r": "https://t.co/x", "aid": joe})
	// Someone through Plausible's script, with no id and no referrer; and
	// an ad click.
	send(map[string]any{"n": "pageview", "u": "https://acme.test/pricing", "d": "acme.test"})
	send(map[string]any{"n": "pageview", "u": "https://acme.test/pricing?gclid=abc", "d": "acme.test", "aid": joe})
	waitRows(t, schema, 9)

	sum, err := storage.RunRetention(ctx, owner, schema, 30, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sum.DaysRolledUp != 1 || sum.EventsRolledUp != 9 || sum.OldestRawEvent != nil {
		t.Fatalf("retention: %+v, want one day of 9 raw rows rolled up and no raw event left", sum)
	}
	rows, err := owner.Query(ctx, `SELECT hostname, path, country, referrer_source, pageviews, visitors, events,
		engagements, engaged_ms, scroll_depth_sum, scroll_depth_count FROM `+
		pgx.Identifier{schema, "daily_aggregates"}.Sanitize()+` WHERE day = $1::date`, past)
	if err != nil {
		t.Fatal(err)
	}
	got := map[aggregate]counters{}
	var k aggregate
	var c counters
	if _, err := pgx.ForEachRow(rows, []any{&k.host, &k.path, &k.country, &k.source, &c.pageviews, &c.visitors, &c.events,
		&c.engagements, &c.engagedMs, &c.scrollDepthSum, &c.scrollDepthCount}, func() error {
		got[k] = c
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := map[aggregate]counters{
		{"acme.test", "/pricing", "", "news.example"}: {pageviews: 2, visitors: 1, events: 3,
			engagements: 2, engagedMs: 15000, scrollDepthSum: 120, scrollDepthCount: 2},
		{"shop.acme.test", "/cart", "", "newsletter"}: {pageviews: 1, visitors: 1, events: 1},
		{"acme.test", "/pricing", "", "twitter"}:      {pageviews: 1, visitors: 1, events: 1},
		{"acme.test", "/pricing", "", "(direct)"}:     {pageviews: 1, visitors: 0, events: 1},
		{"acme.test", "/pricing", "", "google"}:       {pageviews: 1, visitors: 1, events: 1},
	}
	if !maps.Equal(got, want) {
		t.Errorf("daily_aggregates of the day:\n got %v\nwant %v", got, want)
	}
}
