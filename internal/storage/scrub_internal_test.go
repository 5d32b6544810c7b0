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
	"errors"
	"strings"
	"testing"
)

func TestErrorMessagesAreScrubbedOfPasswords(t *testing.T) {
	for _, tc := range []struct{ name, msg, secret string }{
		{"a known secret anywhere", "auth failed for hunter2-xyz at host", "hunter2-xyz"},
		{"a keyword connection string", "cannot parse `host=h password=topsecret user=u`", ""},
		{"a quoted keyword value", "cannot parse `password='top secret' user=u`", ""},
		{"an ALTER ROLE statement", "error in ALTER ROLE x PASSWORD 'plaintext'", ""},
	} {
		t.Run("scrubs "+tc.name, func(t *testing.T) {
			err := wrap("op", errors.New(tc.msg), tc.secret)
			for _, leaked := range []string{"hunter2-xyz", "topsecret", "top secret", "plaintext"} {
				if strings.Contains(err.Error(), leaked) {
					t.Errorf("%q still in %q", leaked, err.Error())
				}
			}
		})
	}
}

func TestQuoteLiteral(t *testing.T) {
	for in, want := range map[string]string{
		"plain":      "'plain'",
		"it's":       "'it''s'",
		`back\slash`: `E'back\\slash'`,
		"nul\x00":    "'nul'",
	} {
		if got := QuoteLiteral(in); got != want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestPasswordMatchesItsVerifier(t *testing.T) {
	v, err := SCRAMVerifier("correct-horse")
	if err != nil {
		t.Fatal(err)
	}
	if !passwordMatches(v, "tenant_x", "correct-horse") {
		t.Errorf("the password does not match its own verifier %s", v)
	}
	if passwordMatches(v, "tenant_x", "wrong-horse") {
		t.Errorf("a wrong password matches")
	}
	if passwordMatches("", "tenant_x", "") || passwordMatches("SCRAM-SHA-256$junk", "tenant_x", "x") {
		t.Errorf("a malformed verifier matches")
	}
}
