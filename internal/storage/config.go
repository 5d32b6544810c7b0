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

package storage

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// SSL modes, with libpq's meaning. "allow" and "prefer" are not offered: they
// silently fall back to clear text, which the policy's "encryption in
// transit" rules out.
const (
	// SSLModeDisable sends everything in clear text; for local development.
	SSLModeDisable = "disable"
	// SSLModeRequire encrypts without checking the server's certificate, or,
	// as libpq does, checks its issuer when a CA certificate is given.
	SSLModeRequire = "require"
	// SSLModeVerifyCA encrypts and checks that a trusted CA issued the
	// server's certificate, whatever name it is for.
	SSLModeVerifyCA = "verify-ca"
	// SSLModeVerifyFull encrypts and checks the issuer and that the
	// certificate is for Host.
	SSLModeVerifyFull = "verify-full"
)

// DefaultConnectTimeout bounds how long one connection attempt may take, so a
// black-holed host fails a reconcile instead of hanging it.
const DefaultConnectTimeout = 10 * time.Second

// AdminConfig is how the operator reaches one region's database as its
// administrator: a superuser, or a role with CREATEROLE that owns (or may
// CREATE in) the database.
type AdminConfig struct {
	// Host is a host name, an IP address, or a unix socket directory.
	Host string
	// Port is the TCP port; 0 means 5432.
	Port int32
	// Database is the region's database, where tenant schemas live.
	Database string
	// SSLMode is one of the SSLMode constants; "" means verify-full.
	SSLMode string
	// Username and Password are the administrator's credentials.
	Username, Password string
	// CACert is the PEM bundle of CAs trusted to issue the server's
	// certificate; empty means the system's roots. It is kept in memory only.
	CACert []byte
}

// Credentials are the credentials of one of a tenant's roles for its
// schema: what goes into one of the tenant's Secrets and what the ingest
// service (ingest role) or the retention job (owner role) connects with.
// Password is secret: never log, print or put it in status.
type Credentials struct {
	Host     string
	Port     int32
	Database string
	SSLMode  string
	// Schema is the tenant's schema (TenantNames.Schema), for both roles.
	Schema string
	// Username is the role: the same name as Schema for the owner;
	// TenantNames.IngestRole for the ingest role.
	Username string
	Password string
	// CACert is the region's CA bundle (PEM), when it has a private CA.
	CACert []byte
}

// String leaves the password out, so credentials printed by mistake (%v in
// a log line) do not leak it.
func (c Credentials) String() string {
	return fmt.Sprintf("Credentials{host=%s port=%d database=%s sslmode=%s schema=%s user=%s password=<redacted>}",
		c.Host, c.Port, c.Database, c.SSLMode, c.Schema, c.Username)
}

// GoString is String for %#v.
func (c Credentials) GoString() string { return c.String() }

// String leaves the password out, as Credentials.String does.
func (c AdminConfig) String() string {
	return fmt.Sprintf("AdminConfig{host=%s port=%d database=%s sslmode=%s user=%s password=<redacted>}",
		c.Host, c.Port, c.Database, c.SSLMode, c.Username)
}

// GoString is String for %#v.
func (c AdminConfig) GoString() string { return c.String() }

// endpoint is what AdminConfig and Credentials have in common: where to
// connect and as whom.
type endpoint struct {
	host, database, sslMode, user, password, appName string
	port                                             int32
	caCert                                           []byte
}

func (c AdminConfig) endpoint() endpoint {
	return endpoint{host: c.Host, port: c.Port, database: c.Database, sslMode: c.SSLMode,
		user: c.Username, password: c.Password, caCert: c.CACert, appName: "millimetric-operator"}
}

func (c Credentials) endpoint() endpoint {
	return endpoint{host: c.Host, port: c.Port, database: c.Database, sslMode: c.SSLMode,
		user: c.Username, password: c.Password, caCert: c.CACert, appName: "millimetric-tenant"}
}

// Connect opens a single connection with cfg's settings, for callers that
// need a session of their own (tests, benchmarks, the e2e suite). Errors are
// *Error values; see ReasonFor.
func Connect(ctx context.Context, cfg AdminConfig) (*pgx.Conn, error) {
	return connect(ctx, cfg.endpoint())
}

// ConnectTenant opens a single connection with a tenant's own credentials,
// as the retention job does.
func ConnectTenant(ctx context.Context, c Credentials) (*pgx.Conn, error) {
	ep := c.endpoint()
	ep.appName = "millimetric-retention"
	return connect(ctx, ep)
}

func connect(ctx context.Context, ep endpoint) (*pgx.Conn, error) {
	cfg, err := ep.connConfig()
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, wrap("connect", err, ep.password)
	}
	return conn, nil
}

// connConfig builds pgx's configuration. The connection string handed to
// pgx's parser carries no password and forces sslmode=disable: the password
// and TLS settings are set on the parsed config directly, so no parse error
// can echo the password, and the CA certificate never has to be written to a
// file for pgx to read.
func (ep endpoint) connConfig() (*pgx.ConnConfig, error) {
	if ep.host == "" {
		return nil, newError(ReasonInvalidConfig, "config", "host is empty", nil)
	}
	if ep.database == "" {
		return nil, newError(ReasonInvalidConfig, "config", "database is empty", nil)
	}
	if ep.user == "" {
		return nil, newError(ReasonInvalidConfig, "config", "username is empty", nil)
	}
	port := ep.port
	if port == 0 {
		port = 5432
	}
	if port < 1 || port > 65535 {
		return nil, newError(ReasonInvalidConfig, "config", fmt.Sprintf("port %d is out of range", port), nil)
	}
	tlsConfig, err := tlsConfigFor(ep.sslMode, ep.host, ep.caCert)
	if err != nil {
		return nil, err
	}
	dsn := strings.Join([]string{
		"host=" + dsnQuote(ep.host),
		"port=" + strconv.Itoa(int(port)),
		"dbname=" + dsnQuote(ep.database),
		"user=" + dsnQuote(ep.user),
		"sslmode=disable",
		// Explicit values, so PG* variables in the process's environment
		// (which pgx reads as defaults) cannot add a CA file to read,
		// client certificates, startup options or session attributes.
		"sslrootcert=''", "sslcert=''", "sslkey=''", "sslnegotiation=postgres",
		"target_session_attrs=any", "options=''",
		"application_name=" + dsnQuote(ep.appName),
	}, " ")
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, newError(ReasonInvalidConfig, "config", "invalid connection settings", err)
	}
	cfg.Password = ep.password
	cfg.TLSConfig = tlsConfig
	cfg.Fallbacks = nil // never retry in clear text
	// Never answer a request for the password in clear text or as MD5.
	cfg.BuildFrontend = scramOnlyFrontend
	cfg.ConnectTimeout = DefaultConnectTimeout
	cfg.DialFunc = dialer().DialContext
	return cfg, nil
}

// tlsConfigFor follows libpq's sslmode semantics with the CA held in memory.
func tlsConfigFor(mode, host string, caPEM []byte) (*tls.Config, error) {
	var roots *x509.CertPool // nil: the system's roots
	if len(caPEM) > 0 {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caPEM) {
			return nil, newError(ReasonInvalidConfig, "config", "the CA certificate is not a PEM certificate", nil)
		}
	}
	switch mode {
	case SSLModeDisable:
		return nil, nil
	case SSLModeRequire:
		if roots == nil {
			return &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS12}, nil //nolint:gosec // sslmode=require by choice
		}
		// libpq: require with a root certificate behaves as verify-ca.
		return verifyCAConfig(roots), nil
	case SSLModeVerifyCA:
		return verifyCAConfig(roots), nil
	case SSLModeVerifyFull, "":
		return &tls.Config{ServerName: host, RootCAs: roots, MinVersion: tls.VersionTLS12}, nil
	default:
		return nil, newError(ReasonInvalidConfig, "config",
			fmt.Sprintf("sslmode %q is not one of disable, require, verify-ca, verify-full", mode), nil)
	}
}

// verifyCAConfig checks the chain but not the name, as libpq's verify-ca:
// Go's verifier always checks the name, so it is turned off and the chain is
// verified in VerifyPeerCertificate instead.
func verifyCAConfig(roots *x509.CertPool) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, //nolint:gosec // the chain is verified below
		VerifyPeerCertificate: func(rawCerts [][]byte, _ [][]*x509.Certificate) error {
			if len(rawCerts) == 0 {
				return errors.New("server sent no certificate")
			}
			certs := make([]*x509.Certificate, len(rawCerts))
			for i, raw := range rawCerts {
				c, err := x509.ParseCertificate(raw)
				if err != nil {
					return fmt.Errorf("parsing the server's certificate: %w", err)
				}
				certs[i] = c
			}
			opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
			for _, c := range certs[1:] {
				opts.Intermediates.AddCert(c)
			}
			_, err := certs[0].Verify(opts)
			return err
		},
	}
}

// dsnQuote quotes a keyword/value connection string value.
func dsnQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `'`, `\'`)
	return "'" + s + "'"
}
