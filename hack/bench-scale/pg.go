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

package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// pgDatabase is the database the PostgreSQL part provisions into: one
// region's database, made afresh for each run.
const pgDatabase = "bench_scale_pg"

// pgPlanDays is the plan the tenants are on: the longest, the most
// partitions.
const pgPlanDays = 365

// pgBackfillBatch is how many days of partitions one transaction makes:
// each takes locks on five relations until it commits.
const pgBackfillBatch = 30

// pgBench is one run of the pg mode.
type pgBench struct {
	c      config
	admin  storage.AdminConfig
	names  []string
	creds  []storage.Provisioned
	table  *table
	server *pgx.Conn // to the maintenance database, as the administrator
	db     *pgx.Conn // to pgDatabase, as the administrator
}

func runPGBench(ctx context.Context, c config) (err error) {
	p := &pgBench{c: c, table: &table{
		title: fmt.Sprintf("make bench-scale-pg N=%d: %d tenants on %d-day plans in one region's database, %d workers; operator at %s; %s",
			c.n, c.n, pgPlanDays, c.workers, c.commit, machine()),
		header: []string{"figure", "value"},
	}}
	p.admin = storage.AdminConfig{Host: c.pgHost, Port: int32(c.pgPort), Database: "postgres", SSLMode: storage.SSLModeDisable,
		Username: c.pgUser, Password: c.pgPassword}
	defer func() {
		if err != nil {
			p.table.note("**Incomplete**: %v", err)
		}
		p.table.print()
	}()
	if p.server, err = storage.Connect(ctx, p.admin); err != nil {
		return err
	}
	defer p.server.Close(context.Background())
	var version string
	if err := p.server.QueryRow(ctx, `SHOW server_version`).Scan(&version); err != nil {
		return err
	}
	var settings []string
	for _, s := range []string{"shared_buffers", "max_locks_per_transaction", "fsync", "autovacuum"} {
		var v string
		if err := p.server.QueryRow(ctx, `SELECT current_setting($1)`, s).Scan(&v); err != nil {
			return err
		}
		settings = append(settings, s+"="+v)
	}
	p.table.note("PostgreSQL %s (hack/local/postgres.sh), %s.", version, strings.Join(settings, ", "))
	if _, err := p.server.Exec(ctx, `DROP DATABASE IF EXISTS `+pgDatabase+` WITH (FORCE)`); err != nil {
		return err
	}
	if _, err := p.server.Exec(ctx, `CREATE DATABASE `+pgDatabase); err != nil {
		return err
	}
	defer p.cleanUp()
	p.admin.Database = pgDatabase
	if p.db, err = storage.Connect(ctx, p.admin); err != nil {
		return err
	}
	defer p.db.Close(context.Background())

	p.names = make([]string, c.n)
	for i := range p.names {
		p.names[i] = fmt.Sprintf("pg-%05d", i)
	}
	p.creds = make([]storage.Provisioned, c.n)
	base, err := p.catalog(ctx)
	if err != nil {
		return err
	}
	st, err := storage.Open(ctx, p.admin, storage.WithMaxConns(int32(c.workers)))
	if err != nil {
		return err
	}
	defer st.Close()

	// Provisioning, as the operator does for a new tenant.
	logf("pg: provisioning %d tenants (%d workers)", c.n, c.workers)
	first, wall, err := p.each(ctx, "provisioning", func(ctx context.Context, i int) error {
		var err error
		p.creds[i], err = st.Provision(ctx, p.names[i], storage.ProvisionOptions{})
		return err
	})
	if err != nil {
		return err
	}
	provisioned, err := p.catalog(ctx)
	if err != nil {
		return err
	}
	tenth := max(1, c.n/10)
	p.table.add("provision a new tenant: wall per tenant / p50 / p99 of one call",
		p.latencies(wall, first))
	p.table.add("provision a new tenant, p50: the first tenth / the last tenth",
		fmt.Sprintf("%s / %s", ms(quantile(first[:tenth], 0.5)), ms(quantile(first[len(first)-tenth:], 0.5))))
	p.table.add("as provisioned (today and 7 days ahead): relations in pg_class / per tenant / database size",
		fmt.Sprintf("%d / %.0f / %s", provisioned.relations, float64(provisioned.relations-base.relations)/float64(c.n), mib(provisioned.dbSize)))

	// A converged tenant provisioned again, with the passwords it has: the
	// periodic verification (before the fingerprint, every reconcile).
	reprovision := func(ctx context.Context, i int) error {
		_, err := st.Provision(ctx, p.names[i], storage.ProvisionOptions{
			ExistingPassword: p.creds[i].Owner.Password, ExistingIngestPassword: p.creds[i].Ingest.Password})
		return err
	}
	again, wall, err := p.each(ctx, "provisioning again", reprovision)
	if err != nil {
		return err
	}
	p.table.add("provision a converged tenant again (the periodic verification; before the fingerprint, every reconcile): wall per tenant / p50 / p99",
		p.latencies(wall, again))

	if c.pgDays <= 0 {
		return nil
	}
	// Filled in: with the default 366 days, a 365-day plan's year, every
	// day's partition, and the day the retention run below expires.
	logf("pg: making %d past days of partitions for each tenant (%d in all)", c.pgDays, c.pgDays*c.n)
	_, wall, err = p.each(ctx, "backfilling partitions", p.backfill)
	if err != nil {
		return err
	}
	year, err := p.catalog(ctx)
	if err != nil {
		return err
	}
	p.table.add(fmt.Sprintf("making %d past days of partitions, wall per tenant (setup, not the operator's work)", c.pgDays), ms(wall/time.Duration(c.n)))
	p.table.add(fmt.Sprintf("filled in (%d partitions each): relations in pg_class / per tenant", c.pgDays+1+storage.FuturePartitionDays),
		fmt.Sprintf("%d / %.0f", year.relations, float64(year.relations-base.relations)/float64(c.n)))
	p.table.add("filled in: database size / per tenant (empty tables) / system catalogs",
		fmt.Sprintf("%s / %s / %s", mib(year.dbSize), kib((year.dbSize-base.dbSize)/float64(c.n)), mib(year.catalogSize)))

	again, wall, err = p.each(ctx, "provisioning, filled in", reprovision)
	if err != nil {
		return err
	}
	p.table.add("filled in, provision a converged tenant: wall per tenant / p50 / p99",
		p.latencies(wall, again))
	oldest, wall, err := p.each(ctx, "reading the oldest raw event", func(ctx context.Context, i int) error {
		_, err := st.OldestRawEventDay(ctx, p.names[i])
		return err
	})
	if err != nil {
		return err
	}
	p.table.add("filled in, the oldest-raw-event check of a reconcile: wall per tenant / p50 / p99",
		p.latencies(wall, oldest))

	// One day's retention: each tenant's CronJob connects as the tenant's
	// owner and drops the day that expired.
	logf("pg: one day's retention run for each of the %d tenants", c.n)
	var mu sync.Mutex
	dropped := 0
	runs, wall, err := p.each(ctx, "retention", func(ctx context.Context, i int) error {
		conn, err := storage.ConnectTenant(ctx, p.creds[i].Owner)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		sum, err := storage.RunRetention(ctx, conn, p.creds[i].Owner.Schema, pgPlanDays, time.Now())
		mu.Lock()
		dropped += sum.PartitionsDropped
		mu.Unlock()
		return err
	})
	if err != nil {
		return err
	}
	p.table.add("one day's retention run across all tenants (connect as the owner, RunRetention): wall / per tenant / p50 / p99 of one run",
		secs(wall)+" / "+p.latencies(wall, runs))
	p.table.add("partitions the retention run dropped", fmt.Sprintf("%d (%d expected: the days past the plan's %d)", dropped, c.n*max(0, c.pgDays-pgPlanDays), pgPlanDays))
	return nil
}

// latencies is "wall per tenant / p50 / p99" of calls that took wall in all.
func (p *pgBench) latencies(wall time.Duration, calls []time.Duration) string {
	return fmt.Sprintf("%s / %s / %s", ms(wall/time.Duration(p.c.n)), ms(quantile(calls, 0.5)), ms(quantile(calls, 0.99)))
}

// each runs fn for every tenant on the workers and returns each call's
// time, in tenant order, and the wall time of all.
func (p *pgBench) each(ctx context.Context, what string, fn func(ctx context.Context, i int) error) ([]time.Duration, time.Duration, error) {
	took := make([]time.Duration, p.c.n)
	var count int
	var mu sync.Mutex
	start := time.Now()
	err := parallel(ctx, p.c.workers, p.c.n, func(ctx context.Context, i int) error {
		t := time.Now()
		if err := fn(ctx, i); err != nil {
			return fmt.Errorf("%s %s: %w", what, p.names[i], err)
		}
		took[i] = time.Since(t)
		mu.Lock()
		count++
		progress(count, p.c.n, what)
		mu.Unlock()
		return nil
	})
	return took, time.Since(start), err
}

// backfill makes the tenant's events partitions for the pgDays days before
// today, as its owner, in batches.
func (p *pgBench) backfill(ctx context.Context, i int) error {
	conn, err := storage.Connect(ctx, p.admin)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	schema := p.creds[i].Owner.Schema
	today := time.Now().UTC().Truncate(24 * time.Hour)
	for from := p.c.pgDays; from > 0; from -= pgBackfillBatch {
		to := max(1, from-pgBackfillBatch+1)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, `SET LOCAL ROLE `+pgx.Identifier{schema}.Sanitize()); err != nil {
				return err
			}
			_, err := storage.EnsureDayPartitions(ctx, tx, schema, today.AddDate(0, 0, -from), today.AddDate(0, 0, -to))
			return err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// catalogStats is what the database holds.
type catalogStats struct {
	relations   int64
	dbSize      float64
	catalogSize float64
}

func (p *pgBench) catalog(ctx context.Context) (catalogStats, error) {
	var s catalogStats
	err := p.db.QueryRow(ctx, `
		SELECT (SELECT count(*) FROM pg_class),
		       pg_database_size(current_database()),
		       (SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c
		        WHERE c.relnamespace = 'pg_catalog'::regnamespace AND c.relkind = 'r')`).
		Scan(&s.relations, &s.dbSize, &s.catalogSize)
	return s, err
}

// cleanUp drops the database and the tenants' roles (roles are the
// server's, not the database's).
func (p *pgBench) cleanUp() {
	if !p.c.pgDrop {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if p.db != nil {
		_ = p.db.Close(ctx)
	}
	logf("pg: dropping database %s and the tenants' roles", pgDatabase)
	if _, err := p.server.Exec(ctx, `DROP DATABASE IF EXISTS `+pgDatabase+` WITH (FORCE)`); err != nil {
		logf("pg: dropping %s: %v", pgDatabase, err)
		return
	}
	for _, c := range p.creds {
		for _, role := range []string{c.Owner.Username, c.Ingest.Username} {
			if role == "" {
				continue // never provisioned
			}
			if _, err := p.server.Exec(ctx, `DROP ROLE IF EXISTS `+pgx.Identifier{role}.Sanitize()); err != nil {
				logf("pg: dropping role %s: %v", role, err)
			}
		}
	}
}
