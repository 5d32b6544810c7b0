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
	"crypto/rand"
	"encoding/hex"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// StorageSecret holds the credentials of the tenant's schema owner, which
// the retention container reads by reference (PGHOST and so on). Ingest
// never sees it: the owner may drop partitions and alter tables.
func StorageSecret(t Tenant, creds storage.Credentials) *corev1.Secret {
	return credentialsSecret(t, StorageSecretName, ComponentRetention, creds)
}

// IngestSecret holds the credentials of the tenant's ingest role, which the
// ingest container reads by reference: a role that may insert events, and
// nothing else. Beside them it holds the tenant's visitor key
// (SecretKeyVisitorKey, hex), which only ingest needs and the database
// never sees: so a dump of the database cannot be joined with a browser's
// own mm_aid, nor with another tenant's visitors.
func IngestSecret(t Tenant, creds storage.Credentials, visitorKey []byte) *corev1.Secret {
	s := credentialsSecret(t, IngestSecretName, ComponentIngest, creds)
	s.Data[SecretKeyVisitorKey] = []byte(hex.EncodeToString(visitorKey))
	return s
}

// VisitorKeyOf is the visitor key an ingest Secret holds, nil when it
// holds none or one that is not VisitorKeySize bytes of hex: the
// reconciler then makes a new one.
func VisitorKeyOf(secret *corev1.Secret) []byte {
	if secret == nil {
		return nil
	}
	key, err := hex.DecodeString(string(secret.Data[SecretKeyVisitorKey]))
	if err != nil || event.CheckVisitorKey(key) != nil {
		return nil
	}
	return key
}

// NewVisitorKey is a new random visitor key.
func NewVisitorKey() ([]byte, error) {
	key := make([]byte, event.VisitorKeySize)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("making a visitor key: %w", err)
	}
	return key, nil
}

// credentialsSecret is a Secret of one role's credentials; the two Secrets
// have the same keys, so the containers read either the same way. Secrets
// are the only objects a credential is ever put in. Unset settings are
// written as what is in force (port 5432, sslmode verify-full, the schema
// named as the user), so every key is always present and usable as is;
// ca.crt is present only when the region has a CA certificate.
func credentialsSecret(t Tenant, name, component string, creds storage.Credentials) *corev1.Secret {
	port := creds.Port
	if port == 0 {
		port = v1alpha1.DefaultPostgresPort
	}
	sslMode := creds.SSLMode
	if sslMode == "" {
		sslMode = string(v1alpha1.DefaultSSLMode)
	}
	schema := creds.Schema
	if schema == "" {
		schema = creds.Username
	}
	data := map[string][]byte{
		SecretKeyHost:     []byte(creds.Host),
		SecretKeyPort:     []byte(formatPort(port)),
		SecretKeyDatabase: []byte(creds.Database),
		SecretKeySSLMode:  []byte(sslMode),
		SecretKeySchema:   []byte(schema),
		SecretKeyUsername: []byte(creds.Username),
		SecretKeyPassword: []byte(creds.Password),
	}
	if len(creds.CACert) > 0 {
		data[SecretKeyCACert] = append([]byte(nil), creds.CACert...)
	}
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(t, name, componentLabels(t, component)),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}
