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

// Package server is the ingest service's HTTP API: a pipeline of small
// stages, decode → rate limit → reduce to what may be kept (event.Reduce,
// the one function that sees the address) → buffer (writer), with
// backpressure on the caller (429 and 503 with Retry-After) and nothing
// dropped silently.
//
// The public port (Server itself):
//
//	GET     /js/mm.js   the Millimetric SDK (the tenant's build), revalidated by ETag
//	GET     /js/mm.<hash>.js  the same bytes under a name of their own: immutable
//	POST    /api/event  an event, as the SDK, Plausible's tracker and Events API send it: 202
//	OPTIONS /api/event  CORS preflight, for the tenant's own domains only
//
// The probes' and metrics' port (Ops), which the edge never reaches:
//
//	GET     /healthz    the process is alive
//	GET     /readyz     the database is reachable, writes are not stuck, not draining
//	GET     /metrics    Prometheus metrics
//
// Refusals are JSON, {"error": reason, "message": text}, and never carry
// the client's address or User-Agent.
package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/metrics"
	"github.com/millimetric/tenant-operator/internal/ingest/ratelimit"
	"github.com/millimetric/tenant-operator/internal/ingest/sdk"
	"github.com/millimetric/tenant-operator/internal/ingest/writer"
)

// DefaultMaxBodyBytes bounds an event's body: event.MaxBodyBytes, the
// largest body whose fields are all within event.Reduce's limits (30
// props of 300-byte keys and 2,000-byte values make most of it), rounded
// up to a KiB. Plausible's tracker sends a few hundred bytes; a smaller
// limit would refuse events that Reduce keeps.
const DefaultMaxBodyBytes = (event.MaxBodyBytes + 1023) &^ 1023

// DroppedHeader is the header of a 202 that lists, comma-separated, the
// parts of the event that were dropped while the rest was kept
// (event.DroppedPart's names), so that a caller can see what was not
// kept without the event being refused.
const DroppedHeader = "X-Millimetric-Dropped"

// retryAfterFull is what a caller is told to wait when the buffer is full
// or the database is not reachable: about one flush.
const retryAfterFull = time.Second

// Buffer is what the server needs of the writer.
type Buffer interface {
	Add(event.Kept) error
	Ready() bool
}

var _ Buffer = (*writer.Writer)(nil)

// Options configure a Server.
type Options struct {
	// Policy is the tenant's: its domains, allowlist, precision and
	// whether it honours Global Privacy Control.
	Policy event.Policy
	// VisitorKey is the tenant's key of the visitor id hash
	// (event.VisitorKeySize bytes).
	VisitorKey []byte
	// Geo locates addresses; nil means location unknown.
	Geo event.Geo
	// Limiter limits events per client (an IPv4 address, an IPv6 /64);
	// nil means no limit.
	Limiter *ratelimit.Limiter
	// Buffer takes accepted events.
	Buffer Buffer
	// TrustedProxies are the proxies whose forwarding headers are believed
	// (X-Forwarded-For, Forwarded, and CF-Connecting-IP with
	// CFConnectingIP): the Gateway and the edge in front of it. From any
	// other peer, the client is the peer. See clientAddr.
	TrustedProxies []netip.Prefix
	// CFConnectingIP makes Cloudflare's CF-Connecting-IP name the client
	// when the request reached the peer through another trusted proxy
	// (Cloudflare's edge, whose ranges must be among TrustedProxies).
	CFConnectingIP bool
	// MaxBodyBytes bounds a body; 0 means DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Metrics are kept up to date; Registry serves /metrics.
	Metrics  *metrics.Metrics
	Registry *prometheus.Registry
	// Now is the clock events are received by; nil means time.Now.
	Now func() time.Time
	// Log gets what goes wrong; nothing logged carries an address.
	Log *slog.Logger
}

// Server is the ingest HTTP API.
type Server struct {
	opts     Options
	draining atomic.Bool
	mux      *http.ServeMux // the public port's
	ops      *http.ServeMux // the probes' and metrics' port's
}

// New makes a Server.
func New(opts Options) *Server {
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	s := &Server{opts: opts, mux: http.NewServeMux(), ops: http.NewServeMux()}
	s.mux.HandleFunc("/api/event", s.handleEvent)
	script := sdk.For(opts.Policy.RespectGlobalPrivacyControl)
	s.mux.Handle("GET "+ScriptPath, serveScript(script, scriptMaxAge))
	s.mux.Handle("GET "+scriptDir+script.Versioned, serveScript(script, immutableMaxAge))
	s.ops.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = io.WriteString(w, "ok\n")
	})
	s.ops.HandleFunc("GET /readyz", s.handleReady)
	if opts.Registry != nil {
		s.ops.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	}
	return s
}

// Ops is the handler of the probes and the metrics, /healthz, /readyz and
// /metrics, served on a port of their own that the edge never reaches:
// the public port, the one a route or the edge forwards, has only the
// event API and the SDK, so no website visitor can read a customer's
// traffic volume off /metrics.
func (s *Server) Ops() http.Handler { return s.ops }

// ScriptPath is where the SDK is served: the path of the one line a
// customer embeds, <script defer src="https://<ingest host>/js/mm.js">.
const ScriptPath = scriptDir + "mm.js"

const scriptDir = "/js/"

// How long a browser or CDN may keep the SDK without asking again: an hour
// at its stable path, so a new release reaches every site within the hour
// (and is revalidated by ETag, a 304, after that); a year at its versioned
// path, whose bytes never change.
const (
	scriptMaxAge    = time.Hour
	immutableMaxAge = 365 * 24 * time.Hour
)

// serveScript answers with the SDK's bytes, exactly as built. It sets no
// cookie, ever: the SDK's sendBeacon cannot leave credentials out, so a
// cookie on this origin would travel with every event.
func serveScript(script sdk.Script, maxAge time.Duration) http.Handler {
	cacheControl := fmt.Sprintf("public, max-age=%d", int(maxAge.Seconds()))
	if maxAge == immutableMaxAge {
		cacheControl += ", immutable"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "text/javascript; charset=utf-8")
		h.Set("Cache-Control", cacheControl)
		h.Set("ETag", script.ETag)
		h.Set("X-Content-Type-Options", "nosniff")
		// ServeContent answers If-None-Match with 304, HEAD and ranges.
		http.ServeContent(w, r, script.Name, time.Time{}, bytes.NewReader(script.Body))
	})
}

// ServeHTTP implements http.Handler: the public port's, the event API and
// the SDK.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// Drain turns the server unready: /readyz answers 503 so the Service stops
// sending it traffic. Events still arriving meanwhile are accepted; the
// caller then shuts the HTTP server down and closes the writer.
func (s *Server) Drain() { s.draining.Store(true) }

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "draining\n")
	case !s.opts.Buffer.Ready():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = io.WriteString(w, "the database is not reachable, or accepted events have not been written for too long\n")
	default:
		_, _ = io.WriteString(w, "ok\n")
	}
}

// handleEvent is the pipeline of one event.
func (s *Server) handleEvent(w http.ResponseWriter, r *http.Request) {
	s.cors(w, r)
	switch r.Method {
	case http.MethodOptions:
		s.preflight(w, r)
		return
	case http.MethodPost:
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		s.refuse(w, http.StatusMethodNotAllowed, metrics.ReasonMethodNotAllowed, "use POST", 0)
		return
	}

	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		s.refuse(w, http.StatusRequestEntityTooLarge, metrics.ReasonBodyTooLarge,
			fmt.Sprintf("the body is over %d bytes", s.opts.MaxBodyBytes), 0)
		return
	case err != nil:
		s.refuse(w, http.StatusBadRequest, metrics.ReasonMalformedJSON, "the body could not be read", 0)
		return
	}
	var raw event.Raw
	if err := json.Unmarshal(body, &raw); err != nil {
		s.refuse(w, http.StatusBadRequest, metrics.ReasonMalformedJSON, "the body is not a JSON event: "+jsonProblem(err), 0)
		return
	}

	addr := clientAddr(r, s.opts.TrustedProxies, s.opts.CFConnectingIP)
	if s.opts.Limiter != nil {
		if ok, wait := s.opts.Limiter.Allow(addr); !ok {
			s.refuse(w, http.StatusTooManyRequests, metrics.ReasonRateLimited,
				"too many events from this address (or its IPv6 /64); retry later", wait)
			return
		}
	}

	kept, err := event.Reduce(raw, event.Request{
		Addr: addr, UserAgent: r.UserAgent(), Header: r.Header, ReceivedAt: s.opts.Now(),
		GlobalPrivacyControl: r.Header.Get("Sec-GPC") == "1",
	}, s.opts.Policy, s.opts.Geo, s.opts.VisitorKey)
	var refusal *event.Refusal
	if errors.As(err, &refusal) {
		switch refusal.Reason {
		case event.ReasonBot:
			// Answered as accepted so the bot has no reason to retry.
			s.count(func(m *metrics.Metrics) { m.Bots.Inc() })
			w.WriteHeader(http.StatusAccepted)
		case event.ReasonOptedOut:
			// The visitor asked not to be counted: nothing is stored, and
			// the answer says there is nothing to retry.
			s.count(func(m *metrics.Metrics) { m.OptedOut.Inc() })
			w.WriteHeader(http.StatusNoContent)
		case event.ReasonForeignDomain:
			s.refuse(w, http.StatusForbidden, metrics.ReasonForeignDomain, refusal.Message, 0)
		default:
			s.refuse(w, http.StatusBadRequest, metrics.ReasonInvalid, refusal.Message, 0)
		}
		return
	}
	if err != nil {
		// Not the caller's fault: a visitor key of the wrong size, say.
		// The error names no part of the request.
		s.opts.Log.Error("reducing an event failed", "error", err.Error())
		s.refuse(w, http.StatusInternalServerError, metrics.ReasonInternal, "the event could not be processed", 0)
		return
	}

	switch err := s.opts.Buffer.Add(kept); {
	case errors.Is(err, writer.ErrClosed):
		s.refuse(w, http.StatusServiceUnavailable, metrics.ReasonDraining,
			"the service is shutting down; retry", retryAfterFull)
	case err != nil:
		s.refuse(w, http.StatusServiceUnavailable, metrics.ReasonBufferFull,
			"the service is busy writing what it accepted; retry later", retryAfterFull)
	default:
		s.count(func(m *metrics.Metrics) {
			m.Accepted.Inc()
			for _, part := range kept.Dropped {
				m.PartsDropped.WithLabelValues(part.String()).Inc()
			}
		})
		if len(kept.Dropped) > 0 {
			names := make([]string, len(kept.Dropped))
			for i, part := range kept.Dropped {
				names[i] = part.String()
			}
			w.Header().Set(DroppedHeader, strings.Join(names, ", "))
		}
		w.WriteHeader(http.StatusAccepted)
	}
}

// cors lets the tenant's own pages read the answer: an Origin whose host is
// one of the tenant's domains is echoed; any other gets no CORS header, so
// browsers keep the answer from it.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	w.Header().Add("Vary", "Origin")
	if s.originAllowed(origin) {
		w.Header().Set("Access-Control-Allow-Origin", origin)
	}
}

func (s *Server) originAllowed(origin string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return false
	}
	return s.opts.Policy.AllowsDomain(u.Hostname())
}

func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	if !s.originAllowed(r.Header.Get("Origin")) {
		s.refuse(w, http.StatusForbidden, metrics.ReasonForeignDomain, "the origin is not one of this site's domains", 0)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// errorBody is a refusal's JSON.
type errorBody struct {
	Error   string `json:"error"`
	Message string `json:"message"`
}

// refuse answers with a JSON error and counts it; retryAfter, when set,
// becomes Retry-After in whole seconds (at least 1).
func (s *Server) refuse(w http.ResponseWriter, status int, reason, message string, retryAfter time.Duration) {
	s.count(func(m *metrics.Metrics) { m.Refused.WithLabelValues(reason).Inc() })
	h := w.Header()
	h.Set("Content-Type", "application/json")
	if retryAfter > 0 {
		h.Set("Retry-After", strconv.Itoa(int(math.Ceil(retryAfter.Seconds()))))
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(errorBody{Error: reason, Message: message})
}

func (s *Server) count(f func(*metrics.Metrics)) {
	if s.opts.Metrics != nil {
		f(s.opts.Metrics)
	}
}

// jsonProblem says what is wrong with a body without echoing it.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("syntax error at byte %d", syntax.Offset)
	case errors.As(err, &typ):
		return fmt.Sprintf("field %q has the wrong type (%s)", typ.Field, typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends too early"
	default:
		return "it is not an object with the expected fields"
	}
}
