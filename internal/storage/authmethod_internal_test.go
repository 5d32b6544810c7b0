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
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"

	"github.com/jackc/pgx/v5/pgproto3"
)

// TestTheSCRAMOnlyReaderFollowsMessagesSplitAnywhere: the server's
// messages reach the reader in pieces of any size; a SCRAM exchange passes
// whole, a cleartext or MD5 request fails the read wherever it is cut.
func TestTheSCRAMOnlyReaderFollowsMessagesSplitAnywhere(t *testing.T) {
	encode := func(msgs ...pgproto3.BackendMessage) []byte {
		var b []byte
		for _, m := range msgs {
			var err error
			if b, err = m.Encode(b); err != nil {
				t.Fatal(err)
			}
		}
		return b
	}
	scram := encode(
		&pgproto3.AuthenticationSASL{AuthMechanisms: []string{"SCRAM-SHA-256"}},
		&pgproto3.AuthenticationSASLContinue{Data: []byte("r=abc,s=c2FsdA==,i=4096")},
		&pgproto3.AuthenticationSASLFinal{Data: []byte("v=xyz")},
		&pgproto3.AuthenticationOk{},
		// After AuthenticationOk nothing is looked at, even what would
		// look like a request.
		&pgproto3.ParameterStatus{Name: "server_version", Value: "15"},
		&pgproto3.AuthenticationCleartextPassword{},
		&pgproto3.ReadyForQuery{TxStatus: 'I'},
	)
	for name, r := range map[string]io.Reader{
		"whole":          bytes.NewReader(scram),
		"a byte at once": iotest.OneByteReader(bytes.NewReader(scram)),
		"in halves":      iotest.HalfReader(bytes.NewReader(scram)),
	} {
		got, err := io.ReadAll(&scramOnlyReader{r: r})
		if err != nil || !bytes.Equal(got, scram) {
			t.Errorf("a SCRAM exchange read %s: %d of %d bytes, %v", name, len(got), len(scram), err)
		}
	}
	for _, tc := range []struct {
		name string
		req  pgproto3.BackendMessage
		code uint32
	}{
		{"cleartext", &pgproto3.AuthenticationCleartextPassword{}, 3},
		{"MD5", &pgproto3.AuthenticationMD5Password{Salt: [4]byte{1, 2, 3, 4}}, 5},
	} {
		stream := encode(&pgproto3.NoticeResponse{Message: "hello"}, tc.req)
		_, err := io.ReadAll(&scramOnlyReader{r: iotest.OneByteReader(bytes.NewReader(stream))})
		var refused *AuthMethodRefusedError
		if !errors.As(err, &refused) || refused.Method != tc.code {
			t.Errorf("a %s request read a byte at a time: %v, want it refused", tc.name, err)
		}
	}
}
