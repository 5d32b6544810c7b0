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
	"crypto/hmac"
	"crypto/md5" //nolint:gosec // only to recognise legacy md5 role passwords
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// passwordBytes is the entropy of a generated tenant password.
const passwordBytes = 32

// scramIterations is PostgreSQL's default scram_iterations.
const scramIterations = 4096

// generatePassword returns passwordBytes random bytes, URL-safe base64
// without padding (43 characters): safe in a connection URL, an env var and a
// SQL literal.
func generatePassword() (string, error) {
	b := make([]byte, passwordBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generating a password: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// SCRAMVerifier returns the SCRAM-SHA-256 verifier PostgreSQL stores for
// password, with a fresh random salt. ALTER ROLE ... PASSWORD '<verifier>'
// sets the password without the server ever seeing it in clear text, so it
// cannot end up in the server's log (log_statement, log_min_error_statement),
// pg_stat_activity or pg_stat_statements.
//
// The password is used as given: SASLprep leaves ASCII passwords, like the
// generated ones, unchanged.
func SCRAMVerifier(password string) (string, error) {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("generating a salt: %w", err)
	}
	return scramVerifier(password, salt, scramIterations)
}

func scramVerifier(password string, salt []byte, iterations int) (string, error) {
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	clientKey := hmacSHA256(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	serverKey := hmacSHA256(salted, "Server Key")
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(storedKey[:]), b64(serverKey)), nil
}

func hmacSHA256(key []byte, msg string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(msg))
	return m.Sum(nil)
}

// passwordMatches reports whether password is the one stored as stored
// (pg_authid.rolpassword: a SCRAM-SHA-256 verifier or a legacy md5 hash) for
// role.
func passwordMatches(stored, role, password string) bool {
	if rest, ok := strings.CutPrefix(stored, "SCRAM-SHA-256$"); ok {
		// <iterations>:<salt>$<StoredKey>:<ServerKey>
		params, keys, ok := strings.Cut(rest, "$")
		if !ok {
			return false
		}
		iterStr, saltB64, ok := strings.Cut(params, ":")
		if !ok {
			return false
		}
		iterations, err := strconv.Atoi(iterStr)
		if err != nil || iterations <= 0 || iterations > 10_000_000 {
			return false
		}
		salt, err := base64.StdEncoding.DecodeString(saltB64)
		if err != nil {
			return false
		}
		want, err := scramVerifier(password, salt, iterations)
		if err != nil {
			return false
		}
		got := "SCRAM-SHA-256$" + params + "$" + keys
		return subtle.ConstantTimeCompare([]byte(want), []byte(got)) == 1
	}
	if strings.HasPrefix(stored, "md5") {
		sum := md5.Sum([]byte(password + role)) //nolint:gosec // legacy format
		return subtle.ConstantTimeCompare([]byte("md5"+hex.EncodeToString(sum[:])), []byte(stored)) == 1
	}
	return false
}

// QuoteLiteral quotes s as an SQL string literal for statements that take no
// parameters (ALTER ROLE ... PASSWORD, DDL). It doubles single quotes and,
// so the result means the same whatever standard_conforming_strings is,
// uses the E” form with doubled backslashes when s has a backslash.
func QuoteLiteral(s string) string {
	s = strings.ReplaceAll(s, "\x00", "")
	quoted := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		return "E" + strings.ReplaceAll(quoted, `\`, `\\`)
	}
	return quoted
}
