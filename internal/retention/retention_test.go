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

package retention_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/millimetric/tenant-operator/internal/retention"
	"github.com/millimetric/tenant-operator/internal/storage"
	"github.com/millimetric/tenant-operator/internal/storage/pgtest"
)

var srv *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &srv)) }

// tenantEnv provisions a tenant and returns the environment its CronJob
// would have, from the keys of its Secret.
func tenantEnv(t *testing.T, name string) (map[string]string, storage.Credentials) {
	t.Helper()
	ctx := context.Background()
	st, err := storage.Open(ctx, srv.AdminConfig("EU"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	// Purged at the end (before st closes), so a second run (-count=2)
	// starts from an empty schema, not from this run's roll-ups.
	t.Cleanup(func() {
		if err := st.Purge(ctx, name); err != nil {
			t.Errorf("purge %s: %v", name, err)
		}
	})
	roles, err := st.Provision(ctx, name, storage.ProvisionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	creds := roles.Owner
	return map[string]string{
		"PGHOST":     creds.Host,
		"PGPORT":     strconv.Itoa(int(creds.Port)),
		"PGDATABASE": creds.Database,
		"PGSSLMODE":  creds.SSLMode,
		"PGSCHEMA":   creds.Schema,
		"PGUSER":     creds.Username,
		"PGPASSWORD": creds.Password,
	}, creds
}

func run(args []string, env map[string]string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = retention.Run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestRetentionCommandPrintsOneJSONLine(t *testing.T) {
	env, creds := tenantEnv(t, "cmd-ok")
	ctx := context.Background()
	// One day of events well past a 30-day window.
	conn, err := storage.ConnectTenant(ctx, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	old := time.Now().UTC().AddDate(0, 0, -40)
	if _, err := storage.EnsureDayPartitions(ctx, conn, creds.Schema, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.events (received_at, event_name, visitor_id, url_path)
		SELECT $1::timestamptz, 'pageview', i % 3, '/' FROM generate_series(1, 12) i`, old); err != nil {
		t.Fatal(err)
	}

	code, stdout, stderr := run([]string{"--retention-days", "30"}, env)
	if code != retention.ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Errorf("stdout is not one line: %q", stdout)
	}
	var sum storage.RetentionSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("stdout is not JSON: %v: %q", err, stdout)
	}
	if sum.Schema != creds.Schema || sum.RetentionDays != 30 || sum.Skipped ||
		sum.DaysRolledUp != 1 || sum.EventsRolledUp != 12 || sum.PartitionsDropped != 1 || sum.OldestRawEvent != nil {
		t.Errorf("summary %s", stdout)
	}
	for _, key := range []string{`"schema"`, `"skipped"`, `"daysRolledUp"`, `"partitionsDropped"`, `"partitionsCreated"`, `"oldestRawEvent":null`} {
		if !strings.Contains(stdout, key) {
			t.Errorf("summary lacks %s: %s", key, stdout)
		}
	}

	code, stdout, _ = run([]string{"--retention-days=30"}, env)
	if code != retention.ExitOK || !strings.Contains(stdout, `"partitionsDropped":0`) {
		t.Errorf("second run: exit %d, %s", code, stdout)
	}
}

func TestRetentionCommandSettings(t *testing.T) {
	env, creds := tenantEnv(t, "cmd-settings")
	with := func(changes map[string]string) map[string]string {
		e := map[string]string{}
		for k, v := range env {
			e[k] = v
		}
		for k, v := range changes {
			if v == "" {
				delete(e, k)
			} else {
				e[k] = v
			}
		}
		return e
	}
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "password")
	if err := os.WriteFile(pwFile, []byte(creds.Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, srv.CACert, 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name      string
		args      []string
		env       map[string]string
		code      int
		stderrHas string
	}{
		{"the env of the tenant Secret is enough", []string{"--retention-days", "90"}, env, 0, ""},
		{"RETENTION_DAYS can stand for the flag", nil, with(map[string]string{"RETENTION_DAYS": "365"}), 0, ""},
		{"the schema defaults to the user name", []string{"--retention-days", "30"}, with(map[string]string{"PGSCHEMA": ""}), 0, ""},
		{"a password file works instead of PGPASSWORD", []string{"--retention-days", "30", "--password-file", pwFile},
			with(map[string]string{"PGPASSWORD": ""}), 0, ""},
		{"verify-full with the region's CA works", []string{"--retention-days", "30", "--sslmode", "verify-full"},
			with(map[string]string{"PGSSLROOTCERT": caFile}), 0, ""},
		{"a retention outside the plans is refused", []string{"--retention-days", "45"}, env, 2, "must be 30, 90 or 365"},
		{"a missing retention is refused", nil, env, 2, "--retention-days is required"},
		{"a missing password is refused", []string{"--retention-days", "30"}, with(map[string]string{"PGPASSWORD": ""}), 2, "no password"},
		{"a missing host is refused", []string{"--retention-days", "30"}, with(map[string]string{"PGHOST": ""}), 2, "missing PGHOST"},
		{"an unknown flag is refused", []string{"--retention-days", "30", "--pasword", "x"}, env, 2, "flag provided but not defined"},
		{"a wrong password fails with its reason", []string{"--retention-days", "30"},
			with(map[string]string{"PGPASSWORD": "wrong-password-for-the-test"}), 1, "AuthenticationFailed"},
		{"another tenant's schema fails", []string{"--retention-days", "30", "--schema", "tenant_someone_else"}, env, 1, "does not exist"},
		{"verify-full without the CA fails on TLS", []string{"--retention-days", "30", "--sslmode", "verify-full"}, env, 1, "TLSFailed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := run(tc.args, tc.env)
			if code != tc.code {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.stderrHas) {
				t.Errorf("stderr %q does not say %q", stderr, tc.stderrHas)
			}
			if tc.code != 0 && stdout != "" {
				t.Errorf("a failed run printed to stdout: %q", stdout)
			}
			for _, secret := range []string{creds.Password, "wrong-password-for-the-test"} {
				if strings.Contains(stdout+stderr, secret) {
					t.Errorf("output contains a password: %q %q", stdout, stderr)
				}
			}
		})
	}
}

// TestRetentionGoesByTheDatabasesClockNotThisMachines: a job on a machine
// whose clock is 40 days fast deletes nothing the database's clock keeps
// inside the window, and says the clocks disagree.
func TestRetentionGoesByTheDatabasesClockNotThisMachines(t *testing.T) {
	env, creds := tenantEnv(t, "cmd-clock")
	ctx := context.Background()
	conn, err := storage.ConnectTenant(ctx, creds)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	now := time.Now().UTC()
	for _, daysAgo := range []int{40, 20} {
		day := now.AddDate(0, 0, -daysAgo)
		if _, err := storage.EnsureDayPartitions(ctx, conn, creds.Schema, day, day); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, `INSERT INTO `+creds.Schema+`.events (received_at, event_name) VALUES ($1, 'pageview')`, day); err != nil {
			t.Fatal(err)
		}
	}
	retention.SetProcessClock(t, func() time.Time { return time.Now().AddDate(0, 0, 40) })

	code, stdout, stderr := run([]string{"--retention-days", "30"}, env)
	if code != retention.ExitOK {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	var sum storage.RetentionSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("stdout is not JSON: %v: %q", err, stdout)
	}
	if sum.PartitionsDropped != 1 || sum.OldestRawEvent == nil || now.Sub(*sum.OldestRawEvent) > 21*24*time.Hour {
		t.Errorf("dropped %d partitions, oldest raw event left %v; want only the day 40 days ago dropped and the one 20 days ago kept", sum.PartitionsDropped, sum.OldestRawEvent)
	}
	if d := sum.Now.Sub(now); d < -time.Minute || d > time.Minute {
		t.Errorf("the run's clock said %s, want the database's, about %s", sum.Now, now)
	}
	if !strings.Contains(stderr, "clock is") || !strings.Contains(stderr, "off the database's") {
		t.Errorf("stderr %q does not say this machine's clock is off", stderr)
	}
}
