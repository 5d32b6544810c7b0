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
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/metrics"
)

// recorder stands in for the writer: it keeps what it is given. These tests
// are about what the HTTP layer takes and answers, not about writing.
type recorder struct {
	mu   sync.Mutex
	kept []event.Kept
}

func (r *recorder) Add(k event.Kept) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.kept = append(r.kept, k)
	return nil
}

func (r *recorder) Ready() bool { return true }

const firefox = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"

func newEventServer(t *testing.T) (*Server, *recorder, *metrics.Metrics) {
	t.Helper()
	buf := &recorder{}
	m := metrics.New(prometheus.NewRegistry())
	srv := New(Options{
		Policy:     event.Policy{Domains: []string{"acme.com", "*.acme.com"}, GeoPrecision: event.PrecisionCity},
		VisitorKey: []byte(strings.Repeat("k", event.VisitorKeySize)),
		Buffer:     buf, Metrics: m,
	})
	return srv, buf, m
}

func post(srv *Server, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/api/event", strings.NewReader(body))
	req.Header.Set("User-Agent", firefox)
	req.RemoteAddr = "198.51.100.7:4242"
	rec := httptest.NewRecorder()
	srv.ServeHTTP(rec, req)
	return rec
}

// largestEvent is the largest body whose every field is within the limits
// event.Reduce keeps, written as Plausible's tracker writes it: props
// JSON-encoded inside a string. It also sends the keys the tracker adds.
func largestEvent(t *testing.T) string {
	t.Helper()
	props := map[string]string{}
	for i := range event.MaxPropsKeys {
		key := fmt.Sprintf("%02d", i) + strings.Repeat("k", event.MaxPropKeyBytes-2)
		props[key] = strings.Repeat("v", event.MaxPropValueBytes)
	}
	p, err := json.Marshal(props)
	if err != nil {
		t.Fatal(err)
	}
	domain := "acme.com" + strings.Repeat(",acme.com", (event.MaxDomainBytes-len("acme.com"))/len(",acme.com"))
	body, err := json.Marshal(map[string]any{
		"n":   strings.Repeat("𝄞", event.MaxNameChars), // four bytes each
		"u":   "https://acme.com/" + strings.Repeat("p", event.MaxURLBytes-len("https://acme.com/")),
		"d":   domain,
		"r":   "https://news.example/" + strings.Repeat("r", event.MaxReferrerBytes-len("https://news.example/")),
		"t":   strings.Repeat("t", event.MaxURLBytes),
		"aid": strings.Repeat("a", event.MaxAnonymousIDBytes),
		"p":   string(p),
		"h":   1,
		"v":   30,
		"i":   true,
		"sw":  1440,
	})
	if err != nil {
		t.Fatal(err)
	}
	return string(body)
}

// TestTheLargestEventWithinTheLimitsIsAccepted: the body limit is large
// enough for every event Reduce would keep, 30 props at their longest
// included, and a body past it is answered 413.
func TestTheLargestEventWithinTheLimitsIsAccepted(t *testing.T) {
	srv, buf, _ := newEventServer(t)
	body := largestEvent(t)
	if len(body) > DefaultMaxBodyBytes {
		t.Fatalf("the largest event is %d bytes, over the limit of %d", len(body), DefaultMaxBodyBytes)
	}
	t.Logf("the largest event is %d bytes; the limit is %d", len(body), DefaultMaxBodyBytes)
	rec := post(srv, body)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("the largest event: %d %s, want 202", rec.Code, rec.Body)
	}
	if len(buf.kept) != 1 {
		t.Fatalf("%d events buffered, want 1", len(buf.kept))
	}
	var props map[string]string
	if err := json.Unmarshal(buf.kept[0].Props, &props); err != nil || len(props) != event.MaxPropsKeys {
		t.Errorf("kept %d props (%v), want all %d", len(props), err, event.MaxPropsKeys)
	}
	if h := rec.Header().Get(DroppedHeader); h != "" {
		t.Errorf("%s: %s, want nothing dropped", DroppedHeader, h)
	}

	over := `{"n":"pageview","u":"https://acme.com/","d":"acme.com","t":"` + strings.Repeat("t", DefaultMaxBodyBytes) + `"}`
	if rec := post(srv, over); rec.Code != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the limit: %d %s, want 413", rec.Code, rec.Body)
	}
}

// TestWhatIsDroppedOfAnAcceptedEventIsSaidAndCounted: an event kept
// without some of its parts is answered 202 with the parts named in
// X-Millimetric-Dropped, and counted by part.
func TestWhatIsDroppedOfAnAcceptedEventIsSaidAndCounted(t *testing.T) {
	srv, buf, m := newEventServer(t)
	rec := post(srv, `{"n":"pageview","u":"https://acme.com/","d":"acme.com","p":{"user":{"id":1},"":"x","plan":"pro"}}`)
	if rec.Code != http.StatusAccepted {
		t.Fatalf("%d %s, want 202", rec.Code, rec.Body)
	}
	if got, want := rec.Header().Get(DroppedHeader), "props.nested, props.empty_key"; got != want {
		t.Errorf("%s: %q, want %q", DroppedHeader, got, want)
	}
	if len(buf.kept) != 1 || string(buf.kept[0].Props) != `{"plan":"pro"}` {
		t.Errorf("buffered %+v, want the event with its plan", buf.kept)
	}
	for part, want := range map[string]float64{"props.nested": 1, "props.empty_key": 1, "props.too_long": 0} {
		var got dto.Metric
		if err := m.PartsDropped.WithLabelValues(part).Write(&got); err != nil {
			t.Fatal(err)
		}
		if got.GetCounter().GetValue() != want {
			t.Errorf("ingest_event_parts_dropped_total{part=%q} = %v, want %v", part, got.GetCounter().GetValue(), want)
		}
	}
	if rec := post(srv, `{"n":"pageview","u":"https://acme.com/","d":"acme.com"}`); rec.Header().Get(DroppedHeader) != "" {
		t.Errorf("an event with nothing dropped says %q", rec.Header().Get(DroppedHeader))
	}
}
