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
	"encoding/binary"
	"fmt"
	"io"

	"github.com/jackc/pgx/v5/pgproto3"
)

// The authentication requests a server may send (the int32 after an 'R'
// message's length), as far as scramOnlyReader cares.
const (
	authOK           = 0
	authSASL         = 10
	authSASLContinue = 11
	authSASLFinal    = 12
)

// authMethodNames name the requests scramOnlyReader refuses, for its error.
var authMethodNames = map[uint32]string{
	2: "Kerberos V5",
	3: "the password in clear text",
	5: "an MD5 hash of the password",
	6: "SCM credentials",
	7: "GSSAPI",
	8: "GSSAPI",
	9: "SSPI",
}

// scramOnlyFrontend is pgconn's BuildFrontend with scramOnlyReader between
// the connection and pgx's protocol decoder.
func scramOnlyFrontend(r io.Reader, w io.Writer) *pgproto3.Frontend {
	return pgproto3.NewFrontend(&scramOnlyReader{r: r}, w)
}

// AuthMethodRefusedError is why a connection was given up before any
// password was sent: the server asked for an authentication method other
// than SCRAM (SASL), so for the password in clear text, or an MD5 hash of
// it that anyone who sees it can replay or crack. A server that asks for
// those is misconfigured, or is not the database: with sslMode require
// anyone in the path can answer as the server.
type AuthMethodRefusedError struct {
	// Method is the authentication request's code (3 cleartext, 5 MD5...).
	Method uint32
}

// Error says what the server asked for and what to change.
func (e *AuthMethodRefusedError) Error() string {
	what, ok := authMethodNames[e.Method]
	if !ok {
		what = fmt.Sprintf("authentication method %d", e.Method)
	}
	return fmt.Sprintf("the server asked for %s; only SCRAM-SHA-256 is answered, so no password was sent "+
		"(give the role a SCRAM password with password_encryption = scram-sha-256, and use scram-sha-256 in pg_hba.conf)", what)
}

// scramOnlyReader passes the server's messages through to pgx, and fails
// the read, so the connection is closed, when an authentication request
// asks for anything but SCRAM (or says authentication is done). pgx's
// connect loop answers AuthenticationCleartextPassword and
// AuthenticationMD5Password as soon as it decodes them, and has no setting
// to refuse them, so they are stopped here, before pgx sees them. Only the
// message headers are read: the type byte, the length and, of an 'R'
// message, the request code. After AuthenticationOk nothing more is looked
// at.
type scramOnlyReader struct {
	r io.Reader
	// head collects the current message's header: type, length and, for
	// 'R', the request code.
	head [9]byte
	n    int
	// skip is how much of the current message's body is still to pass.
	skip int
	done bool
}

func (s *scramOnlyReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if !s.done {
		if refused := s.inspect(p[:n]); refused != nil {
			return 0, refused
		}
	}
	return n, err
}

// inspect follows the message stream through b.
func (s *scramOnlyReader) inspect(b []byte) error {
	for len(b) > 0 && !s.done {
		if s.skip > 0 {
			k := min(s.skip, len(b))
			s.skip -= k
			b = b[k:]
			continue
		}
		need := 5
		if s.n > 0 && s.head[0] == 'R' {
			need = 9
		}
		k := min(need-s.n, len(b))
		copy(s.head[s.n:], b[:k])
		s.n += k
		b = b[k:]
		if s.n < need {
			continue
		}
		if s.n == 5 && s.head[0] == 'R' {
			continue // and read the request code
		}
		body := int(binary.BigEndian.Uint32(s.head[1:5])) - 4
		if s.head[0] == 'R' {
			switch code := binary.BigEndian.Uint32(s.head[5:9]); code {
			case authSASL, authSASLContinue, authSASLFinal:
			case authOK:
				s.done = true
			default:
				return &AuthMethodRefusedError{Method: code}
			}
			body -= 4
		}
		s.skip, s.n = max(body, 0), 0
	}
	return nil
}
