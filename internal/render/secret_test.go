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

package render

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"

	"github.com/millimetric/tenant-operator/internal/storage"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func TestStorageSecret(t *testing.T) {
	tests := []struct {
		name  string
		creds storage.Credentials
		want  map[string]string
	}{
		{
			name:  "a region with a private CA gives every key and ca.crt",
			creds: testCredentials(),
			want: map[string]string{
				"host": "pg.eu-west-1.internal", "port": "6432", "database": "events", "sslmode": "verify-full",
				"schema": "tenant_acme", "username": "tenant_acme", "password": testPassword, "ca.crt": testCA,
			},
		},
		{
			name: "a region with public certificates gives no ca.crt key",
			creds: func() storage.Credentials {
				c := testCredentials()
				c.CACert = nil
				return c
			}(),
			want: map[string]string{
				"host": "pg.eu-west-1.internal", "port": "6432", "database": "events", "sslmode": "verify-full",
				"schema": "tenant_acme", "username": "tenant_acme", "password": testPassword,
			},
		},
		{
			name: "unset settings are written as the values in force",
			creds: storage.Credentials{
				Host: "pg", Database: "events", Username: "tenant_acme", Password: testPassword,
			},
			want: map[string]string{
				"host": "pg", "port": "5432", "database": "events", "sslmode": "verify-full",
				"schema": "tenant_acme", "username": "tenant_acme", "password": testPassword,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := StorageSecret(tenantWith(), tt.creds)
			if s.Name != StorageSecretName || s.Type != corev1.SecretTypeOpaque {
				t.Errorf("Secret %s of type %s, want %s of type Opaque", s.Name, s.Type, StorageSecretName)
			}
			if len(s.StringData) > 0 {
				t.Error("stringData is set; it is write-only and would never read back as applied")
			}
			got := map[string]string{}
			for k, v := range s.Data {
				got[k] = string(v)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("the ingest Secret has the same keys, with the ingest role's credentials", func(t *testing.T) {
		s := IngestSecret(tenantWith(), testIngestCredentials(), testVisitorKey)
		if s.Name != IngestSecretName || s.Name == StorageSecretName || s.Type != corev1.SecretTypeOpaque {
			t.Errorf("Secret %s of type %s, want %s of type Opaque", s.Name, s.Type, IngestSecretName)
		}
		got := map[string]string{}
		for k, v := range s.Data {
			got[k] = string(v)
		}
		want := map[string]string{
			"host": "pg.eu-west-1.internal", "port": "6432", "database": "events", "sslmode": "verify-full",
			"schema": "tenant_acme", "username": "ingest_acme", "password": testIngestPassword, "ca.crt": testCA,
			"visitor-key": hex.EncodeToString(testVisitorKey),
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("data (-want +got):\n%s", diff)
		}
	})

	t.Run("each Secret is labelled with the component that reads it", func(t *testing.T) {
		for secret, component := range map[*corev1.Secret]string{
			StorageSecret(tenantWith(), testCredentials()):                      ComponentRetention,
			IngestSecret(tenantWith(), testIngestCredentials(), testVisitorKey): ComponentIngest,
		} {
			if got := secret.Labels[LabelComponent]; got != component {
				t.Errorf("Secret %s has component %q, want %q", secret.Name, got, component)
			}
		}
	})

	t.Run("the ingest Secret's visitor key reads back, and a missing or broken one reads as none", func(t *testing.T) {
		s := IngestSecret(tenantWith(), testIngestCredentials(), testVisitorKey)
		if got := VisitorKeyOf(s); !bytes.Equal(got, testVisitorKey) {
			t.Errorf("VisitorKeyOf = %x, want %x", got, testVisitorKey)
		}
		for what, data := range map[string]string{"none": "", "not hex": "zz", "too short": "abcd"} {
			s.Data[SecretKeyVisitorKey] = []byte(data)
			if VisitorKeyOf(s) != nil {
				t.Errorf("a visitor key that is %s reads as a key", what)
			}
		}
		if VisitorKeyOf(StorageSecret(tenantWith(), testCredentials())) != nil {
			t.Error("the storage Secret has a visitor key: only ingest may read it")
		}
	})

	t.Run("the Secret does not share memory with the credentials", func(t *testing.T) {
		creds := testCredentials()
		s := StorageSecret(tenantWith(), creds)
		creds.CACert[0] = 'X'
		if string(s.Data["ca.crt"]) != testCA {
			t.Error("changing the credentials changed the Secret")
		}
	})
}
