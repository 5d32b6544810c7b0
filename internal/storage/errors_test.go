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

package storage_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/millimetric/tenant-operator/internal/storage"
)

func closedPort(t *testing.T) int32 {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return int32(port)
}

func TestConnectionErrorsAreClassifiedWithoutSecrets(t *testing.T) {
	const wrongPassword = "Wr0ng-pa55word-that-must-not-leak"
	for _, tc := range []struct {
		name   string
		cfg    func(storage.AdminConfig) storage.AdminConfig
		reason storage.Reason
	}{
		{"a wrong password is AuthenticationFailed", func(c storage.AdminConfig) storage.AdminConfig {
			c.Password = wrongPassword
			return c
		}, storage.ReasonAuthenticationFailed},
		{"an unknown user is AuthenticationFailed", func(c storage.AdminConfig) storage.AdminConfig {
			c.Username = "nobody"
			return c
		}, storage.ReasonAuthenticationFailed},
		{"a closed port is ConnectionFailed", func(c storage.AdminConfig) storage.AdminConfig {
			c.Port = closedPort(t)
			return c
		}, storage.ReasonConnectionFailed},
		{"a missing database is DatabaseMissing", func(c storage.AdminConfig) storage.AdminConfig {
			c.Database = "events_mars"
			return c
		}, storage.ReasonDatabaseMissing},
		{"verify-full without the private CA is TLSFailed", func(c storage.AdminConfig) storage.AdminConfig {
			c.SSLMode = storage.SSLModeVerifyFull
			return c
		}, storage.ReasonTLSFailed},
		{"verify-full for a name the certificate is not for is TLSFailed", func(c storage.AdminConfig) storage.AdminConfig {
			c.SSLMode, c.CACert, c.Host = storage.SSLModeVerifyFull, srv.CACert, "localhost"
			return c
		}, storage.ReasonTLSFailed},
		{"verify-ca with another CA is TLSFailed", func(c storage.AdminConfig) storage.AdminConfig {
			c.SSLMode, c.CACert = storage.SSLModeVerifyCA, otherCA
			return c
		}, storage.ReasonTLSFailed},
		{"an unknown sslmode is InvalidConfig", func(c storage.AdminConfig) storage.AdminConfig {
			c.SSLMode = "prefer"
			return c
		}, storage.ReasonInvalidConfig},
		{"a CA that is not PEM is InvalidConfig", func(c storage.AdminConfig) storage.AdminConfig {
			c.SSLMode, c.CACert = storage.SSLModeVerifyCA, []byte("not a certificate")
			return c
		}, storage.ReasonInvalidConfig},
		{"an administrator without CREATEROLE is PermissionDenied", func(c storage.AdminConfig) storage.AdminConfig {
			c.Username, c.Password = weakAdmin(t)
			return c
		}, storage.ReasonPermissionDenied},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg(srv.AdminConfig("EU"))
			st, err := storage.Open(testContext(t), cfg)
			if err == nil {
				defer st.Close()
				err = st.Ping(testContext(t))
			}
			if got := storage.ReasonFor(err); got != tc.reason {
				t.Fatalf("reason %q, want %q (error: %v)", got, tc.reason, err)
			}
			for _, secret := range []string{srv.AdminPassword, wrongPassword, cfg.Password} {
				for _, shown := range []string{err.Error(), fmt.Sprintf("%v %+v %#v", err, err, err)} {
					if secret != "" && strings.Contains(shown, secret) {
						t.Errorf("error message contains a password: %s", shown)
					}
				}
			}
			t.Logf("message: %v", err)
		})
	}
}

func TestEverySSLModeConnects(t *testing.T) {
	for _, tc := range []struct {
		name, mode, host string
		ca               []byte
		encrypted        bool
	}{
		{"disable sends clear text", storage.SSLModeDisable, "127.0.0.1", nil, false},
		{"require encrypts without a CA", storage.SSLModeRequire, "127.0.0.1", nil, true},
		{"verify-ca accepts any name from the right CA", storage.SSLModeVerifyCA, "localhost", srv.CACert, true},
		{"verify-full accepts the certificate's own IP address", storage.SSLModeVerifyFull, "127.0.0.1", srv.CACert, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := testContext(t)
			cfg := srv.AdminConfig("EU")
			cfg.SSLMode, cfg.Host, cfg.CACert = tc.mode, tc.host, tc.ca
			conn, err := storage.Connect(ctx, cfg)
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer conn.Close(ctx)
			var ssl bool
			if err := conn.QueryRow(ctx, `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil {
				t.Fatal(err)
			}
			if ssl != tc.encrypted {
				t.Errorf("encrypted = %v, want %v", ssl, tc.encrypted)
			}
		})
	}
}

func TestCredentialsPrintWithoutThePassword(t *testing.T) {
	c := storage.Credentials{Host: "h", Username: "tenant_x", Password: "s3cret-value"}
	for _, s := range []string{fmt.Sprint(c), fmt.Sprintf("%v %+v %#v %s", c, c, c, c), fmt.Sprint(&c)} {
		if strings.Contains(s, "s3cret-value") {
			t.Errorf("printed credentials show the password: %s", s)
		}
	}
	a := srv.AdminConfig("EU")
	if s := fmt.Sprintf("%v %+v %#v", a, a, a); strings.Contains(s, a.Password) {
		t.Errorf("printed admin config shows the password: %s", s)
	}
}

// weakAdmin makes a role that may log in and nothing else.
func weakAdmin(t *testing.T) (user, password string) {
	t.Helper()
	ctx := testContext(t)
	user = strings.ReplaceAll(newTenantName("weak"), "-", "_")
	password = "weak-admin-password-1234567890"
	conn := adminConn(t)
	verifier, err := storage.SCRAMVerifier(password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE ROLE `+user+` LOGIN PASSWORD `+storage.QuoteLiteral(verifier)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `GRANT CONNECT ON DATABASE `+srv.Databases["EU"]+` TO `+user); err != nil {
		t.Fatal(err)
	}
	return user, password
}

// otherCA is a CA certificate that signed nothing the server has.
var otherCA = func() []byte {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "other CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		panic(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}()

func TestStrayPGEnvironmentVariablesAreIgnored(t *testing.T) {
	// pgx reads PG* variables as defaults; none of these may change where or
	// how the operator connects.
	for k, v := range map[string]string{
		"PGSSLROOTCERT": "/nonexistent/ca.crt", "PGSSLCERT": "/nonexistent/c.crt", "PGSSLKEY": "/nonexistent/c.key",
		"PGOPTIONS": "-c search_path=elsewhere", "PGTARGETSESSIONATTRS": "standby", "PGSSLMODE": "verify-full",
		"PGPASSWORD": "not-this-one", "PGDATABASE": "not_this_one",
	} {
		t.Setenv(k, v)
	}
	ctx := testContext(t)
	conn, err := storage.Connect(ctx, srv.AdminConfig("EU"))
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	var db, searchPath string
	if err := conn.QueryRow(ctx, `SELECT current_database(), current_setting('search_path')`).Scan(&db, &searchPath); err != nil {
		t.Fatal(err)
	}
	if db != srv.Databases["EU"] || strings.Contains(searchPath, "elsewhere") {
		t.Errorf("connected to %s with search_path %q", db, searchPath)
	}
}

// A server (or whoever answers in its place) that asks for the password in
// clear text or as an MD5 hash gets no answer: the connection is given up
// before anything derived from the password is sent.
func TestTheDriverAnswersNoPasswordRequestButSCRAM(t *testing.T) {
	for _, tc := range []struct{ method, storedAs, want string }{
		{"password", "scram-sha-256", "in clear text"},
		{"md5", "md5", "MD5"},
	} {
		t.Run(tc.method, func(t *testing.T) {
			ctx := testContext(t)
			user := strings.ReplaceAll(newTenantName("auth-"+tc.method), "-", "_")
			const password = "a-password-that-must-not-be-sent-1234"
			su := adminConn(t)
			for _, sql := range []string{
				`SET password_encryption = ` + storage.QuoteLiteral(tc.storedAs),
				`CREATE ROLE ` + user + ` LOGIN PASSWORD ` + storage.QuoteLiteral(password),
				`GRANT CONNECT ON DATABASE ` + srv.Databases["EU"] + ` TO ` + user,
			} {
				if _, err := su.Exec(ctx, sql); err != nil {
					t.Fatalf("%s: %v", sql, err)
				}
			}
			srv.AuthenticateWith(t, user, tc.method)
			cfg := srv.AdminConfig("EU")
			cfg.Username, cfg.Password = user, password
			conn, err := storage.Connect(ctx, cfg)
			if err == nil {
				_ = conn.Close(ctx)
				t.Fatalf("connected to a server that asked for %s; want the request refused", tc.want)
			}
			var refused *storage.AuthMethodRefusedError
			if !errors.As(err, &refused) || storage.ReasonFor(err) != storage.ReasonAuthenticationFailed ||
				!strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), password) {
				t.Errorf("got %v (reason %s); want an AuthMethodRefusedError naming %s, AuthenticationFailed, without the password",
					err, storage.ReasonFor(err), tc.want)
			}
		})
	}
}
