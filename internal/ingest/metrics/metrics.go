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

// Package metrics holds the ingest service's Prometheus metrics. No metric
// has a label that could hold a visitor's address, User-Agent or URL: the
// labels are a refusal's reason and a dropped part's name, each from a
// fixed set.
package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
)

// Refusal reasons, the values of the refused counter's "reason" label.
const (
	ReasonMalformedJSON    = "malformed_json"
	ReasonBodyTooLarge     = "body_too_large"
	ReasonInvalid          = "invalid"
	ReasonForeignDomain    = "foreign_domain"
	ReasonRateLimited      = "rate_limited"
	ReasonBufferFull       = "buffer_full"
	ReasonNotReady         = "not_ready"
	ReasonDraining         = "draining"
	ReasonMethodNotAllowed = "method_not_allowed"
	ReasonInternal         = "internal"
)

// Metrics are the ingest service's collectors.
type Metrics struct {
	// Accepted counts events answered 202 and buffered.
	Accepted prometheus.Counter
	// Refused counts events refused, by reason.
	Refused *prometheus.CounterVec
	// PartsDropped counts the parts of accepted events that were dropped
	// while the rest was kept, by part (event.DroppedPart's names).
	PartsDropped *prometheus.CounterVec
	// Bots counts events dropped as bots (answered 202, not stored).
	Bots prometheus.Counter
	// OptedOut counts events not stored because the browser sent Global
	// Privacy Control to a tenant that honours it (answered 204).
	OptedOut prometheus.Counter
	// BufferDepth is how many accepted events wait to be written.
	BufferDepth prometheus.Gauge
	// BufferBytes is the memory they hold, as the writer estimates it.
	BufferBytes prometheus.Gauge
	// BufferCapacityBytes is how much they may hold before the service
	// answers 503.
	BufferCapacityBytes prometheus.Gauge
	// Rejected counts accepted events the database refused for their
	// content, set aside so that the rows beside them are written.
	Rejected prometheus.Counter
	// FlushDuration is how long one COPY of a batch takes.
	FlushDuration prometheus.Histogram
	// RowsWritten counts rows written to the events table.
	RowsWritten prometheus.Counter
	// FlushErrors counts batches that could not be written (and were kept).
	FlushErrors prometheus.Counter
	// DatabaseUp is 1 while the last database round trip succeeded.
	DatabaseUp prometheus.Gauge
}

// New makes the collectors and registers them, with the Go and process
// collectors, on reg.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		Accepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_events_accepted_total", Help: "Events accepted (answered 202) and buffered for writing.",
		}),
		Refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_events_refused_total", Help: "Events refused, by reason.",
		}, []string{"reason"}),
		PartsDropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ingest_event_parts_dropped_total", Help: "Parts of accepted events dropped while the rest was kept, by part.",
		}, []string{"part"}),
		Bots: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_events_bots_total", Help: "Events from bots, answered 202 and dropped.",
		}),
		OptedOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_events_opted_out_total", Help: "Events with Global Privacy Control for a tenant that honours it, answered 204 and dropped.",
		}),
		BufferDepth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_buffer_depth", Help: "Accepted events waiting to be written.",
		}),
		BufferBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_buffer_bytes", Help: "Memory the accepted events waiting to be written hold, estimated.",
		}),
		BufferCapacityBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_buffer_capacity_bytes", Help: "Memory the waiting events may hold before the service answers 503.",
		}),
		Rejected: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_events_rejected_total", Help: "Accepted events the database refused for their content, set aside so the rest are written.",
		}),
		FlushDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "ingest_flush_duration_seconds", Help: "Time to write one batch with COPY.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 14),
		}),
		RowsWritten: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_rows_written_total", Help: "Rows written to the tenant's events table.",
		}),
		FlushErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ingest_flush_errors_total", Help: "Batches that failed to be written and were kept for the next attempt.",
		}),
		DatabaseUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ingest_database_up", Help: "1 while the last round trip to the tenant's database succeeded.",
		}),
	}
	// Every reason shows from the start, at 0, so a rate() has a series.
	for _, r := range []string{ReasonMalformedJSON, ReasonBodyTooLarge, ReasonInvalid, ReasonForeignDomain,
		ReasonRateLimited, ReasonBufferFull, ReasonNotReady, ReasonDraining, ReasonMethodNotAllowed, ReasonInternal} {
		m.Refused.WithLabelValues(r)
	}
	for _, p := range event.DroppedParts() {
		m.PartsDropped.WithLabelValues(p.String())
	}
	reg.MustRegister(m.Accepted, m.Refused, m.PartsDropped, m.Bots, m.OptedOut, m.BufferDepth, m.BufferBytes, m.BufferCapacityBytes, m.Rejected,
		m.FlushDuration, m.RowsWritten, m.FlushErrors, m.DatabaseUp,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
