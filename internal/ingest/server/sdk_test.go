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
	"bytes"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/sdk"
)

// noBuffer stands in for the writer: serving the SDK never touches it.
type noBuffer struct{}

func (noBuffer) Add(event.Kept) error { return nil }
func (noBuffer) Ready() bool          { return true }

// TestTheSDKIsServedAsBuilt: the bytes served are the embedded build
// (which internal/ingest/sdk's tests prove are esbuild's output from the
// source), the tenant's build by its GPC setting, cacheable by ETag at the
// stable path and for a year at the versioned one, and never with a cookie.
func TestTheSDKIsServedAsBuilt(t *testing.T) {
	for _, gpc := range []bool{false, true} {
		want := sdk.For(gpc)
		other := sdk.For(!gpc)
		srv := New(Options{Policy: event.Policy{Domains: []string{"acme.com"}, GeoPrecision: event.PrecisionCity, RespectGlobalPrivacyControl: gpc},
			Buffer: noBuffer{}})
		// get answers a GET from the recorder, which holds the whole body.
		get := func(path string, header ...string) *httptest.ResponseRecorder {
			req := httptest.NewRequest(http.MethodGet, path, nil)
			for i := 0; i+1 < len(header); i += 2 {
				req.Header.Set(header[i], header[i+1])
			}
			rec := httptest.NewRecorder()
			srv.ServeHTTP(rec, req)
			return rec
		}
		for _, tt := range []struct {
			path, cacheControl string
		}{
			{ScriptPath, "public, max-age=3600"},
			{"/js/" + want.Versioned, "public, max-age=31536000, immutable"},
		} {
			resp := get(tt.path)
			body := resp.Body.Bytes()
			if resp.Code != http.StatusOK || !bytes.Equal(body, want.Body) {
				t.Fatalf("gpc=%v GET %s: %d, %d bytes; want 200 and the %s build's %d bytes", gpc, tt.path, resp.Code, len(body), want.Name, len(want.Body))
			}
			h := resp.Header()
			if h.Get("ETag") != want.ETag || h.Get("Cache-Control") != tt.cacheControl ||
				!strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || h.Get("X-Content-Type-Options") != "nosniff" {
				t.Errorf("gpc=%v GET %s: headers %v", gpc, tt.path, h)
			}
			if h.Get("Set-Cookie") != "" {
				t.Errorf("gpc=%v GET %s set a cookie", gpc, tt.path)
			}
			if again := get(tt.path, "If-None-Match", want.ETag); again.Code != http.StatusNotModified {
				t.Errorf("gpc=%v GET %s with its ETag: %d, want 304", gpc, tt.path, again.Code)
			}
		}
		if resp := get("/js/" + other.Versioned); resp.Code != http.StatusNotFound {
			t.Errorf("gpc=%v: the other build %s is served (%d); a tenant gets its own build only", gpc, other.Versioned, resp.Code)
		}
	}
}
