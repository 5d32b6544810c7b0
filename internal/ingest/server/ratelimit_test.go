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

package server

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/ratelimit"
)

// limitedServer serves the event API over loopback with a limit of one
// event per minute per client, trusting trusted; the test's own
// connections come from 127.0.0.1, the proxy every visitor is behind.
func limitedServer(t *testing.T, trusted []netip.Prefix, cfConnectingIP bool) (*httptest.Server, *ratelimit.Limiter) {
	t.Helper()
	at := time.Unix(1_700_000_000, 0)
	limiter := ratelimit.New(1, func() time.Time { return at })
	srv := httptest.NewServer(New(Options{
		Policy:         event.Policy{Domains: []string{"acme.com"}, GeoPrecision: event.PrecisionCity},
		VisitorKey:     []byte(strings.Repeat("k", event.VisitorKeySize)),
		Limiter:        limiter,
		Buffer:         &recorder{},
		TrustedProxies: trusted,
		CFConnectingIP: cfConnectingIP,
	}))
	t.Cleanup(srv.Close)
	return srv, limiter
}

// sendVia posts a pageview through srv with header, and returns the status.
func sendVia(t *testing.T, srv *httptest.Server, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/event", strings.NewReader(`{"n":"pageview","u":"https://acme.com/","d":"acme.com"}`))
	if err != nil {
		t.Fatal(err)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	req.Header.Set("User-Agent", firefox)
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	return resp.StatusCode
}

// The measurement: 700 visitors behind one edge address were one
// rate-limit key, so the per-address limit became a limit on the whole
// site. Through a trusted proxy, with each header a proxy may name them
// by, they are 700 keys; an IPv6 visitor's /64 is one.
func TestVisitorsBehindOneTrustedProxyAreARateLimitKeyEach(t *testing.T) {
	const visitors = 700
	loopback := netip.MustParsePrefix("127.0.0.1/32")
	cloudflare := netip.MustParsePrefix("173.245.48.0/20")
	tests := []struct {
		name           string
		trusted        []netip.Prefix
		cfConnectingIP bool
		header         func(i int) http.Header
		wantKeys       int
	}{
		{"X-Forwarded-For", []netip.Prefix{loopback}, false,
			func(i int) http.Header { return headers(xff, fmt.Sprintf("198.18.%d.%d", i>>8, i&255)) }, visitors},
		{"Forwarded, IPv6 /64s with ports", []netip.Prefix{loopback}, false,
			func(i int) http.Header {
				return headers(fwd, fmt.Sprintf(`for="[2001:db8:%x::1]:4711";proto=https`, i))
			}, visitors},
		{"Forwarded, IPv4 behind two proxies", []netip.Prefix{loopback, cloudflare}, false,
			func(i int) http.Header {
				return headers(fwd, fmt.Sprintf("for=198.18.%d.%d", i>>8, i&255), fwd, "for=173.245.48.7")
			}, visitors},
		{"CF-Connecting-IP through Cloudflare's edge, whatever X-Forwarded-For says left of the edge", []netip.Prefix{loopback, cloudflare}, true,
			func(i int) http.Header {
				return headers(cf, fmt.Sprintf("198.18.%d.%d", i>>8, i&255), xff, "192.0.2.1, 173.245.48.9, 173.245.48.7")
			}, visitors},
		{"the same visitors, with the proxy not trusted: one key, the proxy's", nil, false,
			func(i int) http.Header { return headers(xff, fmt.Sprintf("198.18.%d.%d", i>>8, i&255)) }, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv, limiter := limitedServer(t, tc.trusted, tc.cfConnectingIP)
			answers := map[int]int{}
			for i := range visitors {
				answers[sendVia(t, srv, tc.header(i))]++
			}
			if n := limiter.Len(); n != tc.wantKeys {
				t.Errorf("%d visitors are %d rate-limit keys, want %d", visitors, n, tc.wantKeys)
			}
			if answers[http.StatusAccepted] != tc.wantKeys || answers[http.StatusTooManyRequests] != visitors-tc.wantKeys {
				t.Errorf("answers by status %v, want %d of 202 and the rest 429", answers, tc.wantKeys)
			}
			// The limit holds per key: each visitor's second event is one too many.
			if got := sendVia(t, srv, tc.header(visitors-1)); got != http.StatusTooManyRequests {
				t.Errorf("a visitor's second event: %d, want 429", got)
			}
		})
	}

	t.Run("two IPv6 visitors in one /64 share one key", func(t *testing.T) {
		srv, limiter := limitedServer(t, []netip.Prefix{loopback}, false)
		if got := sendVia(t, srv, headers(xff, "2001:db8:cafe:1::17")); got != http.StatusAccepted {
			t.Fatalf("the first visitor: %d, want 202", got)
		}
		if got := sendVia(t, srv, headers(fwd, `for="[2001:db8:cafe:1:a1b2:c3d4:e5f6:7]"`)); got != http.StatusTooManyRequests {
			t.Errorf("another address in the same /64: %d, want 429", got)
		}
		if got := sendVia(t, srv, headers(xff, "2001:db8:cafe:2::17")); got != http.StatusAccepted {
			t.Errorf("the next /64: %d, want 202", got)
		}
		if n := limiter.Len(); n != 2 {
			t.Errorf("rate-limit keys = %d, want 2: one per /64", n)
		}
	})
}
