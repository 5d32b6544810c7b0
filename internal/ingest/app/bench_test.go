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
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/ingest/app"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/writer"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// BenchmarkIngest measures the service end to end, over HTTP on loopback
// into PostgreSQL, beside its floor in the same run: a plain pgx COPY of
// as many rows into the same table. It then measures request latency at
// half the peak rate. INGEST_BENCH_EVENTS sets the number of events
// (default 200000). Run it with `make bench-ingest`.
func BenchmarkIngest(b *testing.B) {
	n := 200000
	if s := os.Getenv("INGEST_BENCH_EVENTS"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1000 {
			b.Fatalf("INGEST_BENCH_EVENTS=%q is not a number of at least 1000", s)
		}
		n = v
	}
	for range b.N {
		creds := provision(b, "bench")
		svc := startBenchService(b, creds)
		host := strings.TrimPrefix(svc.url, "http://")

		// Peak: as fast as workers on keep-alive connections can send.
		const workers = 32
		start := time.Now()
		var next, refused atomic.Int64
		var wg sync.WaitGroup
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c, err := dial(host)
				if err != nil {
					refused.Add(1)
					return
				}
				defer c.close()
				for {
					i := next.Add(1) - 1
					if i >= int64(n) {
						return
					}
					if status, err := c.post(i); err != nil || status != http.StatusAccepted {
						refused.Add(1)
					}
				}
			}()
		}
		wg.Wait()
		answered := time.Since(start)
		if refused.Load() > 0 {
			b.Fatalf("%d of %d events were not accepted at peak", refused.Load(), n)
		}
		waitRows(b, creds.Schema, n)
		elapsed := time.Since(start)
		peak := float64(n) / elapsed.Seconds()

		// Floor: the same number of rows, one pgx COPY into the same table.
		floor := copyFloor(b, creds, n)

		// Latency at half the peak rate, open loop for 5 seconds.
		lat := latencyAt(b, host, peak/2, 5*time.Second)
		_ = svc.shutdown()

		b.ReportMetric(peak, "events/s")
		b.ReportMetric(floor, "copy-floor-rows/s")
		b.ReportMetric(peak/floor, "ratio")
		b.ReportMetric(float64(lat.p99.Microseconds())/1000, "p99-ms@half-peak")
		fmt.Printf("\ningest end to end, %d events, 2 cores shared by load, service and PostgreSQL:\n"+
			"  %-44s %10.0f events/s  (all answered in %s, all written in %s)\n"+
			"  %-44s %10.0f rows/s\n"+
			"  %-44s %10.2f\n"+
			"  %-44s p50 %s  p99 %s  (%d requests at %.0f/s)\n",
			n, "HTTP → buffer → COPY (202 to row committed)", peak, answered.Round(time.Millisecond), elapsed.Round(time.Millisecond),
			"floor: one pgx COPY of the same rows", floor,
			"ratio (goal ≥ 0.5)", peak/floor,
			"latency at half the peak rate", lat.p50.Round(10*time.Microsecond), lat.p99.Round(10*time.Microsecond), lat.count, peak/2)
	}
}

func startBenchService(b *testing.B, creds storage.Credentials) *service {
	b.Helper()
	return startService(b, creds, tenantConfig("bench", 0), func(o *app.Options) {
		o.BufferBytes = writer.DefaultCapacityBytes
		o.FlushRows = writer.DefaultFlushRows
		o.FlushInterval = writer.DefaultFlushInterval
		o.Now = nil
	})
}

// benchVisitors is how many browsers the load's events come from, each
// with an mm_aid of its own, as the SDK makes them.
const benchVisitors = 5000

// benchIDs are the load's mm_aids: 22 characters of URL-safe base64 of
// 16 bytes, one per visitor.
var benchIDs = func() []string {
	ids := make([]string, benchVisitors)
	for i := range ids {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:8], uint64(i)*0x9e3779b97f4a7c15)
		binary.BigEndian.PutUint64(b[8:], uint64(i)+0x632be59bd9b4e019)
		ids[i] = base64.RawURLEncoding.EncodeToString(b[:])
	}
	return ids
}()

// loadConn is a lean HTTP/1.1 keep-alive client for the load: it writes
// each request with one append and reads the answer's status line and
// headers by hand, so the load costs the 2 cores as little as it can and
// most of the CPU goes to the service and PostgreSQL being measured.
type loadConn struct {
	conn net.Conn
	r    *bufio.Reader
	buf  []byte
	host string
}

func dial(host string) (*loadConn, error) {
	c, err := net.Dial("tcp", host)
	if err != nil {
		return nil, err
	}
	return &loadConn{conn: c, r: bufio.NewReaderSize(c, 4096), host: host}, nil
}

func (c *loadConn) close() { _ = c.conn.Close() }

// post sends event i, as the SDK sends a pageview, from an address and a
// browser of its own (one of benchVisitors) and returns the status.
func (c *loadConn) post(i int64) (int, error) {
	body := fmt.Appendf(nil, `{"n":"pageview","u":"https://acme.test/docs/%d?utm_source=bench&x=1","d":"acme.test","r":"https://search.example/?q=x","t":"Docs %d · Acme","aid":"%s"}`,
		i%5000, i%5000, benchIDs[i%benchVisitors])
	c.buf = fmt.Appendf(c.buf[:0], "POST /api/event HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nContent-Type: text/plain\r\n"+
		"X-Forwarded-For: 10.%d.%d.%d\r\nContent-Length: %d\r\n\r\n%s",
		c.host, firefox, (i>>16)&255, (i>>8)&255, i&255, len(body), body)
	if _, err := c.conn.Write(c.buf); err != nil {
		return 0, err
	}
	status, length := 0, 0
	for first := true; ; first = false {
		line, err := c.r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		l := strings.TrimRight(string(line), "\r\n")
		switch {
		case first:
			if len(l) < 12 {
				return 0, fmt.Errorf("bad status line %q", l)
			}
			status, _ = strconv.Atoi(l[9:12])
		case l == "":
			_, err := c.r.Discard(length)
			return status, err
		case strings.HasPrefix(strings.ToLower(l), "content-length:"):
			length, _ = strconv.Atoi(strings.TrimSpace(l[len("content-length:"):]))
		}
	}
}

// copyFloor writes n rows like the service's with one COPY, as the ingest
// role, and returns rows per second.
func copyFloor(b *testing.B, creds storage.Credentials, n int) float64 {
	b.Helper()
	ctx := context.Background()
	conn, err := storage.ConnectIngest(ctx, creds)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now()
	rows := make([][]any, n)
	for i := range rows {
		rows[i] = writer.Row(event.Kept{
			ReceivedAt: now, Name: "pageview", Hostname: "acme.test", Path: fmt.Sprintf("/docs/%d?utm_source=bench", i%5000),
			Referrer: "search.example", UTMSource: "bench", Source: "bench", Title: fmt.Sprintf("Docs %d · Acme", i%5000),
			Browser: "Firefox", OS: "Linux", Device: "desktop",
			VisitorID: int64(i%benchVisitors) * 7919, HasVisitorID: true,
		})
	}
	start := time.Now()
	if _, err := conn.CopyFrom(ctx, pgx.Identifier{creds.Schema, "events"}, writer.Columns, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	return float64(n) / time.Since(start).Seconds()
}

type latencies struct {
	p50, p99 time.Duration
	count    int
}

// latencyAt sends events at rate per second for d, each on its own
// schedule (open loop) on a pool of connections, and returns the latency
// percentiles, measured from the scheduled send time so that queueing in
// the load generator counts too.
func latencyAt(b *testing.B, host string, rate float64, d time.Duration) latencies {
	b.Helper()
	total := int(rate * d.Seconds())
	interval := time.Duration(float64(time.Second) / rate)
	const conns = 64
	jobs := make(chan time.Time, total)
	var mu sync.Mutex
	var all []time.Duration
	var wg sync.WaitGroup
	var failed atomic.Int64
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := dial(host)
			if err != nil {
				failed.Add(1)
				return
			}
			defer c.close()
			i := int64(1_000_000 + w*total)
			for at := range jobs {
				i++
				status, err := c.post(i)
				lat := time.Since(at)
				if err != nil || status != http.StatusAccepted {
					failed.Add(1)
					continue
				}
				mu.Lock()
				all = append(all, lat)
				mu.Unlock()
			}
		}()
	}
	start := time.Now()
	for i := range total {
		at := start.Add(time.Duration(i) * interval)
		if wait := time.Until(at); wait > 0 {
			time.Sleep(wait)
		}
		jobs <- at
	}
	close(jobs)
	wg.Wait()
	if len(all) == 0 || failed.Load() > 0 {
		b.Fatalf("at half the peak rate %d requests failed, %d succeeded", failed.Load(), len(all))
	}
	slices.Sort(all)
	return latencies{p50: all[len(all)/2], p99: all[len(all)*99/100], count: len(all)}
}
