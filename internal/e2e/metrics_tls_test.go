//go:build e2e

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

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// writeServingCert makes a CA and a certificate it signs for 127.0.0.1
// into dir (tls.crt, tls.key), as the chart's metrics Secret holds them,
// and returns the CA's pool.
func writeServingCert(t *testing.T, dir string) *x509.CertPool {
	t.Helper()
	g := NewWithT(t)
	newKey := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		g.Expect(err).NotTo(HaveOccurred())
		return k
	}
	caKey, leafKey := newKey(), newKey()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "e2e-metrics-ca"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	g.Expect(err).NotTo(HaveOccurred())
	caCert, err := x509.ParseCertificate(caDER)
	g.Expect(err).NotTo(HaveOccurred())
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &leafKey.PublicKey, caKey)
	g.Expect(err).NotTo(HaveOccurred())
	keyDER, err := x509.MarshalECPrivateKey(leafKey)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(os.WriteFile(filepath.Join(dir, "tls.crt"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}), 0o600)).To(Succeed())
	g.Expect(os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600)).To(Succeed())
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return pool
}

// scraperToken is a token of a ServiceAccount bound to the chart's
// metrics-reader ClusterRole, as the chart's ServiceMonitor sends.
func scraperToken(t *testing.T) string {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	const name = "e2e-metrics-scraper"
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: name}}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: chartRelease + "-tenant-operator-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: systemNamespace, Name: name}},
	}
	for _, obj := range []client.Object{sa, binding} {
		g.Expect(k8s.Create(ctx, obj)).To(Succeed())
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	}
	request := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](600)}}
	g.Expect(k8s.SubResource("token").Create(ctx, sa, request)).To(Succeed())
	return request.Status.Token
}

// The metrics endpoint serves the certificate the chart mounts
// (--metrics-cert-dir), so Prometheus can verify it as the chart's
// ServiceMonitor does, and authorizes the scraper's token.
func TestTheMetricsEndpointServesTheMountedCertificateToAnAuthorizedScraper(t *testing.T) {
	g := NewWithT(t)
	dir := t.TempDir()
	roots := writeServingCert(t, dir)
	token := scraperToken(t)
	port := freePort(t)
	startOperator(t, "a", fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", port), "--metrics-cert-dir="+dir, "--leader-elect=false")
	url := fmt.Sprintf("https://127.0.0.1:%d/metrics", port)

	get := func(pool *x509.CertPool, bearer string) (int, string, error) {
		c := http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	g.Eventually(func() (int, error) {
		code, _, err := get(roots, token)
		return code, err
	}, wait, tick).Should(Equal(http.StatusOK), "a verifying scraper with the metrics-reader's token")
	_, body, err := get(roots, token)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(body).To(ContainSubstring("millimetric_api_requests_total"))

	_, _, err = get(x509.NewCertPool(), token)
	g.Expect(err).To(MatchError(ContainSubstring("certificate signed by unknown authority")),
		"the endpoint served a certificate another CA verifies: not the mounted one")
	code, _, err := get(roots, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusUnauthorized), "metrics without a token")

	t.Run("a certificate directory without the certificate stops the manager with the reason", func(t *testing.T) {
		g := NewWithT(t)
		empty := t.TempDir()
		cmd := exec.Command(manager, "--metrics-bind-address=127.0.0.1:0", "--metrics-cert-dir="+empty, "--leader-elect=false",
			"--health-probe-bind-address=0")
		cmd.Env = append(os.Environ(), "KUBECONFIG="+operatorKubeconfig)
		out, err := cmd.CombinedOutput()
		g.Expect(cmd.ProcessState).NotTo(BeNil(), "the manager did not run: %v", err)
		g.Expect(cmd.ProcessState.ExitCode()).To(Equal(2), "%s", out)
		g.Expect(string(out)).To(ContainSubstring("the metrics certificate is missing"))
	})
}
