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

// Package retention is the manager's "retention" subcommand, which a
// tenant's retention CronJob runs with the credentials of the tenant's
// schema owner (its storage Secret; the ingest role's are refused):
//
//	manager retention --retention-days 30
//
// It rolls the days older than the window (by the database's clock) into daily aggregates, drops
// their raw events, makes the next days' partitions
// (storage.RunRetention), and prints what it did as one JSON line on stdout (the fields of storage.RetentionSummary), for example
//
//	{"schema":"t_kee6crekfw7nchqoyzuuldmgpa","retentionDays":30,"now":"2026-05-17T03:17:00Z","keepFrom":"2026-04-17","skipped":false,"daysRolledUp":1,"eventsRolledUp":5120,"partitionsDropped":1,"partitionsCreated":1,"oldestRawEvent":"2026-04-17T00:00:03Z"}
//
// Settings come from flags or, for each flag not given, from the
// environment, named as libpq names them where libpq has a name:
//
//	flag              env               Secret key   meaning
//	--retention-days  RETENTION_DAYS    -            a plan's window (v1alpha1.PlanRetentionDays; required)
//	--host            PGHOST            host         server host
//	--port            PGPORT            port         server port (default 5432)
//	--database        PGDATABASE        database     region database
//	--username        PGUSER            username     the tenant's schema owner
//	(none)            PGPASSWORD        password     the tenant's password
//	--password-file   PGPASSWORD_FILE   -            file holding only the password
//	--sslmode         PGSSLMODE         sslmode      disable|require|verify-ca|verify-full (default verify-full)
//	--sslrootcert     PGSSLROOTCERT     -            PEM file of the CA(s) to trust
//	--schema          PGSCHEMA          schema       tenant schema (default: the user name)
//	--timeout         RETENTION_TIMEOUT -            give up after this long (default 30m)
//
// The password has no flag, so it never shows in a process list; it comes
// from PGPASSWORD (the CronJob sets it from the tenant Secret's "password"
// key) or from a file. PGPASSWORD_FILE is not libpq's PGPASSFILE, which has
// the .pgpass format. Exit codes: 0 done (also when another run held the
// lock and this one skipped), 1 the run failed, 2 bad usage. Errors go to
// stderr as one line with their reason, and never contain the password.
package retention

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// Exit codes of Run.
const (
	// ExitOK: the run finished, or skipped because another run held the lock.
	ExitOK = 0
	// ExitFailed: the run failed; the reason is on stderr.
	ExitFailed = 1
	// ExitUsage: the flags or environment are wrong.
	ExitUsage = 2
)

// DefaultTimeout bounds a run when neither --timeout nor RETENTION_TIMEOUT
// is set.
const DefaultTimeout = 30 * time.Minute

// config is the parsed command line and environment.
type config struct {
	days    int
	creds   storage.Credentials
	timeout time.Duration
}

// Run is the retention subcommand: args are the arguments after
// "retention", getenv reads the environment (os.Getenv in production), and
// the summary and errors go to stdout and stderr. It returns the exit code.
func Run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := parse(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return ExitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "retention: %v\n", err)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()

	summary, err := run(ctx, cfg, stderr)
	if err != nil {
		msg := err.Error()
		if cfg.creds.Password != "" {
			msg = strings.ReplaceAll(msg, cfg.creds.Password, "<redacted>")
		}
		fmt.Fprintf(stderr, "retention: failed (%s): %s\n", storage.ReasonFor(err), msg)
		return ExitFailed
	}
	line, err := json.Marshal(summary)
	if err != nil {
		fmt.Fprintf(stderr, "retention: encoding the summary: %v\n", err)
		return ExitFailed
	}
	fmt.Fprintf(stdout, "%s\n", line)
	return ExitOK
}

// processClock is this machine's clock. It decides nothing: which days have
// expired is the database's clock's to say (storage.DatabaseNow), the same
// for every tenant's job wherever it runs; a run only warns when this
// clock is off the database's by more than clockSkewWarning.
var processClock = time.Now

// clockSkewWarning is how far this machine's clock may be off the
// database's before a run says so on stderr.
const clockSkewWarning = time.Minute

func run(ctx context.Context, cfg config, stderr io.Writer) (storage.RetentionSummary, error) {
	conn, err := storage.ConnectTenant(ctx, cfg.creds)
	if err != nil {
		return storage.RetentionSummary{}, err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	now, err := storage.DatabaseNow(ctx, conn)
	if err != nil {
		return storage.RetentionSummary{}, fmt.Errorf("reading the database's clock: %w", err)
	}
	if skew := processClock().Sub(now); skew > clockSkewWarning || skew < -clockSkewWarning {
		fmt.Fprintf(stderr, "retention: this machine's clock is %s off the database's; the database's decides which days have expired\n",
			skew.Round(time.Second))
	}
	return storage.RunRetention(ctx, conn, cfg.creds.Schema, cfg.days, now)
}

func parse(args []string, getenv func(string) string, stderr io.Writer) (config, error) {
	fs := flag.NewFlagSet("retention", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: manager retention --retention-days DAYS (%s) [flags]\n\n"+
			"Rolls a tenant's expired days into aggregates and drops their raw events.\n"+
			"Each flag falls back to the environment variable in brackets; the password\n"+
			"comes from PGPASSWORD or --password-file only.\n\n", v1alpha1.PlanWindows())
		fs.PrintDefaults()
	}
	days := fs.String("retention-days", "", "days of raw events to keep: "+v1alpha1.PlanWindows()+" [RETENTION_DAYS]")
	host := fs.String("host", "", "PostgreSQL host [PGHOST]")
	port := fs.String("port", "", "PostgreSQL port, default 5432 [PGPORT]")
	database := fs.String("database", "", "region database [PGDATABASE]")
	user := fs.String("username", "", "the tenant's schema owner [PGUSER]")
	passwordFile := fs.String("password-file", "", "file holding the password [PGPASSWORD_FILE]")
	sslMode := fs.String("sslmode", "", "disable, require, verify-ca or verify-full (default) [PGSSLMODE]")
	rootCert := fs.String("sslrootcert", "", "PEM file of the CA certificates to trust [PGSSLROOTCERT]")
	schema := fs.String("schema", "", "tenant schema, default the user name [PGSCHEMA]")
	timeout := fs.String("timeout", "", "give up after this long, default 30m [RETENTION_TIMEOUT]")
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	or := func(flagValue, env string) string {
		if flagValue != "" {
			return flagValue
		}
		return strings.TrimSpace(getenv(env))
	}

	var cfg config
	daysStr := or(*days, "RETENTION_DAYS")
	if daysStr == "" {
		return config{}, fmt.Errorf("--retention-days is required (%s)", v1alpha1.PlanWindows())
	}
	n, err := strconv.Atoi(daysStr)
	if err != nil || !slices.Contains(v1alpha1.PlanRetentionDays, int32(n)) {
		return config{}, fmt.Errorf("--retention-days must be %s (the plans' windows), not %q", v1alpha1.PlanWindows(), daysStr)
	}
	cfg.days = n

	// Each flag given stands for its environment variable.
	flags := map[string]string{
		storage.EnvHost: *host, storage.EnvPort: *port, storage.EnvDatabase: *database, storage.EnvUser: *user,
		storage.EnvPasswordFile: *passwordFile, storage.EnvSSLMode: *sslMode, storage.EnvSSLRootCert: *rootCert,
		storage.EnvSchema: *schema,
	}
	c, err := storage.CredentialsFromEnv(func(name string) string {
		if v := flags[name]; v != "" {
			return v
		}
		return getenv(name)
	})
	if err != nil {
		return config{}, err
	}
	cfg.creds = c

	cfg.timeout = DefaultTimeout
	if s := or(*timeout, "RETENTION_TIMEOUT"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return config{}, fmt.Errorf("timeout %q is not a positive duration like 30m", s)
		}
		cfg.timeout = d
	}
	return cfg, nil
}
