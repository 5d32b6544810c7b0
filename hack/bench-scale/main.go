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

// Command bench-scale measures the operator at N tenants against a local
// control plane and PostgreSQL that hack/bench-scale/run.sh brings up, and
// prints one table of figures. It is a benchmark, not a test: it fails only
// when a step does not finish, and then says what it was waiting for.
//
//	bench-scale operator -n 1000   # the operator beside the floor
//	bench-scale pg -n 1000         # PostgreSQL at scale, without Kubernetes
//
// See the README, section "Scale", for what each figure means.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// config is what both modes share: the flags, and the local PostgreSQL's
// administrator from hack/local/postgres.sh's environment.
type config struct {
	n        int
	replicas int
	workers  int
	samples  int
	settle   time.Duration
	window   time.Duration
	manager  string
	logDir   string
	gogc     string
	warm     int
	commit   string
	pgDays   int
	pgDrop   bool
	floor    bool

	pgHost, pgUser, pgPassword string
	pgPort                     int
}

func main() {
	if len(os.Args) < 2 || (os.Args[1] != "operator" && os.Args[1] != "pg") {
		fmt.Fprintln(os.Stderr, "usage: bench-scale operator|pg [flags]  (make bench-scale, make bench-scale-pg)")
		os.Exit(2)
	}
	mode := os.Args[1]
	var c config
	fs := flag.NewFlagSet(mode, flag.ExitOnError)
	fs.IntVar(&c.n, "n", 100, "Tenants.")
	fs.IntVar(&c.replicas, "replicas", 2, "Ingest replicas of each tenant (operator mode).")
	fs.IntVar(&c.workers, "workers", 4, "The operator's --max-concurrent-reconciles, and as many workers for the floor and for provisioning in pg mode.")
	fs.IntVar(&c.samples, "samples", 20, "Tenants whose spec is changed, one at a time, for the spec-change latency.")
	fs.DurationVar(&c.settle, "settle", time.Minute, "Wait after convergence before the at-rest window.")
	fs.DurationVar(&c.window, "window", 6*time.Minute, "The at-rest window; longer than the StorageRegions' 5-minute re-check, so it holds one.")
	fs.StringVar(&c.manager, "manager", "bin/manager", "The manager binary.")
	fs.StringVar(&c.logDir, "log-dir", ".run/bench-scale", "Where the operator's log goes.")
	fs.StringVar(&c.commit, "commit", "", "The commit of the operator measured, for the table's header.")
	fs.IntVar(&c.pgDays, "pg-days", 366, "pg mode: past days of events partitions each tenant is filled with, a 365-day plan's year and the one day that expires; 0 leaves the tenants as provisioned.")
	fs.IntVar(&c.warm, "warm", 20, "operator mode: tenants converged before the baseline sample, so what the first tenants set up once (type and schema caches, connection pools, the code first run) is not counted per tenant; 0 measures from the empty operator.")
	fs.StringVar(&c.gogc, "gogc", "", "operator mode: GOGC for the manager only (the cluster's processes keep theirs); empty: the manager's default.")
	fs.BoolVar(&c.floor, "floor", true, "operator mode: measure the floor first (at large N its namespaces' deletion alone takes minutes).")
	fs.BoolVar(&c.pgDrop, "pg-drop", true, "pg mode: drop the database and the tenants' roles at the end (run.sh turns it off when it deletes the server anyway).")
	_ = fs.Parse(os.Args[2:])
	c.pgHost, c.pgUser = os.Getenv("LOCAL_PG_HOST"), os.Getenv("LOCAL_PG_USER")
	if _, err := fmt.Sscan(os.Getenv("LOCAL_PG_PORT"), &c.pgPort); err != nil {
		fail("LOCAL_PG_PORT must be the local PostgreSQL's port (hack/local/postgres.sh env): %v", err)
	}
	pw, err := os.ReadFile(os.Getenv("LOCAL_PG_PASSWORD_FILE"))
	if err != nil {
		fail("LOCAL_PG_PASSWORD_FILE must name the local PostgreSQL's admin password file: %v", err)
	}
	c.pgPassword = string(trimSpace(pw))
	if c.n < 1 || c.workers < 1 || c.replicas < 1 || c.warm < 0 {
		fail("-n, -workers and -replicas must be positive, -warm not negative")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch mode {
	case "operator":
		err = runOperatorBench(ctx, c)
	case "pg":
		err = runPGBench(ctx, c)
	}
	if err != nil {
		stop()
		fail("%v", err)
	}
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, ">> bench-scale %s: %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "!! bench-scale: %s\n", fmt.Sprintf(format, args...))
	os.Exit(1)
}
