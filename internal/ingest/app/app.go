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

// Package app wires the ingest service: flags and environment, the
// tenant's configuration file, the writer, the HTTP server, and the drain
// on SIGTERM.
//
//	ingest --config=/etc/millimetric/ingest.json [flags]
//
// The storage credentials come from the libpq environment variables the
// operator sets from the tenant's ingest-credentials Secret (PGHOST,
// PGPORT, PGDATABASE, PGUSER, PGPASSWORD, PGSSLMODE, PGSCHEMA,
// PGSSLROOTCERT); see storage.CredentialsFromEnv. The tenant's visitor key,
// the HMAC key of the stored visitor ids, comes from INGEST_VISITOR_KEY
// (config.EnvVisitorKey), set from the same Secret.
//
// On SIGTERM the service turns unready (/readyz answers 503, so the
// Service stops routing to it) and keeps serving for --shutdown-delay while
// the endpoints catch up, then stops accepting connections, writes every
// event it accepted, and exits; all within --shutdown-timeout, which must
// be below the pod's termination grace period (30 s by default).
package app

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/millimetric/tenant-operator/internal/ingest/config"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/geoip"
	"github.com/millimetric/tenant-operator/internal/ingest/metrics"
	"github.com/millimetric/tenant-operator/internal/ingest/ratelimit"
	"github.com/millimetric/tenant-operator/internal/ingest/server"
	"github.com/millimetric/tenant-operator/internal/ingest/writer"
	"github.com/millimetric/tenant-operator/internal/memlimit"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// Exit codes of Main.
const (
	ExitOK = 0
	// ExitFailed: the service failed, or could not write everything it
	// accepted before the shutdown timeout.
	ExitFailed = 1
	// ExitUsage: bad flags, configuration or environment.
	ExitUsage = 2
)

// Options are the parsed flags, configuration and environment.
type Options struct {
	Tenant         config.Tenant
	Credentials    storage.Credentials
	VisitorKey     []byte
	Listen         string
	TrustedProxies []netip.Prefix
	// CFConnectingIP believes Cloudflare's CF-Connecting-IP from trusted
	// proxies (server.Options.CFConnectingIP).
	CFConnectingIP bool
	GeoIPDB        string
	BufferBytes    int
	FlushRows      int
	FlushInterval  time.Duration
	MaxBodyBytes   int64
	ShutdownDelay  time.Duration
	ShutdownWait   time.Duration
	// BatchTimeout and WedgedAfter are the writer's; 0 means its defaults
	// (writer.DefaultBatchTimeout, writer.DefaultWedgedAfter).
	BatchTimeout time.Duration
	WedgedAfter  time.Duration

	// MetricsListen is the address of the probes and the metrics
	// (server.Ops): a port the edge never reaches.
	MetricsListen string

	// Listener and MetricsListener, when set, are served instead of
	// listening on Listen and MetricsListen (tests).
	Listener        net.Listener
	MetricsListener net.Listener
	// Now is the clock; nil means time.Now (tests move it).
	Now func() time.Time
}

// Main runs the service until ctx ends (SIGTERM), then drains. It returns
// the exit code.
func Main(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) int {
	opts, err := Parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "ingest: %v\n", err)
		return ExitUsage
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	// The Go heap stays below the container's memory limit: the buffer is
	// bounded in bytes, and the collector works harder near the limit
	// rather than the kernel killing the pod with accepted events in it.
	if soft := memlimit.Set(); soft > 0 {
		log.Info("Go memory limit set from the container's", "bytes", soft)
	}
	if err := Run(ctx, opts, log); err != nil {
		log.Error("ingest failed", "error", err.Error())
		return ExitFailed
	}
	return ExitOK
}

// Parse reads the flags, the configuration file they name, and the
// storage credentials from the environment.
func Parse(args []string, getenv func(string) string, stderr io.Writer) (Options, error) {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "the tenant's ingest configuration file (the ingest-config ConfigMap's ingest.json); required")
	listen := fs.String("listen", ":8080", "address to serve the event API and the SDK on: the port the edge reaches")
	metricsListen := fs.String("metrics-listen", ":9090", "address to serve /healthz, /readyz and /metrics on: a port the edge never reaches")
	trusted := fs.String("trusted-proxies", "", "comma-separated CIDR prefixes of the proxies (the Gateway's pods, the edge) whose X-Forwarded-For and Forwarded are believed; from any other peer the client is the TCP peer")
	cfConnectingIP := fs.Bool("cf-connecting-ip", false, "believe CF-Connecting-IP when a request reached a trusted proxy through another one (Cloudflare's edge: its published ranges must be in --trusted-proxies)")
	geoDB := fs.String("geoip-db", "", "MaxMind-format City database for locations; none means location unknown")
	bufferBytes := fs.Int("buffer-bytes", writer.DefaultCapacityBytes, "memory the accepted events waiting to be written may hold before the service answers 503")
	flushRows := fs.Int("flush-rows", writer.DefaultFlushRows, "write as soon as this many events wait, and at most this many per COPY")
	flushInterval := fs.Duration("flush-interval", writer.DefaultFlushInterval, "longest an accepted event waits to be written")
	maxBody := fs.Int64("max-body-bytes", server.DefaultMaxBodyBytes, "largest event body; larger ones are answered 413")
	shutdownDelay := fs.Duration("shutdown-delay", 5*time.Second, "after SIGTERM, keep serving this long while unready, so the Service stops routing here first")
	shutdownWait := fs.Duration("shutdown-timeout", 20*time.Second, "after SIGTERM, the most time to stop and write everything accepted; keep it below the pod's grace period")
	if err := fs.Parse(args); err != nil {
		return Options{}, err
	}
	if fs.NArg() > 0 {
		return Options{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *cfgPath == "" {
		return Options{}, errors.New("--config is required")
	}
	tenant, err := config.Load(*cfgPath)
	if err != nil {
		return Options{}, err
	}
	creds, err := storage.CredentialsFromEnv(getenv)
	if err != nil {
		return Options{}, fmt.Errorf("storage credentials: %w", err)
	}
	visitorKey, err := config.VisitorKeyFromEnv(getenv)
	if err != nil {
		return Options{}, err
	}
	proxies, err := config.ParseTrustedProxies(*trusted)
	if err != nil {
		return Options{}, fmt.Errorf("--trusted-proxies: %w", err)
	}
	switch {
	case *bufferBytes < 64<<10:
		return Options{}, fmt.Errorf("--buffer-bytes %d is below 64 KiB", *bufferBytes)
	case *flushRows < 1:
		return Options{}, fmt.Errorf("--flush-rows %d must be positive", *flushRows)
	case *flushInterval <= 0:
		return Options{}, fmt.Errorf("--flush-interval %s must be positive", *flushInterval)
	case *maxBody < 256:
		return Options{}, fmt.Errorf("--max-body-bytes %d is below 256", *maxBody)
	case *shutdownDelay < 0 || *shutdownWait <= *shutdownDelay:
		return Options{}, fmt.Errorf("--shutdown-timeout (%s) must be longer than --shutdown-delay (%s)", *shutdownWait, *shutdownDelay)
	}
	return Options{
		Tenant: tenant, Credentials: creds, VisitorKey: visitorKey, Listen: *listen, MetricsListen: *metricsListen, TrustedProxies: proxies, CFConnectingIP: *cfConnectingIP, GeoIPDB: *geoDB,
		BufferBytes: *bufferBytes, FlushRows: *flushRows, FlushInterval: *flushInterval, MaxBodyBytes: *maxBody,
		ShutdownDelay: *shutdownDelay, ShutdownWait: *shutdownWait,
	}, nil
}

// Run serves until ctx ends, then drains: unready, serve for
// ShutdownDelay, stop accepting, write everything accepted. It fails when
// it cannot listen or when accepted events are left unwritten at
// ShutdownWait.
func Run(ctx context.Context, opts Options, log *slog.Logger) error {
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	var geo event.Geo
	if opts.GeoIPDB != "" {
		db, err := geoip.Open(opts.GeoIPDB)
		if err != nil {
			return err
		}
		defer func() { _ = db.Close() }()
		geo = db
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	creds := opts.Credentials
	w := writer.New(writer.Options{
		Connect:       func(ctx context.Context) (*pgx.Conn, error) { return storage.ConnectIngest(ctx, creds) },
		Schema:        creds.Schema,
		CapacityBytes: opts.BufferBytes,
		BatchTimeout:  opts.BatchTimeout,
		WedgedAfter:   opts.WedgedAfter,
		FlushRows:     opts.FlushRows,
		FlushInterval: opts.FlushInterval,
		Metrics:       m,
		Log:           log,
	})
	srv := server.New(server.Options{
		Policy:         opts.Tenant.Policy(),
		VisitorKey:     opts.VisitorKey,
		Geo:            geo,
		Limiter:        ratelimit.New(int(opts.Tenant.RateLimit.EventsPerMinutePerIP), now),
		Buffer:         w,
		TrustedProxies: opts.TrustedProxies,
		CFConnectingIP: opts.CFConnectingIP,
		MaxBodyBytes:   opts.MaxBodyBytes,
		Metrics:        m,
		Registry:       reg,
		Now:            now,
		Log:            log,
	})

	listen := func(ln net.Listener, addr string) (net.Listener, error) {
		if ln != nil {
			return ln, nil
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("listening on %s: %w", addr, err)
		}
		return ln, nil
	}
	ln, err := listen(opts.Listener, opts.Listen)
	if err != nil {
		return err
	}
	opsLn, err := listen(opts.MetricsListener, opts.MetricsListen)
	if err != nil {
		_ = ln.Close()
		return err
	}
	newServer := func(h http.Handler) *http.Server {
		return &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    16 << 10,
			// The standard library logs bad requests with the peer's address.
			ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError),
		}
	}
	httpServer, opsServer := newServer(srv), newServer(srv.Ops())

	// The writer's database calls outlive ctx: they end when the drain's
	// deadline does.
	writerCtx, cancelWriter := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWriter()
	writerDone := make(chan struct{})
	go func() { defer close(writerDone); w.Run(writerCtx) }()

	serveErr := make(chan error, 2)
	go func() { serveErr <- httpServer.Serve(ln) }()
	go func() { serveErr <- opsServer.Serve(opsLn) }()
	log.Info("ingest is serving", "address", ln.Addr().String(), "metricsAddress", opsLn.Addr().String(), "tenant", opts.Tenant.Tenant,
		"region", opts.Tenant.Region, "schema", creds.Schema, "geoip", opts.GeoIPDB != "",
		"trustedProxies", len(opts.TrustedProxies), "cfConnectingIP", opts.CFConnectingIP)

	select {
	case err := <-serveErr:
		cancelWriter()
		_ = httpServer.Close()
		_ = opsServer.Close()
		return fmt.Errorf("serving HTTP: %w", err)
	case <-ctx.Done():
	}

	deadline, cancel := context.WithTimeout(context.Background(), opts.ShutdownWait)
	defer cancel()
	log.Info("draining: unready, then writing every accepted event", "shutdownDelay", opts.ShutdownDelay.String())
	srv.Drain()
	select {
	case <-time.After(opts.ShutdownDelay):
	case <-deadline.Done():
	}
	if err := httpServer.Shutdown(deadline); err != nil {
		log.Error("stopping the HTTP server", "error", err.Error())
	}
	err = w.Close(deadline)
	cancelWriter()
	<-writerDone
	// The probes answer until the end: unready while draining.
	if err := opsServer.Shutdown(deadline); err != nil {
		log.Error("stopping the probes' and metrics' HTTP server", "error", err.Error())
	}
	if err != nil {
		return err
	}
	log.Info("drained: every accepted event is written")
	return nil
}
