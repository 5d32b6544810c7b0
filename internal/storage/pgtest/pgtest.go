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

// Package pgtest runs a real, throw-away PostgreSQL server for tests.
//
// A test package starts one server from TestMain (see RunMain) and shares it
// between its tests; each test uses its own tenant names so tests do not see
// each other's objects. The server always is a private one: it listens only
// on 127.0.0.1 at a free port, keeps its data and socket in a fresh temporary
// directory, and is stopped and deleted by Stop.
//
// PostgreSQL refuses to run as root, and tests in CI run as root, so when the
// process is root the server's files are given to the "postgres" system user
// and initdb and postgres run as that user. The postgres binaries are looked
// up in /usr/lib/postgresql/<version>/bin (newest first), or the directory
// named by $PGTEST_BINDIR.
//
// The server also has TLS turned on with a certificate from a CA made for this
// run (Server.CACert), so tests can exercise every sslmode: the certificate
// is valid for the IP address 127.0.0.1 and for the name "pgtest.invalid",
// not for "localhost".
package pgtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/millimetric/tenant-operator/internal/storage"
)

const (
	// EUDatabase is the database that stands for the EU region's storage.
	EUDatabase = "events_eu"
	// USDatabase is the database that stands for the US region's storage.
	USDatabase = "events_us"

	// AdminUser is the superuser initdb creates. Tests get its password from
	// Server.AdminPassword; it is random for every run.
	AdminUser = "pgtest_admin"

	// LimitedAdminUser is a second administrator with only CREATEROLE (no
	// superuser), owner of both region databases: the shape of a managed
	// PostgreSQL service's admin account. Its password is in
	// Server.LimitedAdminPassword.
	LimitedAdminUser = "region_admin"

	// TLSServerName is the DNS name the server's certificate is valid for,
	// besides 127.0.0.1.
	TLSServerName = "pgtest.invalid"
)

// Server is a running PostgreSQL server owned by the test process.
type Server struct {
	// Host is the address the server listens on: always 127.0.0.1.
	Host string
	// Port is the TCP port the server listens on.
	Port int
	// AdminUser and AdminPassword are the superuser's credentials.
	AdminUser, AdminPassword string
	// LimitedAdminUser and LimitedAdminPassword are a CREATEROLE-only
	// administrator's credentials (see the LimitedAdminUser constant).
	LimitedAdminUser, LimitedAdminPassword string
	// Databases are the region databases by region name: "EU" and "US".
	Databases map[string]string
	// CACert is the PEM certificate of the CA that signed the server's TLS
	// certificate.
	CACert []byte
	// Dir is the temporary directory that holds the data directory, the
	// unix socket and the server log.
	Dir string

	cmd      *exec.Cmd
	exited   chan struct{}
	stopOnce sync.Once
	stopErr  error
}

// RunMain starts a server, stores it in *srv, runs the package's tests and
// benchmarks, stops the server, and returns the exit code for os.Exit. A
// server that cannot start is a failure, never a skip: tests that silently do
// not run would hide broken storage code.
//
//	var srv *pgtest.Server
//	func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &srv)) }
func RunMain(m *testing.M, srv **Server) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	s, err := Start(ctx)
	cancel()
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		return 1
	}
	*srv = s
	defer func() {
		if err := s.Stop(); err != nil {
			fmt.Fprintf(os.Stderr, "pgtest: stopping server: %v\n", err)
		}
	}()
	return m.Run()
}

// Start initialises a fresh cluster in a temporary directory, starts it, and
// creates the region databases and the limited administrator. On any failure
// it stops what it started and removes the directory.
func Start(ctx context.Context) (_ *Server, err error) {
	bindir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	runAs, err := postgresCredential()
	if err != nil {
		return nil, err
	}

	// A short path: the unix socket path inside it must fit in 107 bytes.
	base := os.TempDir()
	if len(base) > 60 {
		base = "/tmp"
	}
	dir, err := os.MkdirTemp(base, "pgtest-")
	if err != nil {
		return nil, fmt.Errorf("creating temporary directory: %w", err)
	}
	s := &Server{
		Host:             "127.0.0.1",
		AdminUser:        AdminUser,
		LimitedAdminUser: LimitedAdminUser,
		Databases:        map[string]string{"EU": EUDatabase, "US": USDatabase},
		Dir:              dir,
	}
	defer func() {
		// s, not the result: a failing return has already set that to nil.
		if err != nil {
			_ = s.Stop()
		}
	}()
	if s.AdminPassword, err = randomPassword(); err != nil {
		return nil, err
	}
	if s.LimitedAdminPassword, err = randomPassword(); err != nil {
		return nil, err
	}
	if runAs != nil {
		if err := os.Chown(dir, int(runAs.Uid), int(runAs.Gid)); err != nil {
			return nil, fmt.Errorf("giving %s to the postgres user: %w", dir, err)
		}
	}

	if err := s.initdb(ctx, bindir, runAs); err != nil {
		return nil, err
	}
	if err := s.writeTLSFiles(runAs); err != nil {
		return nil, err
	}
	// The port is picked before the server binds it, so another process can
	// take it in between: try a few times.
	for attempt := 1; ; attempt++ {
		if s.Port, err = freePort(); err != nil {
			return nil, err
		}
		err = s.startPostgres(ctx, bindir, runAs)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "could not") {
			return nil, err
		}
	}
	if err := s.bootstrap(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// AdminConfig is the superuser's connection to the database of region
// ("EU" or "US"; a database name is taken as is), without TLS.
func (s *Server) AdminConfig(region string) storage.AdminConfig {
	return storage.AdminConfig{
		Host:     s.Host,
		Port:     int32(s.Port),
		Database: s.database(region),
		SSLMode:  storage.SSLModeDisable,
		Username: s.AdminUser,
		Password: s.AdminPassword,
	}
}

// LimitedAdminConfig is like AdminConfig for the CREATEROLE-only
// administrator.
func (s *Server) LimitedAdminConfig(region string) storage.AdminConfig {
	c := s.AdminConfig(region)
	c.Username, c.Password = s.LimitedAdminUser, s.LimitedAdminPassword
	return c
}

// Connect opens a superuser connection to the database of region, for tests
// that look at the catalog directly.
func (s *Server) Connect(ctx context.Context, region string) (*pgx.Conn, error) {
	return storage.Connect(ctx, s.AdminConfig(region))
}

func (s *Server) database(region string) string {
	if db, ok := s.Databases[strings.ToUpper(region)]; ok {
		return db
	}
	return region
}

// Stop shuts the server down (fast shutdown, then SIGKILL after 20 seconds)
// and removes its directory. It is safe to call more than once.
func (s *Server) Stop() error {
	s.stopOnce.Do(func() {
		if s.cmd != nil && s.cmd.Process != nil {
			_ = s.cmd.Process.Signal(syscall.SIGINT) // fast shutdown
			select {
			case <-s.exited:
			case <-time.After(20 * time.Second):
				_ = s.cmd.Process.Kill()
				<-s.exited
				s.stopErr = errors.New("postgres did not stop within 20s and was killed")
			}
		}
		if s.Dir != "" {
			if err := os.RemoveAll(s.Dir); err != nil && s.stopErr == nil {
				s.stopErr = err
			}
		}
	})
	return s.stopErr
}

// Log returns the server's log so far, for a test's failure message.
func (s *Server) Log() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "postgres.log"))
	return string(b)
}

func (s *Server) dataDir() string { return filepath.Join(s.Dir, "data") }

func (s *Server) initdb(ctx context.Context, bindir string, runAs *syscall.Credential) error {
	// The password reaches initdb only through a file readable by its owner,
	// never on a command line, and the file is gone right after.
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := writeOwned(pwfile, []byte(s.AdminPassword+"\n"), 0o600, runAs); err != nil {
		return err
	}
	defer os.Remove(pwfile)

	cmd := exec.CommandContext(ctx, filepath.Join(bindir, "initdb"),
		"--pgdata", s.dataDir(),
		"--username", s.AdminUser,
		"--pwfile", pwfile,
		"--auth", "scram-sha-256",
		"--encoding", "UTF8",
		"--locale", "C",
		"--no-sync",
		"--no-instructions",
	)
	out, err := run(cmd, s.Dir, runAs)
	if err != nil {
		return fmt.Errorf("initdb: %w\n%s", err, out)
	}
	return nil
}

func (s *Server) startPostgres(ctx context.Context, bindir string, runAs *syscall.Credential) error {
	logPath := filepath.Join(s.Dir, "postgres.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	if runAs != nil {
		_ = os.Chown(logPath, int(runAs.Uid), int(runAs.Gid))
	}

	// postgres runs as a direct child rather than daemonised by pg_ctl, so
	// that Pdeathsig stops it even when the test binary dies without running
	// Stop (a test timeout panics past every deferred call).
	cmd := exec.Command(filepath.Join(bindir, "postgres"),
		"-D", s.dataDir(),
		"-c", "listen_addresses="+s.Host,
		"-c", "port="+strconv.Itoa(s.Port),
		"-c", "unix_socket_directories="+s.Dir,
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_connections=200",
		"-c", "shared_buffers=128MB",
		"-c", "ssl=on",
		"-c", "ssl_cert_file="+filepath.Join(s.Dir, "server.crt"),
		"-c", "ssl_key_file="+filepath.Join(s.Dir, "server.key"),
		"-c", "log_min_messages=warning",
		"-c", "password_encryption=scram-sha-256",
		"-c", "TimeZone=UTC",
	)
	cmd.Dir = s.Dir
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs, Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	s.cmd, s.exited = cmd, exited

	// Ready when the superuser can log in over TCP.
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("postgres exited during start-up (could not start):\n%s", tail(s.Log(), 2000))
		default:
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		conn, err := storage.Connect(cctx, s.AdminConfig("postgres"))
		cancel()
		if err == nil {
			_ = conn.Close(ctx)
			return nil
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			return fmt.Errorf("postgres did not accept connections: %w\n%s", err, tail(s.Log(), 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// bootstrap creates the region databases and the limited administrator.
func (s *Server) bootstrap(ctx context.Context) error {
	conn, err := storage.Connect(ctx, s.AdminConfig("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	limited := pgx.Identifier{s.LimitedAdminUser}.Sanitize()
	stmts := []string{
		// No password in this statement's text: it is set below as a
		// pre-hashed SCRAM verifier.
		"CREATE ROLE " + limited + " LOGIN CREATEROLE NOSUPERUSER NOCREATEDB",
	}
	verifier, err := storage.SCRAMVerifier(s.LimitedAdminPassword)
	if err != nil {
		return err
	}
	stmts = append(stmts, "ALTER ROLE "+limited+" PASSWORD "+storage.QuoteLiteral(verifier))
	dbs := make([]string, 0, len(s.Databases))
	for _, db := range s.Databases {
		dbs = append(dbs, db)
	}
	sort.Strings(dbs)
	for _, db := range dbs {
		stmts = append(stmts, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()+" OWNER "+limited)
	}
	for _, stmt := range stmts {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("bootstrapping the server: %w", err)
		}
	}
	return nil
}

// writeTLSFiles makes a CA and a server certificate signed by it.
func (s *Server) writeTLSFiles(runAs *syscall.Credential) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "pgtest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return err
	}
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: TLSServerName},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		DNSNames:     []string{TLSServerName},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(srvKey)
	if err != nil {
		return err
	}
	s.CACert = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := writeOwned(filepath.Join(s.Dir, "server.crt"),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o644, runAs); err != nil {
		return err
	}
	// postgres refuses a key file readable by group or others.
	return writeOwned(filepath.Join(s.Dir, "server.key"),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600, runAs)
}

// postgresCredential is who the server runs as: nil (this process's user)
// unless this process is root, when it is the postgres system user.
func postgresCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root and there is no postgres user to run the server as: %w", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, err
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

func findBinDir() (string, error) {
	if dir := os.Getenv("PGTEST_BINDIR"); dir != "" {
		return dir, nil
	}
	candidates, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Newest major version first; "15" sorts after "9" numerically only.
	sort.Slice(candidates, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(candidates[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(candidates[j])))
		return vi > vj
	})
	for _, dir := range candidates {
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server binaries in /usr/lib/postgresql/*/bin " +
		"(install the postgresql-15 Debian package, or set PGTEST_BINDIR)")
}

// run runs cmd as runAs in dir with its output going to a file (not a pipe,
// which a daemonised grandchild could hold open forever) and returns that
// output.
func run(cmd *exec.Cmd, dir string, runAs *syscall.Credential) (string, error) {
	out, err := os.CreateTemp(dir, "cmd-*.log")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: runAs, Pdeathsig: syscall.SIGKILL}
	runErr := cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return tail(string(b), 4000), runErr
}

func writeOwned(path string, data []byte, mode os.FileMode, runAs *syscall.Credential) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return err
	}
	if runAs != nil {
		return os.Chown(path, int(runAs.Uid), int(runAs.Gid))
	}
	return nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("finding a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomPassword() (string, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func tail(s string, n int) string {
	s = string(bytes.TrimSpace([]byte(s)))
	if len(s) <= n {
		return s
	}
	return "..." + s[len(s)-n:]
}

// AuthenticateWith makes the server ask user for its password with method,
// a pg_hba.conf method such as "password" (the password in clear text) or
// "md5", instead of scram-sha-256, on TCP connections from 127.0.0.1; the
// line is removed when the test ends. For tests of what a client answers
// to a server that asks for a weaker method. The server's configuration is
// reloaded; a connection opened right after may still be asked the old
// way for a moment, so this waits a little.
func (s *Server) AuthenticateWith(t testing.TB, user, method string) {
	t.Helper()
	hba := filepath.Join(s.dataDir(), "pg_hba.conf")
	original, err := os.ReadFile(hba)
	if err != nil {
		t.Fatal(err)
	}
	line := fmt.Sprintf("host all %s 127.0.0.1/32 %s\n", pgx.Identifier{user}.Sanitize(), method)
	write := func(content []byte) {
		info, err := os.Stat(hba)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(hba, content, info.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
		s.reload(t)
	}
	write(append([]byte(line), original...))
	t.Cleanup(func() { write(original) })
}

// reload makes the server read its configuration files again.
func (s *Server) reload(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := s.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var errors int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_hba_file_rules WHERE error IS NOT NULL`).Scan(&errors); err != nil || errors > 0 {
		t.Fatalf("pg_hba.conf has %d errors (%v)", errors, err)
	}
	if _, err := conn.Exec(ctx, `SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
}
