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
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// Environment variables tenant workloads read their credentials from. They
// are libpq's names where libpq has one; the operator sets them from the
// tenant's Secrets (render.storageEnv).
const (
	EnvHost         = "PGHOST"
	EnvPort         = "PGPORT"
	EnvDatabase     = "PGDATABASE"
	EnvUser         = "PGUSER"
	EnvPassword     = "PGPASSWORD"
	EnvPasswordFile = "PGPASSWORD_FILE"
	EnvSSLMode      = "PGSSLMODE"
	EnvSSLRootCert  = "PGSSLROOTCERT"
	EnvSchema       = "PGSCHEMA"
)

// CredentialsFromEnv reads a tenant workload's credentials from the
// environment (getenv is os.Getenv in production). The password comes from
// PGPASSWORD or from the file PGPASSWORD_FILE names (not libpq's PGPASSFILE,
// which has the .pgpass format); the CA bundle from the file PGSSLROOTCERT
// names. Unset: the port is 5432's (Port 0), sslmode verify-full, and the
// schema the user's name. Errors name what is missing or wrong and never
// carry the password.
func CredentialsFromEnv(getenv func(string) string) (Credentials, error) {
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	c := Credentials{
		Host:     env(EnvHost),
		Database: env(EnvDatabase),
		Username: env(EnvUser),
		SSLMode:  env(EnvSSLMode),
		Schema:   env(EnvSchema),
	}
	if c.SSLMode == "" {
		c.SSLMode = SSLModeVerifyFull
	}
	if c.Schema == "" {
		c.Schema = c.Username
	}
	if p := env(EnvPort); p != "" {
		v, err := strconv.ParseUint(p, 10, 16)
		if err != nil || v == 0 {
			return Credentials{}, fmt.Errorf("%s %q is not a TCP port", EnvPort, p)
		}
		c.Port = int32(v)
	}
	var missing []string
	for _, f := range []struct{ name, value string }{
		{EnvHost, c.Host}, {EnvDatabase, c.Database}, {EnvUser, c.Username},
	} {
		if f.value == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return Credentials{}, fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	if path := env(EnvPasswordFile); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return Credentials{}, fmt.Errorf("reading the password file: %w", err)
		}
		c.Password = strings.TrimRight(string(b), "\r\n")
	} else {
		c.Password = getenv(EnvPassword)
	}
	if c.Password == "" {
		return Credentials{}, errors.New("no password: set " + EnvPassword + " or " + EnvPasswordFile)
	}
	if path := env(EnvSSLRootCert); path != "" {
		ca, err := os.ReadFile(path)
		if err != nil {
			return Credentials{}, fmt.Errorf("reading the CA certificate file: %w", err)
		}
		c.CACert = ca
	}
	return c, nil
}

// ConnectIngest opens a single connection with an ingest role's
// credentials, named "millimetric-ingest" in pg_stat_activity.
func ConnectIngest(ctx context.Context, c Credentials) (*pgx.Conn, error) {
	ep := c.endpoint()
	ep.appName = "millimetric-ingest"
	return connect(ctx, ep)
}
