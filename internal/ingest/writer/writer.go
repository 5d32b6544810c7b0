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

// Package writer is the ingest service's way to the tenant's database: a
// bounded in-memory buffer of accepted events, written with COPY into the
// tenant's events table every FlushInterval or as soon as FlushRows are
// waiting.
//
// Nothing accepted is dropped. A batch that fails to be written stays at
// the head of the buffer and is tried again; while it waits, new events
// fill the rest of the buffer, and when that is full Add refuses (the
// server answers 503) instead of dropping. Close writes everything left.
//
// One goroutine (Run) owns the one database connection: it writes the
// batches and checks the database when idle, so no lock is ever held
// across I/O and a slow database never blocks a request.
package writer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/metrics"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// ErrFull is Add's answer when the buffer is full.
var ErrFull = errors.New("the event buffer is full")

// ErrClosed is Add's answer once Close has been called.
var ErrClosed = errors.New("the writer is closing")

// Defaults of Options.
const (
	DefaultCapacity      = 20000
	DefaultFlushRows     = 2000
	DefaultFlushInterval = time.Second
	// idleCheckInterval is how long the database may go without a round
	// trip before the writer pings it, so readiness follows an outage
	// even when no event arrives.
	idleCheckInterval = 5 * time.Second
)

// Columns are the events table's columns the writer fills, in the order
// of row's values. event_id is left to its default.
var Columns = []string{
	"received_at", "event_name", "hostname", "url_path", "referrer",
	"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "click_id_type",
	"attribution_source", "attribution_medium", "title",
	"browser_family", "os_family", "device_type", "country", "region", "city",
	"visitor_id", "props", "engagement_ms", "scroll_depth",
}

// Options configure a Writer.
type Options struct {
	// Connect opens a connection as the tenant's ingest role.
	Connect func(ctx context.Context) (*pgx.Conn, error)
	// Schema is the tenant's schema.
	Schema string
	// Capacity bounds the events waiting to be written; 0 means
	// DefaultCapacity.
	Capacity int
	// FlushRows is the largest batch, and the number of waiting events
	// that starts a flush before FlushInterval; 0 means DefaultFlushRows.
	FlushRows int
	// FlushInterval is the longest an event waits; 0 means
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// Metrics, when set, are kept up to date.
	Metrics *metrics.Metrics
	// Log receives the writer's errors; nil means slog.Default(). Nothing
	// logged carries an event's content.
	Log *slog.Logger
}

// Writer buffers accepted events and writes them to the tenant's schema.
type Writer struct {
	opts Options

	mu       sync.Mutex
	pending  []event.Kept
	inflight int // events taken by the batch being written
	closing  bool

	wake chan struct{}
	done chan struct{}
	// stop is closed by Close; the loop then writes everything and ends.
	stop     chan struct{}
	stopOnce sync.Once

	dbUp      atomic.Bool
	lastRound time.Time // of the loop goroutine only
	conn      *pgx.Conn // of the loop goroutine only
}

// New makes a Writer; Run starts it.
func New(opts Options) *Writer {
	if opts.Capacity <= 0 {
		opts.Capacity = DefaultCapacity
	}
	if opts.FlushRows <= 0 {
		opts.FlushRows = DefaultFlushRows
	}
	if opts.FlushRows > opts.Capacity {
		opts.FlushRows = opts.Capacity
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics != nil {
		opts.Metrics.BufferCapacity.Set(float64(opts.Capacity))
	}
	return &Writer{
		opts: opts,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
}

// Add buffers an event to be written. It returns ErrFull when Capacity
// events are waiting, and ErrClosed once Close was called: the event is
// then not accepted and the caller must say so.
func (w *Writer) Add(k event.Kept) error {
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return ErrClosed
	}
	if len(w.pending)+w.inflight >= w.opts.Capacity {
		w.mu.Unlock()
		return ErrFull
	}
	w.pending = append(w.pending, k)
	n := len(w.pending)
	depth := n + w.inflight
	w.mu.Unlock()
	if w.opts.Metrics != nil {
		w.opts.Metrics.BufferDepth.Set(float64(depth))
	}
	if n >= w.opts.FlushRows {
		w.poke()
	}
	return nil
}

// Depth is how many accepted events wait to be written.
func (w *Writer) Depth() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending) + w.inflight
}

// Ready says whether the writer can take events: the database answered its
// last round trip.
func (w *Writer) Ready() bool {
	return w.dbUp.Load()
}

func (w *Writer) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run writes batches until Close is called, then writes what is left and
// returns. ctx bounds every database call; cancelling it ends Run at once,
// leaving what was not written (Close reports how many).
func (w *Writer) Run(ctx context.Context) {
	defer close(w.done)
	defer func() {
		if w.conn != nil {
			w.conn.Close(context.WithoutCancel(ctx))
		}
	}()
	tick := time.NewTicker(w.opts.FlushInterval)
	defer tick.Stop()
	w.round(ctx)
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.stop:
			w.drain(ctx)
			return
		case <-tick.C:
		case <-w.wake:
		}
		w.round(ctx)
	}
}

// Close stops taking events, waits until everything accepted is written
// or ctx ends, and returns an error saying how many events were not
// written if any are left.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	w.closing = true
	w.mu.Unlock()
	w.stopOnce.Do(func() { close(w.stop) })
	select {
	case <-w.done:
	case <-ctx.Done():
	}
	if left := w.Depth(); left > 0 {
		return fmt.Errorf("%d accepted events could not be written before shutdown", left)
	}
	return nil
}

// round is one turn of the loop: connect if needed, write every full batch
// and whatever is waiting, or check an idle database.
func (w *Writer) round(ctx context.Context) {
	if err := w.ensureConn(ctx); err != nil {
		return
	}
	wrote, err := w.flushAll(ctx)
	if err != nil {
		w.failed(ctx, "writing events", err)
		return
	}
	if !wrote && time.Since(w.lastRound) >= idleCheckInterval {
		if _, err := w.conn.Exec(ctx, "SELECT 1"); err != nil {
			w.failed(ctx, "checking the database", err)
			return
		}
		w.succeeded()
	}
}

// drain writes until nothing is left, retrying failed batches every
// FlushInterval, until ctx ends.
func (w *Writer) drain(ctx context.Context) {
	for w.Depth() > 0 {
		w.round(ctx)
		if w.Depth() == 0 {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.opts.FlushInterval):
		}
	}
}

func (w *Writer) ensureConn(ctx context.Context) error {
	if w.conn != nil && !w.conn.IsClosed() {
		return nil
	}
	conn, err := w.opts.Connect(ctx)
	if err != nil {
		w.failed(ctx, "connecting to the database", err)
		return err
	}
	w.conn = conn
	return nil
}

func (w *Writer) succeeded() {
	w.lastRound = time.Now()
	if !w.dbUp.Swap(true) {
		w.opts.Log.Info("the database is reachable")
	}
	if w.opts.Metrics != nil {
		w.opts.Metrics.DatabaseUp.Set(1)
	}
}

// failed records a failed round trip. The connection is dropped, so the
// next round starts from a fresh one. Errors come from the database or
// the network and carry no event content; storage errors never carry
// passwords.
func (w *Writer) failed(ctx context.Context, what string, err error) {
	if w.dbUp.Swap(false) || w.lastRound.IsZero() {
		w.opts.Log.Error("database unavailable; accepted events are kept and written when it returns",
			"while", what, "error", err.Error(), "buffered", w.Depth())
	}
	w.lastRound = time.Now()
	if w.opts.Metrics != nil {
		w.opts.Metrics.DatabaseUp.Set(0)
	}
	if w.conn != nil {
		w.conn.Close(context.WithoutCancel(ctx))
		w.conn = nil
	}
}

// flushAll writes batches of at most FlushRows until the buffer is empty.
func (w *Writer) flushAll(ctx context.Context) (wrote bool, err error) {
	for {
		batch := w.take()
		if len(batch) == 0 {
			return wrote, nil
		}
		err := w.copyBatch(ctx, batch)
		w.settle(batch, err)
		if err != nil {
			if w.opts.Metrics != nil {
				w.opts.Metrics.FlushErrors.Inc()
			}
			return wrote, err
		}
		wrote = true
		w.succeeded()
	}
}

// take moves the oldest FlushRows events into the batch being written;
// they still count against the capacity until settle.
func (w *Writer) take() []event.Kept {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := min(len(w.pending), w.opts.FlushRows)
	if n == 0 {
		return nil
	}
	batch := w.pending[:n:n]
	w.pending = w.pending[n:]
	w.inflight = n
	return batch
}

// settle ends a batch: written, it is forgotten; failed, it goes back to
// the head of the buffer, in order, to be tried again.
func (w *Writer) settle(batch []event.Kept, err error) {
	w.mu.Lock()
	w.inflight = 0
	if err != nil {
		w.pending = append(batch, w.pending...)
	} else if len(w.pending) == 0 {
		w.pending = nil // let the backing array go
	}
	depth := len(w.pending)
	w.mu.Unlock()
	if w.opts.Metrics != nil {
		w.opts.Metrics.BufferDepth.Set(float64(depth))
	}
}

func (w *Writer) copyBatch(ctx context.Context, batch []event.Kept) error {
	start := time.Now()
	n, err := w.conn.CopyFrom(ctx, pgx.Identifier{w.opts.Schema, storage.EventsTable}, Columns,
		pgx.CopyFromSlice(len(batch), func(i int) ([]any, error) { return Row(batch[i]), nil }))
	if err != nil {
		return fmt.Errorf("COPY of %d events: %w", len(batch), err)
	}
	if w.opts.Metrics != nil {
		w.opts.Metrics.FlushDuration.Observe(time.Since(start).Seconds())
		w.opts.Metrics.RowsWritten.Add(float64(n))
	}
	return nil
}

// Row is k's values in Columns' order; "" and absent values are NULL,
// which the roll-up reads as unknown.
func Row(k event.Kept) []any {
	text := func(s string) any {
		if s == "" {
			return nil
		}
		return s
	}
	var props any
	if len(k.Props) > 0 {
		props = string(k.Props)
	}
	var visitor, engagedMs, scrollDepth any
	if k.HasVisitorID {
		visitor = k.VisitorID
	}
	if k.HasEngagedMs {
		engagedMs = k.EngagedMs
	}
	if k.HasScrollDepth {
		scrollDepth = k.ScrollDepth
	}
	return []any{
		k.ReceivedAt.UTC(), k.Name, text(k.Hostname), text(k.Path), text(k.Referrer),
		text(k.UTMSource), text(k.UTMMedium), text(k.UTMCampaign), text(k.UTMTerm), text(k.UTMContent), text(k.ClickIDType),
		text(k.Source), text(k.Medium), text(k.Title),
		text(k.Browser), text(k.OS), text(k.Device), text(k.Country), text(k.Region), text(k.City),
		visitor, props, engagedMs, scrollDepth,
	}
}
