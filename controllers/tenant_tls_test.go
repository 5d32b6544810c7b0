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

package controllers_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
)

// tlsArrives is how soon a TLS change of the region must be in the
// tenants' Secrets: seconds, where the next verification is hours away.
const tlsArrives = 10 * time.Second

// TestATLSChangeOfTheRegionReachesTheTenantsSecretsAtOnce changes a
// region's sslMode, then the CA bundle in its admin Secret, and expects
// each in the tenant's ingest Secret (sslmode, ca.crt) and its pods'
// credentials hash within seconds: the tenant's storage fingerprint
// holds both, so the change re-provisions it at once instead of at its
// next verification, up to 6 hours later.
func TestATLSChangeOfTheRegionReachesTheTenantsSecretsAtOnce(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	adminSecret(t, "tls-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword, controllers.AdminSecretCAKey: string(pg.CACert)})
	sr := &analyticsv1alpha1.StorageRegion{
		ObjectMeta: objectMeta("tls"),
		Spec: analyticsv1alpha1.StorageRegionSpec{Region: analyticsv1alpha1.RegionUS, Postgres: analyticsv1alpha1.PostgresSpec{
			Host: "127.0.0.1", Port: ptr.To(int32(pg.Port)), Database: pg.Databases["US"], SSLMode: analyticsv1alpha1.SSLModeVerifyCA,
			AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: systemNamespace, Name: "tls-admin"},
		}},
	}
	g.Expect(k8s.Create(ctx, sr)).To(Succeed())
	t.Cleanup(func() {
		_ = k8s.Delete(context.Background(), sr)
	})
	g.Eventually(readyOf("tls"), wait, tick).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
	newTenant(t, "tls", analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	ns := "tenant-tls"
	g.Eventually(conditionOf("tls", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	ingestSecret := get(&corev1.Secret{}, ns, render.IngestSecretName)
	key := func(k string) func() string {
		return func() string {
			s := ingestSecret()
			if s == nil {
				return ""
			}
			return string(s.Data[k])
		}
	}
	podsHash := func() string {
		d := ingestDeployment(ns)()
		if d == nil {
			return ""
		}
		return d.Spec.Template.Annotations[render.AnnotationCredentialsHash]
	}
	g.Eventually(key(render.SecretKeySSLMode), wait, tick).Should(Equal("verify-ca"))
	g.Expect(key(render.SecretKeyCACert)()).To(Equal(string(pg.CACert)))
	g.Eventually(podsHash, wait, tick).ShouldNot(BeEmpty())

	// The tenant is converged and verified: nothing else would provision
	// it again for hours.
	before := podsHash()
	g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(sr), sr)).To(Succeed())
	sr.Spec.Postgres.SSLMode = analyticsv1alpha1.SSLModeVerifyFull
	g.Expect(k8s.Update(ctx, sr)).To(Succeed())
	g.Eventually(key(render.SecretKeySSLMode), tlsArrives, tick).Should(Equal("verify-full"), "the region's new sslMode reaches the tenant's Secret at once")
	g.Eventually(podsHash, tlsArrives, tick).ShouldNot(Equal(before), "the ingest pods roll onto the new sslMode")

	// A CA bundle that also carries the next CA, as before a rotation.
	bundle := string(pg.CACert) + newCAPEM(t)
	before = podsHash()
	admin := &corev1.Secret{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: "tls-admin"}, admin)).To(Succeed())
	admin.Data[controllers.AdminSecretCAKey] = []byte(bundle)
	g.Expect(k8s.Update(ctx, admin)).To(Succeed())
	g.Eventually(key(render.SecretKeyCACert), tlsArrives, tick).Should(Equal(bundle), "the admin Secret's new CA bundle reaches the tenant's Secret at once")
	g.Eventually(podsHash, tlsArrives, tick).ShouldNot(Equal(before), "the ingest pods roll onto the new CA bundle")
	g.Eventually(conditionOf("tls", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
}

// newCAPEM is a self-signed CA certificate in PEM, never used to sign.
func newCAPEM(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "next CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}
