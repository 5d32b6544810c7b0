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

package chart

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
)

// metricsCertDir is where the chart mounts the metrics certificate.
const metricsCertDir = "/etc/tenant-operator/metrics-tls"

// serviceMonitorEndpoint is the ServiceMonitor's one endpoint, as rendered.
func serviceMonitorEndpoint(t *testing.T, m manifest) map[string]any {
	t.Helper()
	o, ok := m.find("ServiceMonitor", release)
	if !ok {
		t.Fatalf("no ServiceMonitor: %s", m)
	}
	return o.fields(t)["spec"].(map[string]any)["endpoints"].([]any)[0].(map[string]any)
}

// mountedMetricsSecret is the Secret the manager serves its metrics
// certificate from, checking the flag and the mount agree.
func mountedMetricsSecret(t *testing.T, m manifest) string {
	t.Helper()
	d, c := managerContainer(t, m)
	if !slices.Contains(c.Args, "--metrics-cert-dir="+metricsCertDir) {
		t.Errorf("the manager's args %q do not name the mounted certificate", c.Args)
	}
	var volume string
	for _, vm := range c.VolumeMounts {
		if vm.MountPath == metricsCertDir {
			volume = vm.Name
		}
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == volume && v.Secret != nil {
			return v.Secret.SecretName
		}
	}
	t.Fatalf("nothing is mounted at %s from a Secret: %+v", metricsCertDir, c.VolumeMounts)
	return ""
}

func TestChartServiceMonitorVerifiesTheEndpointAndAuthenticates(t *testing.T) {
	serverName := release + "-metrics." + namespace + ".svc"
	withCRDs := []string{"--api-versions", prometheusOperatorKinds}
	on := append(set("metrics.serviceMonitor.enabled=true"), withCRDs...)

	t.Run("by default the chart's own CA and certificate, verified for the Service's DNS name", func(t *testing.T) {
		m := render(t, on...)
		endpoint := serviceMonitorEndpoint(t, m)
		if _, ok := endpoint["bearerTokenFile"]; ok {
			t.Error("the ServiceMonitor uses the deprecated bearerTokenFile")
		}
		tlsConfig := endpoint["tlsConfig"].(map[string]any)
		if skip, _ := tlsConfig["insecureSkipVerify"].(bool); skip {
			t.Error("the ServiceMonitor skips verifying the endpoint's certificate")
		}
		if tlsConfig["serverName"] != serverName {
			t.Errorf("the ServiceMonitor verifies the endpoint as %v, want %s", tlsConfig["serverName"], serverName)
		}
		caRef := tlsConfig["ca"].(map[string]any)["secret"].(map[string]any)
		mounted := mountedMetricsSecret(t, m)
		if caRef["name"] != mounted || caRef["key"] != "ca.crt" {
			t.Errorf("the ServiceMonitor trusts %v, the manager serves Secret %s", caRef, mounted)
		}
		var secret corev1.Secret
		m.get(t, "Secret", mounted, &secret)
		// What Prometheus does: the served chain against ca.crt, for serverName.
		pair, err := tls.X509KeyPair(secret.Data["tls.crt"], secret.Data["tls.key"])
		if err != nil {
			t.Fatalf("Secret %s: %v", mounted, err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		roots := x509.NewCertPool()
		if block, _ := pem.Decode(secret.Data["ca.crt"]); block == nil || !roots.AppendCertsFromPEM(secret.Data["ca.crt"]) {
			t.Fatalf("Secret %s's ca.crt is not a PEM certificate", mounted)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, DNSName: serverName}); err != nil {
			t.Errorf("the endpoint's certificate does not verify for %s against ca.crt: %v", serverName, err)
		}
	})

	t.Run("by default a token of a ServiceAccount that may only get /metrics", func(t *testing.T) {
		m := render(t, on...)
		creds := serviceMonitorEndpoint(t, m)["authorization"].(map[string]any)["credentials"].(map[string]any)
		var secret corev1.Secret
		m.get(t, "Secret", creds["name"].(string), &secret)
		account := secret.Annotations["kubernetes.io/service-account.name"]
		if secret.Type != corev1.SecretTypeServiceAccountToken || creds["key"] != "token" || account == "" {
			t.Fatalf("the ServiceMonitor's token is %v of Secret %s (%s, for %q)", creds["key"], secret.Name, secret.Type, account)
		}
		var binding rbacv1.ClusterRoleBinding
		m.get(t, "ClusterRoleBinding", account, &binding)
		if binding.RoleRef.Name != release+"-metrics-reader" || len(binding.Subjects) != 1 || binding.Subjects[0].Name != account {
			t.Errorf("ServiceAccount %s is bound to %+v", account, binding)
		}
		var reader rbacv1.ClusterRole
		m.get(t, "ClusterRole", release+"-metrics-reader", &reader)
		if len(reader.Rules) != 1 || !slices.Equal(reader.Rules[0].NonResourceURLs, []string{"/metrics"}) || !slices.Equal(reader.Rules[0].Verbs, []string{"get"}) {
			t.Errorf("the scraper may do %+v, want only get /metrics", reader.Rules)
		}
	})

	t.Run("a token Secret and a certificate Secret of the user's replace the chart's", func(t *testing.T) {
		m := render(t, append(slices.Clone(on), set("metrics.serviceMonitor.authorization.secretName=prom-token",
			"metrics.serviceMonitor.authorization.key=bearer", "metrics.tls.secretName=my-metrics-tls")...)...)
		endpoint := serviceMonitorEndpoint(t, m)
		creds := endpoint["authorization"].(map[string]any)["credentials"].(map[string]any)
		if creds["name"] != "prom-token" || creds["key"] != "bearer" {
			t.Errorf("the ServiceMonitor's token is %v", creds)
		}
		if got := mountedMetricsSecret(t, m); got != "my-metrics-tls" {
			t.Errorf("the manager serves Secret %s, want my-metrics-tls", got)
		}
		if ca := endpoint["tlsConfig"].(map[string]any)["ca"].(map[string]any)["secret"].(map[string]any); ca["name"] != "my-metrics-tls" {
			t.Errorf("the ServiceMonitor trusts %v", ca)
		}
		for _, kind := range []string{"Secret", "Certificate", "ServiceAccount", "ClusterRoleBinding"} {
			for _, o := range m.ofKind(kind) {
				if strings.Contains(o.Name, "metrics-tls") || strings.Contains(o.Name, "metrics-scraper") {
					t.Errorf("%s %s is rendered although the user brings their own", kind, o.Name)
				}
			}
		}
	})

	t.Run("cert-manager issues it when asked, and is refused without its CRDs or an issuer", func(t *testing.T) {
		certManager := append(slices.Clone(on), set("metrics.tls.certManager.enabled=true", "metrics.tls.certManager.issuerRef.name=ca",
			"metrics.tls.certManager.issuerRef.kind=ClusterIssuer")...)
		m := render(t, append(slices.Clone(certManager), "--api-versions", "cert-manager.io/v1/Certificate")...)
		mounted := mountedMetricsSecret(t, m)
		o, ok := m.find("Certificate", mounted)
		if !ok {
			t.Fatalf("no Certificate %s: %s", mounted, m)
		}
		spec := o.fields(t)["spec"].(map[string]any)
		if spec["secretName"] != mounted || !slices.Contains(spec["dnsNames"].([]any), any(serverName)) {
			t.Errorf("the Certificate is %v; want Secret %s for %s", spec, mounted, serverName)
		}
		if _, ok := m.find("Secret", mounted); ok {
			t.Error("the chart makes its own certificate beside cert-manager's")
		}
		if _, err := templateChart(t, release, certManager...); err == nil || !strings.Contains(err.Error(), "cert-manager") {
			t.Errorf("rendered a Certificate for a cluster without cert-manager: %v", err)
		}
		if _, err := templateChart(t, release, append(slices.Clone(on), "--api-versions", "cert-manager.io/v1/Certificate",
			"--set", "metrics.tls.certManager.enabled=true")...); err == nil || !strings.Contains(err.Error(), "issuerRef.name") {
			t.Errorf("rendered a Certificate with no issuer: %v", err)
		}
	})
}
