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

package pgtest_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/millimetric/tenant-operator/internal/storage"
	"github.com/millimetric/tenant-operator/internal/storage/pgtest"
)

func TestStartServesBothRegionsAndStopRemovesEverything(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = srv.Stop()
		}
	}()

	if srv.Host != "127.0.0.1" {
		t.Errorf("server listens on %s, want 127.0.0.1 only", srv.Host)
	}
	if strings.Contains(fmt.Sprintf("%v %#v", srv.AdminConfig("EU"), srv.AdminConfig("EU")), srv.AdminPassword) {
		t.Errorf("printing an AdminConfig shows the admin password")
	}
	for _, region := range []string{"EU", "US"} {
		for name, cfg := range map[string]storage.AdminConfig{
			"superuser": srv.AdminConfig(region), "limited admin": srv.LimitedAdminConfig(region),
		} {
			conn, err := storage.Connect(ctx, cfg)
			if err != nil {
				t.Fatalf("%s cannot connect to %s: %v", name, region, err)
			}
			var db string
			if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
				t.Fatal(err)
			}
			if db != srv.Databases[region] {
				t.Errorf("%s region database is %q, want %q", region, db, srv.Databases[region])
			}
			_ = conn.Close(ctx)
		}
	}
	// TLS with the server's CA and its IP address as the name.
	tlsCfg := srv.AdminConfig("EU")
	tlsCfg.SSLMode, tlsCfg.CACert = storage.SSLModeVerifyFull, srv.CACert
	conn, err := storage.Connect(ctx, tlsCfg)
	if err != nil {
		t.Fatalf("verify-full with the server's CA: %v", err)
	}
	var ssl bool
	if err := conn.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil || !ssl {
		t.Errorf("connection is not encrypted (ssl=%v, err=%v)", ssl, err)
	}
	_ = conn.Close(ctx)

	if err := srv.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	if _, err := os.Stat(srv.Dir); !os.IsNotExist(err) {
		t.Errorf("Stop left %s behind (stat: %v)", srv.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", srv.Port), time.Second); err == nil {
		_ = c.Close()
		t.Errorf("something still listens on port %d after Stop", srv.Port)
	}
	if err := srv.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

func TestAServerThatCannotStartLeavesNothingBehind(t *testing.T) {
	// A bin directory whose initdb is real and whose postgres exits at once.
	real, err := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if err != nil || len(real) == 0 {
		t.Fatalf("no initdb to test with: %v", err)
	}
	// Not t.TempDir: its parent is private to root, and the postgres user
	// must reach these.
	mkdir := func() string {
		dir, err := os.MkdirTemp("", "pgtest-failing-")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.RemoveAll(dir) })
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	bin, tmp := mkdir(), mkdir()
	if err := os.Symlink(real[0], filepath.Join(bin, "initdb")); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\necho 'FATAL: fake postgres refuses to start' >&2\nexit 1\n"
	if err := os.WriteFile(filepath.Join(bin, "postgres"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PGTEST_BINDIR", bin)
	t.Setenv("TMPDIR", tmp)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	srv, err := pgtest.Start(ctx)
	if err == nil {
		_ = srv.Stop()
		t.Fatal("Start succeeded with a postgres that cannot start")
	}
	if !strings.Contains(err.Error(), "fake postgres refuses to start") {
		t.Errorf("the error does not show the server's log: %v", err)
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("Start left %d entries in its temporary directory: %v", len(left), left)
	}
}
