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
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Reason says why a storage operation failed, in the CamelCase form of a
// Kubernetes condition reason, so a controller can show it as is.
type Reason string

// The reasons a storage error can have. Each is also a reason of the
// conditions the controllers set from it, declared with its meaning in
// api/v1alpha1 (a controllers test fails on one it does not declare); this
// package does not import the API types, as ingest, which has no Kubernetes
// in it, uses it too.
const (
	// ReasonConnectionFailed: the server could not be reached (refused,
	// unreachable, DNS, timeout) or dropped the connection.
	ReasonConnectionFailed Reason = "ConnectionFailed"
	// ReasonAuthenticationFailed: the server refused the user name or
	// password (SQLSTATE 28P01, 28000).
	ReasonAuthenticationFailed Reason = "AuthenticationFailed"
	// ReasonDatabaseMissing: the database does not exist (SQLSTATE 3D000).
	ReasonDatabaseMissing Reason = "DatabaseMissing"
	// ReasonPermissionDenied: the role may not do what was asked (SQLSTATE
	// 42501, or an administrator without CREATEROLE).
	ReasonPermissionDenied Reason = "PermissionDenied"
	// ReasonTLSFailed: the TLS handshake failed, the certificate was not
	// trusted or not for this host, or the server does not offer TLS.
	ReasonTLSFailed Reason = "TLSFailed"
	// ReasonInvalidConfig: the connection settings themselves are wrong
	// (empty host, unknown sslmode, bad CA certificate).
	ReasonInvalidConfig Reason = "InvalidConfig"
	// ReasonInvalidTenantName: the tenant name cannot become a schema name.
	ReasonInvalidTenantName Reason = "InvalidTenantName"
	// ReasonBusy: a lock could not be had in time (another operation on the
	// same tenant, or sessions holding its tables); retrying later is right.
	ReasonBusy Reason = "StorageBusy"
	// ReasonIncompatibleSchema: the tenant's schema was migrated by a newer
	// operator than this one, or is not the shape this operator makes.
	ReasonIncompatibleSchema Reason = "IncompatibleSchema"
	// ReasonRoleConflict: a role with the tenant's role name exists that
	// the operator did not make (it is not in its registry of roles, see
	// rolesTable); provisioning refuses to take it over.
	ReasonRoleConflict Reason = "RoleConflict"
	// ReasonStorageError: anything else the database reported.
	ReasonStorageError Reason = "StorageError"
)

// Error is the error type of this package: a Reason for machines and a
// message for people. Its message never holds a password: the passwords the
// operation knew are cut out of it, whatever the driver put there.
type Error struct {
	// Reason classifies the failure.
	Reason Reason
	// Op is what was being done: "connect", "provision", "purge", ...
	Op string
	// SQLState is the server's error code, when the server sent one.
	SQLState string

	msg string
	err error
}

// Error returns "<op>: <message>".
func (e *Error) Error() string {
	if e.Op == "" {
		return e.msg
	}
	return e.Op + ": " + e.msg
}

// Unwrap gives the driver's error, for errors.As on pgconn.PgError and the
// like. Its own message may be less careful than Error's; log Error's.
func (e *Error) Unwrap() error { return e.err }

// ReasonFor classifies err: the Reason of an *Error in its chain, or else the
// reason the driver error implies. It is "" for nil.
func ReasonFor(err error) Reason {
	if err == nil {
		return ""
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Reason
	}
	return classify(err)
}

func newError(reason Reason, op, msg string, cause error) *Error {
	return &Error{Reason: reason, Op: op, msg: msg, err: cause}
}

// wrap turns a driver error into an *Error with a classified reason and a
// message scrubbed of secrets. An *Error passes through unchanged.
func wrap(op string, err error, secrets ...string) error {
	if err == nil {
		return nil
	}
	var se *Error
	if errors.As(err, &se) {
		return err
	}
	e := &Error{Reason: classify(err), Op: op, err: err}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		e.SQLState = pgErr.Code
	}
	e.msg = scrub(message(err), secrets...)
	return e
}

// message is the driver's message, with the server's DETAIL when it has one
// (it names what blocks a DROP ROLE, for instance).
func message(err error) string {
	msg := err.Error()
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Detail != "" && !strings.Contains(msg, pgErr.Detail) {
		msg += " (" + pgErr.Detail + ")"
	}
	return msg
}

// scrub cuts every non-empty secret, and the value after "password=" (as in
// a connection string) or "PASSWORD '" (as in ALTER ROLE), out of msg.
func scrub(msg string, secrets ...string) string {
	for _, s := range secrets {
		if s != "" {
			msg = strings.ReplaceAll(msg, s, "<redacted>")
		}
	}
	for _, key := range []string{"password=", "PASSWORD '"} {
		for i := 0; ; {
			j := strings.Index(msg[i:], key)
			if j < 0 {
				break
			}
			start := i + j + len(key)
			end := valueEnd(msg, start, strings.HasSuffix(key, "'"))
			msg = msg[:start] + "<redacted>" + msg[end:]
			i = start + len("<redacted>")
		}
	}
	return msg
}

// valueEnd is where the value starting at msg[start] ends: at the closing
// quote of a quoted value (quoted says the opening quote came before start),
// else at a space, quote, '@' or backquote.
func valueEnd(msg string, start int, quoted bool) int {
	if !quoted && start < len(msg) && msg[start] == '\'' {
		quoted, start = true, start+1
	}
	end := start
	for end < len(msg) {
		c := msg[end]
		if quoted {
			if c == '\\' && end+1 < len(msg) {
				end += 2
				continue
			}
			if c == '\'' {
				if end+1 < len(msg) && msg[end+1] == '\'' { // doubled quote
					end += 2
					continue
				}
				return end + 1
			}
		} else if c == ' ' || c == '\'' || c == '@' || c == '`' {
			return end
		}
		end++
	}
	return end
}

func classify(err error) Reason {
	var refused *AuthMethodRefusedError
	if errors.As(err, &refused) {
		return ReasonAuthenticationFailed
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case pgErr.Code == "28P01" || pgErr.Code == "28000":
			return ReasonAuthenticationFailed
		case pgErr.Code == "3D000":
			return ReasonDatabaseMissing
		case pgErr.Code == "42501":
			return ReasonPermissionDenied
		case pgErr.Code == "55P03" || pgErr.Code == "40P01" || pgErr.Code == "57014":
			// lock_not_available, deadlock_detected, query_canceled
			// (statement_timeout): worth retrying later.
			return ReasonBusy
		case strings.HasPrefix(pgErr.Code, "08"), pgErr.Code == "53300", pgErr.Code == "57P03",
			pgErr.Code == "57P01":
			// connection exceptions, too many connections, server starting
			// up or shutting down.
			return ReasonConnectionFailed
		}
		return ReasonStorageError
	}
	if isTLSError(err) {
		return ReasonTLSFailed
	}
	var netErr net.Error
	var dnsErr *net.DNSError
	var connectErr *pgconn.ConnectError
	switch {
	case errors.As(err, &dnsErr), errors.As(err, &netErr),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, context.DeadlineExceeded), errors.As(err, &connectErr),
		pgconn.Timeout(err):
		return ReasonConnectionFailed
	}
	return ReasonStorageError
}

func isTLSError(err error) bool {
	var (
		unknownAuthority x509.UnknownAuthorityError
		hostname         x509.HostnameError
		invalid          x509.CertificateInvalidError
		verification     *tls.CertificateVerificationError
		recordHeader     tls.RecordHeaderError
		alert            tls.AlertError
	)
	if errors.As(err, &unknownAuthority) || errors.As(err, &hostname) || errors.As(err, &invalid) ||
		errors.As(err, &verification) || errors.As(err, &recordHeader) || errors.As(err, &alert) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "server refused TLS connection") || strings.Contains(msg, "tls error") ||
		strings.Contains(msg, "tls: ")
}
