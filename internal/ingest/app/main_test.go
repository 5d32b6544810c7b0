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
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/ingest/app"
	"github.com/millimetric/tenant-operator/internal/ingest/config"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/server"
	"github.com/millimetric/tenant-operator/internal/storage"
	"github.com/millimetric/tenant-operator/internal/storage/pgtest"
)

// srv is the package's PostgreSQL server; tests use tenants of their own.
var srv *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &srv)) }

var tenantSeq atomic.Int64

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// provision makes a tenant in the EU database and returns its ingest
// credentials.
func provision(t testing.TB, prefix string) storage.Credentials {
	t.Helper()
	return provisionTenant(t, prefix).Ingest
}

// provisionTenant makes a tenant in the EU database and returns both its
// roles' credentials.
func provisionTenant(t testing.TB, prefix string) storage.Provisioned {
	t.Helper()
	ctx := testContext(t)
	st, err := storage.Open(ctx, srv.AdminConfig("EU"))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(st.Close)
	name := fmt.Sprintf("%s-%d", prefix, tenantSeq.Add(1))
	p, err := st.Provision(ctx, name, storage.ProvisionOptions{})
	if err != nil {
		t.Fatalf("Provision %s: %v", name, err)
	}
	return p
}

// tenantConfig is a tenant's ingest configuration as the operator renders
// it for the domains given.
func tenantConfig(name string, perMinute int32) config.Tenant {
	return config.Tenant{
		Tenant:              name,
		Region:              "EU",
		Domains:             []string{"acme.test", "*.acme.test"},
		QueryParamAllowlist: []string{"ref", "utm_campaign", "utm_source"},
		GeoPrecision:        "City",
		RateLimit:           config.RateLimit{EventsPerMinutePerIP: perMinute},
	}
}

// syncBuffer collects a service's log lines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clock is a movable clock.
type clock struct{ offset atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) advance(d time.Duration) { c.offset.Add(int64(d)) }

// service is an ingest service running in the test process.
type service struct {
	// url is the public port's (the event API, the SDK); opsURL the
	// probes' and metrics'.
	url, opsURL string
	logs        *syncBuffer
	stop        context.CancelFunc
	done        chan error
	creds       storage.Credentials
	clock       *clock
}

// startService runs the service for creds with cfg; edit changes its
// options. It trusts X-Forwarded-For from 127.0.0.1, so tests choose the
// client's address with that header.
func startService(t testing.TB, creds storage.Credentials, cfg config.Tenant, edit func(*app.Options)) *service {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &service{url: "http://" + ln.Addr().String(), opsURL: "http://" + opsLn.Addr().String(),
		logs: &syncBuffer{}, done: make(chan error, 1), creds: creds, clock: &clock{}}
	opts := app.Options{
		Tenant:          cfg,
		Credentials:     creds,
		VisitorKey:      newVisitorKey(t),
		Listener:        ln,
		MetricsListener: opsLn,
		TrustedProxies:  []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		BufferBytes:     1 << 20,
		FlushRows:       100,
		FlushInterval:   50 * time.Millisecond,
		MaxBodyBytes:    4096,
		ShutdownDelay:   0,
		ShutdownWait:    20 * time.Second,
		Now:             s.clock.now,
	}
	if edit != nil {
		edit(&opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	s.stop = cancel
	go func() { s.done <- app.Run(ctx, opts, slog.New(slog.NewJSONHandler(s.logs, nil))) }()
	t.Cleanup(func() { _ = s.shutdown() })
	s.waitReady(t)
	return s
}

// shutdown stops the service as SIGTERM does and returns Run's error.
func (s *service) shutdown() error {
	s.stop()
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(30 * time.Second):
		return fmt.Errorf("the service did not stop in 30s")
	}
}

func (s *service) waitReady(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.opsURL + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the service did not turn ready in 20s; its log:\n%s", s.logs.String())
}

// waitUnready waits up to 15 s for /readyz to stop saying ok, and fails
// saying why it should have (with what).
func (s *service) waitUnready(t testing.TB, with string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for s.get(t, "/readyz") == "ok\n" && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	if got := s.get(t, "/readyz"); got == "ok\n" {
		t.Fatalf("/readyz still says ok with %s", with)
	}
}

// answer is a response's status, Retry-After, X-Millimetric-Dropped and
// body.
type answer struct {
	status     int
	retryAfter string
	dropped    string
	body       string
}

// send posts body to /api/event as a browser at addr with userAgent,
// named by X-Forwarded-For.
func (s *service) send(t testing.TB, addr, userAgent, body string) answer {
	t.Helper()
	header := http.Header{}
	if addr != "" {
		header.Set("X-Forwarded-For", addr)
	}
	return s.sendVia(t, header, userAgent, body)
}

// sendVia posts body to /api/event as a browser with userAgent, through
// proxies that name it with header.
func (s *service) sendVia(t testing.TB, header http.Header, userAgent, body string) answer {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.url+"/api/event", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("Content-Type", "text/plain")
	req.Header.Set("User-Agent", userAgent)
	req.Header.Set("Accept-Language", "en-GB,en;q=0.9")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST /api/event: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), dropped: resp.Header.Get(server.DroppedHeader), body: string(b)}
}

// get is a GET of path on the probes' and metrics' port.
func (s *service) get(t testing.TB, path string) string {
	t.Helper()
	resp, err := http.Get(s.opsURL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

// pageview is a tracker's pageview of url on domain, without an anonymous
// id, as Plausible's script sends it.
func pageview(domain, url string) string {
	return pageviewBy("", domain, url)
}

// pageviewBy is the SDK's pageview of url on domain from the browser whose
// mm_aid is aid ("": none).
func pageviewBy(aid, domain, url string) string {
	ev := map[string]string{"n": "pageview", "u": url, "d": domain, "r": "https://news.example/item?id=42"}
	if aid != "" {
		ev["aid"], ev["t"] = aid, "Acme"
	}
	b, _ := json.Marshal(ev)
	return string(b)
}

// newAnonymousID is an mm_aid as the SDK makes it: 16 random bytes in
// URL-safe base64.
func newAnonymousID(t testing.TB) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// newVisitorKey is a tenant's visitor key as the operator makes it.
func newVisitorKey(t testing.TB) []byte {
	t.Helper()
	key := make([]byte, event.VisitorKeySize)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	return key
}

// admin is a superuser connection to the EU database.
func admin(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx := testContext(t)
	conn, err := srv.Connect(ctx, "EU")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// countRows counts the events of schema, on a connection of its own that
// it closes at once: waitRows polls it, and connections kept until the
// test ends would exhaust the server's.
func countRows(t testing.TB, schema string) int {
	t.Helper()
	ctx := testContext(t)
	conn, err := srv.Connect(ctx, "EU")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{schema, "events"}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// waitRows waits until schema has want events.
func waitRows(t testing.TB, schema string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	n := 0
	for time.Now().Before(deadline) {
		if n = countRows(t, schema); n == want {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("schema %s has %d events, want %d", schema, n, want)
}

// writeFile writes data into a file under the test's directory.
func writeFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
