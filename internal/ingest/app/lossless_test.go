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
	"fmt"
	"log/slog"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/millimetric/tenant-operator/internal/ingest/app"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/metrics"
	"github.com/millimetric/tenant-operator/internal/ingest/writer"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// largeEvent is a pageview with props near their limits: some 3 KiB of
// JSON.
func largeEvent(i int) string {
	props := map[string]string{}
	for k := range 25 {
		props["key"+strconv.Itoa(k)] = strings.Repeat(strconv.Itoa(k%10), 100)
	}
	ev := map[string]any{"n": "Signup", "u": fmt.Sprintf("https://acme.test/%d?utm_source=%s", i, strings.Repeat("s", 200)),
		"d": "acme.test", "t": strings.Repeat("T", 300), "p": props}
	b, _ := json.Marshal(ev)
	return string(b)
}

// heapInUse is the live heap after a collection.
func heapInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// TestABurstOfLargeEventsStaysWithinTheBuffersBytes: with the database
// gone, a burst of the largest events fills the buffer up to its bytes,
// then is answered 503; the memory the waiting events hold is what the
// buffer allows, not their number times their size.
func TestABurstOfLargeEventsStaysWithinTheBuffersBytes(t *testing.T) {
	creds := provision(t, "burst")
	proxy := srv.NewProxy(t)
	creds.Port = int32(proxy.Port)
	const capacity = 4 << 20
	svc := startService(t, creds, tenantConfig("burst", 0), func(o *app.Options) {
		o.BufferBytes = capacity
		o.MaxBodyBytes = 64 << 10
	})
	proxy.Cut()
	before := heapInUse()
	accepted, refused := 0, 0
	for i := 0; refused < 50 && i < 20000; i++ {
		switch a := svc.send(t, "", firefox, largeEvent(i)); a.status {
		case http.StatusAccepted:
			accepted++
		case http.StatusServiceUnavailable:
			refused++
		default:
			t.Fatalf("event %d: %d %s", i, a.status, a.body)
		}
	}
	grown := int64(heapInUse()) - int64(before)
	m := svc.get(t, "/metrics")
	t.Logf("%d large events accepted before 503; the live heap grew by %d KiB for a %d KiB buffer", accepted, grown>>10, capacity>>10)
	if refused == 0 || accepted == 0 {
		t.Fatalf("%d accepted, %d refused: the buffer never filled", accepted, refused)
	}
	// The events' bytes, what the buffer counts, and then the heap.
	if held := gauge(t, m, "ingest_buffer_bytes"); held > capacity || held < capacity*9/10 {
		t.Errorf("ingest_buffer_bytes = %d, want the buffer full to at most %d", held, capacity)
	}
	if grown > 2*capacity {
		t.Errorf("the live heap grew by %d bytes for a buffer of %d", grown, capacity)
	}
	proxy.Restore()
	waitRows(t, creds.Schema, accepted)
}

// gauge reads an unlabelled metric's value from a /metrics page.
func gauge(t *testing.T, page, name string) int64 {
	t.Helper()
	for _, l := range strings.Split(page, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return int64(f)
		}
	}
	t.Fatalf("no %s in the metrics", name)
	return 0
}

// TestAPoisonRowDoesNotBlockTheRowsBehindIt: a row the database refuses
// (here a title that is not UTF-8, which Reduce would have dropped, put in
// by hand) is set aside and counted; the rows before and after it in its
// batch are written, and the writer goes on.
func TestAPoisonRowDoesNotBlockTheRowsBehindIt(t *testing.T) {
	creds := provision(t, "poison")
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	w := writer.New(writer.Options{
		Connect:       func(ctx context.Context) (*pgx.Conn, error) { return storage.ConnectIngest(ctx, creds) },
		Schema:        creds.Schema,
		FlushRows:     100,
		FlushInterval: 50 * time.Millisecond,
		Metrics:       m,
		Log:           slog.New(slog.DiscardHandler),
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	for i := range 41 {
		k := event.Kept{ReceivedAt: time.Now(), Name: "pageview", Hostname: "acme.test", Path: fmt.Sprintf("/%d", i)}
		if i == 17 {
			k.Title = "caf\xe9" // Latin-1: PostgreSQL refuses it (22021)
		}
		if err := w.Add(k); err != nil {
			t.Fatal(err)
		}
	}
	waitRows(t, creds.Schema, 40)
	if got := testutil.ToFloat64(m.Rejected); got != 1 {
		t.Errorf("ingest_events_rejected_total = %v, want 1", got)
	}
	if err := w.Add(event.Kept{ReceivedAt: time.Now(), Name: "pageview", Path: "/after"}); err != nil {
		t.Fatal(err)
	}
	waitRows(t, creds.Schema, 41)
	if err := w.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestABlackHoledDatabaseMakesThePodUnreadyAndLosesNothing: the
// connection to the database passes no byte (no error, no reset). Either
// of two things turns /readyz 503, and each is tested with the other out of
// the way: the batch deadline, which gives the connection up (and the
// next round trip fails too), and the wedge check, events waiting with
// nothing written for too long. When the network is back every accepted
// event is written and the pod is ready again.
func TestABlackHoledDatabaseMakesThePodUnreadyAndLosesNothing(t *testing.T) {
	for _, tc := range []struct {
		name                      string
		batchTimeout, wedgedAfter time.Duration
	}{
		{"by the batch deadline", 500 * time.Millisecond, time.Hour},
		{"by the wedge check", time.Hour, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			creds := provision(t, "blackhole")
			proxy := srv.NewProxy(t)
			creds.Port = int32(proxy.Port)
			svc := startService(t, creds, tenantConfig("blackhole", 0), func(o *app.Options) {
				o.BatchTimeout, o.WedgedAfter = tc.batchTimeout, tc.wedgedAfter
			})
			proxy.BlackHole()
			const n = 30
			for i := range n {
				if a := svc.send(t, "", firefox, pageview("acme.test", fmt.Sprintf("https://acme.test/%d", i))); a.status != http.StatusAccepted {
					t.Fatalf("event %d: %d %s", i, a.status, a.body)
				}
			}
			svc.waitUnready(t, "the writer stuck on a black-holed connection")
			proxy.Restore()
			waitRows(t, creds.Schema, n)
			svc.waitReady(t)
		})
	}
}
