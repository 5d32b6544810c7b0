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
// Nothing accepted is dropped. The buffer is bounded in bytes (an
// estimate of what each waiting event holds in memory), not in events, so a
// burst of large events cannot take the pod past its memory limit. A batch
// that fails to be written stays at the head of the buffer and is tried
// again; while it waits, new events fill the rest of the buffer, and when
// that is full Add refuses (the server answers 503) instead of dropping.
// Each COPY has a deadline (BatchTimeout), so a black-holed connection is
// given up and dialled again rather than waited on for ever; and while
// events wait and nothing has been written for WedgedAfter, Ready says no,
// so the Service sends the traffic to other replicas. A batch the database
// refuses for its content (one row it cannot store, a data or constraint
// error) is split until the rows that fail are alone; those are set aside,
// counted (ingest_events_rejected_total) and logged by error code only, and
// every other row is written. Close writes everything left.
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
	"unsafe"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

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
	// DefaultCapacityBytes is 32 MiB of waiting events: an eighth of the
	// default ingest pod's 256 MiB limit, about 40,000 typical events or
	// 3,000 of the largest the body limit lets in.
	DefaultCapacityBytes = 32 << 20
	DefaultFlushRows     = 2000
	DefaultFlushInterval = time.Second
	// DefaultBatchTimeout bounds one COPY: 2,000 rows take milliseconds,
	// so a batch still running after this is on a dead connection.
	DefaultBatchTimeout = 10 * time.Second
	// DefaultWedgedAfter is how long events may wait with nothing written
	// before the writer says it is not ready: longer than a batch's
	// deadline and a reconnect.
	DefaultWedgedAfter = 15 * time.Second
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
	// CapacityBytes bounds the memory the events waiting to be written
	// hold (EventBytes of each); 0 means DefaultCapacityBytes.
	CapacityBytes int
	// BatchTimeout bounds one COPY; 0 means DefaultBatchTimeout.
	BatchTimeout time.Duration
	// WedgedAfter is how long events may wait with nothing written before
	// Ready turns false; 0 means DefaultWedgedAfter.
	WedgedAfter time.Duration
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

	mu            sync.Mutex
	pending       []event.Kept
	pendingBytes  int
	inflight      int // events taken by the batch being written
	inflightBytes int
	closing       bool
	// lastWritten is when a batch was last written, or when the buffer
	// last went from empty to waiting: the start of the current wait.
	lastWritten time.Time

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
	if opts.CapacityBytes <= 0 {
		opts.CapacityBytes = DefaultCapacityBytes
	}
	if opts.FlushRows <= 0 {
		opts.FlushRows = DefaultFlushRows
	}
	if opts.BatchTimeout <= 0 {
		opts.BatchTimeout = DefaultBatchTimeout
	}
	if opts.WedgedAfter <= 0 {
		opts.WedgedAfter = DefaultWedgedAfter
	}
	if opts.FlushInterval <= 0 {
		opts.FlushInterval = DefaultFlushInterval
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Metrics != nil {
		opts.Metrics.BufferCapacityBytes.Set(float64(opts.CapacityBytes))
	}
	return &Writer{
		opts: opts,
		wake: make(chan struct{}, 1),
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
}

// keptOverhead is what an event.Kept holds besides its strings' and
// props' bytes: the struct itself, in the buffer's backing array.
const keptOverhead = int(unsafe.Sizeof(event.Kept{}))

// EventBytes estimates the memory a waiting event holds: its struct and
// the bytes of its strings and props.
func EventBytes(k event.Kept) int {
	n := keptOverhead + len(k.Props)
	for _, s := range []string{k.Name, k.Hostname, k.Path, k.Referrer, k.UTMSource, k.UTMMedium, k.UTMCampaign,
		k.UTMTerm, k.UTMContent, k.ClickIDType, k.Source, k.Medium, k.Title, k.Browser, k.OS, k.Device,
		k.Country, k.Region, k.City} {
		n += len(s)
	}
	return n
}

// Add buffers an event to be written. It returns ErrFull when the events
// waiting hold CapacityBytes, and ErrClosed once Close was called: the
// event is then not accepted and the caller must say so.
func (w *Writer) Add(k event.Kept) error {
	size := EventBytes(k)
	w.mu.Lock()
	if w.closing {
		w.mu.Unlock()
		return ErrClosed
	}
	if w.pendingBytes+w.inflightBytes+size > w.opts.CapacityBytes {
		w.mu.Unlock()
		return ErrFull
	}
	if len(w.pending)+w.inflight == 0 {
		w.lastWritten = time.Now()
	}
	w.pending = append(w.pending, k)
	w.pendingBytes += size
	n := len(w.pending)
	depth, bytes := n+w.inflight, w.pendingBytes+w.inflightBytes
	w.mu.Unlock()
	w.gauge(depth, bytes)
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
// last round trip, and it is not wedged: events have not waited longer
// than WedgedAfter with nothing written.
func (w *Writer) Ready() bool {
	if !w.dbUp.Load() {
		return false
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.pending)+w.inflight == 0 || time.Since(w.lastWritten) < w.opts.WedgedAfter
}

// gauge publishes the buffer's depth in events and in bytes.
func (w *Writer) gauge(depth, bytes int) {
	if w.opts.Metrics != nil {
		w.opts.Metrics.BufferDepth.Set(float64(depth))
		w.opts.Metrics.BufferBytes.Set(float64(bytes))
	}
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
		pingCtx, cancel := context.WithTimeout(ctx, w.opts.BatchTimeout)
		_, err := w.conn.Exec(pingCtx, "SELECT 1")
		cancel()
		if err != nil {
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
	connectCtx, cancel := context.WithTimeout(ctx, w.opts.BatchTimeout)
	defer cancel()
	conn, err := w.opts.Connect(connectCtx)
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
		err := w.writeBatch(ctx, batch)
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

// writeBatch writes batch. When the database refuses it for a row's
// content (refusedRow), it is split in two and each half written on its
// own, down to single rows: a row refused alone is set aside, counted and
// logged by its error code, never its content, and the rows beside it are
// written. Any other error (the connection, a deadline) fails the whole
// batch, which stays in the buffer to be tried again.
func (w *Writer) writeBatch(ctx context.Context, batch []event.Kept) error {
	err := w.copyBatch(ctx, batch)
	if !refusedRow(err) {
		return err
	}
	if len(batch) == 1 {
		var pgErr *pgconn.PgError
		errors.As(err, &pgErr)
		w.opts.Log.Error("an accepted event was set aside: the database refused it",
			"sqlstate", pgErr.Code, "error", pgErr.Message)
		if w.opts.Metrics != nil {
			w.opts.Metrics.Rejected.Inc()
		}
		return nil
	}
	half := len(batch) / 2
	if err := w.writeBatch(ctx, batch[:half]); err != nil {
		return err
	}
	return w.writeBatch(ctx, batch[half:])
}

// refusedRow says whether err is the database refusing a row for what it
// holds (SQLSTATE classes 22, data exception, such as an invalid byte
// sequence or a value out of range, and 23, integrity constraint
// violation): trying the same row again can never succeed.
func refusedRow(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || len(pgErr.Code) < 2 {
		return false
	}
	class := pgErr.Code[:2]
	return class == "22" || class == "23"
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
	size := 0
	for _, k := range batch {
		size += EventBytes(k)
	}
	w.inflight, w.inflightBytes = n, size
	w.pendingBytes -= size
	return batch
}

// settle ends a batch: written, it is forgotten; failed, it goes back to
// the head of the buffer, in order, to be tried again.
func (w *Writer) settle(batch []event.Kept, err error) {
	w.mu.Lock()
	size := w.inflightBytes
	w.inflight, w.inflightBytes = 0, 0
	if err != nil {
		w.pending = append(batch, w.pending...)
		w.pendingBytes += size
	} else {
		w.lastWritten = time.Now()
		if len(w.pending) == 0 {
			w.pending = nil // let the backing array go
		}
	}
	depth, bytes := len(w.pending), w.pendingBytes
	w.mu.Unlock()
	w.gauge(depth, bytes)
}

func (w *Writer) copyBatch(ctx context.Context, batch []event.Kept) error {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, w.opts.BatchTimeout)
	defer cancel()
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
