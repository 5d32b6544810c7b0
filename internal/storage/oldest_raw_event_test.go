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
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// startOfDay is 00:00 UTC of t's UTC day.
func startOfDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}

// The operator proves retention by reading, as the region's administrator,
// the oldest day that still holds raw events. Each step below changes the
// tenant's events as the tenant (or its retention run) would, and says what
// the administrator must then read.
func TestTheOldestRawEventDayIsTheOldestPartitionHoldingARow(t *testing.T) {
	for _, admin := range []struct {
		name string
		cfg  storage.AdminConfig
	}{
		{"read by a superuser administrator", srv.AdminConfig("EU")},
		{"read by a CREATEROLE-only administrator", srv.LimitedAdminConfig("EU")},
	} {
		t.Run(admin.name, func(t *testing.T) {
			ctx := testContext(t)
			st := openStore(t, admin.cfg, storage.WithClock(func() time.Time { return retentionNow }))
			name, p := provision(t, st, "oldest")
			schema := p.Owner.Schema
			conn := tenantConn(t, p.Owner)

			steps := []struct {
				name   string
				change func(t *testing.T)
				want   *time.Time
			}{
				{"a new schema, with only the partitions made ahead of time, holds none", nil, nil},
				{"an empty partition of a past day holds none",
					func(t *testing.T) {
						if _, err := storage.EnsureDayPartitions(ctx, conn, schema, daysAgo(50), daysAgo(50)); err != nil {
							t.Fatal(err)
						}
					}, nil},
				{"an event of a day after today is not looked for",
					func(t *testing.T) { insertEvents(t, conn, schema, eventsOn(daysAgo(-2), 3)) }, nil},
				{"events 40 and 10 days old: the day 40 days ago",
					func(t *testing.T) {
						insertEvents(t, conn, schema, append(eventsOn(daysAgo(40), 5), eventsOn(daysAgo(10), 5)...))
					}, ptr(startOfDay(daysAgo(40)))},
				{"once the events 40 days old are deleted (their partition still has pages), the day 10 days ago",
					func(t *testing.T) {
						if _, err := conn.Exec(ctx, `DELETE FROM `+pgx.Identifier{schema, storage.PartitionName(daysAgo(40))}.Sanitize()); err != nil {
							t.Fatal(err)
						}
					}, ptr(startOfDay(daysAgo(10)))},
				{"once retention with a 5-day window has dropped the older days, today's",
					func(t *testing.T) {
						insertEvents(t, conn, schema, eventsOn(daysAgo(0), 2))
						sum, err := storage.RunRetention(ctx, conn, schema, 5, retentionNow)
						if err != nil || sum.PartitionsDropped != 3 {
							t.Fatalf("retention: %+v, %v; want the days 50, 40 and 10 days ago dropped", sum, err)
						}
					}, ptr(startOfDay(retentionNow))},
			}
			for _, step := range steps {
				t.Run(step.name, func(t *testing.T) {
					if step.change != nil {
						step.change(t)
					}
					got, err := st.OldestRawEventDay(ctx, name)
					if err != nil {
						t.Fatalf("OldestRawEventDay: %v", err)
					}
					switch {
					case step.want == nil && got != nil:
						t.Errorf("oldest raw event day %s, want none", got.Format(time.RFC3339))
					case step.want != nil && (got == nil || !got.Equal(*step.want)):
						t.Errorf("oldest raw event day %v, want %s", got, step.want.Format(time.RFC3339))
					}
				})
			}
		})
	}

	t.Run("a tenant that was never provisioned holds none", func(t *testing.T) {
		st := openStore(t, srv.LimitedAdminConfig("EU"))
		got, err := st.OldestRawEventDay(testContext(t), newTenantName("never"))
		if err != nil || got != nil {
			t.Errorf("got %v, %v; want none and no error", got, err)
		}
	})
}

func ptr[T any](v T) *T { return &v }
