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
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// The optional parts of config/default/kustomization.yaml, by the tag that
// opens each ("# [PROMETHEUS] ...").
const (
	partPrometheus  = "PROMETHEUS"
	partCertManager = "CERTMANAGER"
	partMetricsCert = "METRICS-CERT"
)

// partTag is the line that opens a part of config/default/kustomization.yaml.
var partTag = regexp.MustCompile(`^# \[([A-Z-]+)\]`)

// enableParts turns the named parts of config/default/kustomization.yaml on
// as its header tells a user to: in each part (from its tag's line to the
// next tag or blank line), the lines with no space after their leading #
// lose the #. A part it finds no such line of fails the test.
func enableParts(t *testing.T, kustomization string, parts ...string) string {
	t.Helper()
	lines := strings.Split(kustomization, "\n")
	part, opened, enabled := "", []string(nil), map[string]bool{}
	for i, line := range lines {
		if tag := partTag.FindStringSubmatch(line); tag != nil {
			if slices.Contains(opened, tag[1]) {
				t.Fatalf("config/default/kustomization.yaml opens part %s twice (a comment line starting with # [%s]?)", tag[1], tag[1])
			}
			part, opened = tag[1], append(opened, tag[1])
			continue
		}
		if !strings.HasPrefix(line, "#") {
			part = ""
			continue
		}
		if yamlLine := line[1:]; slices.Contains(parts, part) && yamlLine != "" && !strings.HasPrefix(yamlLine, " ") {
			lines[i], enabled[part] = yamlLine, true
		}
	}
	for _, p := range parts {
		if !enabled[p] {
			t.Fatalf("config/default/kustomization.yaml has no commented-out lines under # [%s]", p)
		}
	}
	return strings.Join(lines, "\n")
}

// buildConfigDefaultWith builds a copy of config/ whose config/default has
// the named parts turned on, with the pinned kustomize.
func buildConfigDefaultWith(t *testing.T, parts ...string) manifest {
	t.Helper()
	root := copyConfig(t)
	path := filepath.Join(root, "config", "default", "kustomization.yaml")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(enableParts(t, string(b), parts...)), 0o644); err != nil {
		t.Fatal(err)
	}
	return readManifest(t, "kustomize", strings.NewReader(run(t, root, os.Environ(), kustomizeBinary(t), "build", "config/default")))
}

// serviceMonitor holds the fields of a Prometheus Operator ServiceMonitor
// these tests read (the repository does not depend on its Go types).
type serviceMonitor struct {
	Metadata metav1.ObjectMeta `json:"metadata"`
	Spec     struct {
		Endpoints []struct {
			Port          string `json:"port"`
			Scheme        string `json:"scheme"`
			Authorization *struct {
				Type        string                    `json:"type"`
				Credentials *corev1.SecretKeySelector `json:"credentials"`
			} `json:"authorization"`
			TLSConfig *struct {
				CA struct {
					Secret *corev1.SecretKeySelector `json:"secret"`
				} `json:"ca"`
				ServerName string `json:"serverName"`
			} `json:"tlsConfig"`
		} `json:"endpoints"`
		Selector metav1.LabelSelector `json:"selector"`
	} `json:"spec"`
}

// certificate holds the fields of a cert-manager Certificate these tests
// read.
type certificate struct {
	Spec struct {
		SecretName string   `json:"secretName"`
		DNSNames   []string `json:"dnsNames"`
		IsCA       bool     `json:"isCA"`
		IssuerRef  struct {
			Kind string `json:"kind"`
			Name string `json:"name"`
		} `json:"issuerRef"`
	} `json:"spec"`
}

// issuer holds the fields of a cert-manager Issuer these tests read.
type issuer struct {
	Spec struct {
		SelfSigned *struct{} `json:"selfSigned"`
		CA         *struct {
			SecretName string `json:"secretName"`
		} `json:"ca"`
	} `json:"spec"`
}

// decodeLoosely reads the fields of o that into has, ignoring the others.
func decodeLoosely(t *testing.T, o object, into any) {
	t.Helper()
	if err := yaml.Unmarshal(o.doc, into); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
}

// insecureScrapeFields are the ServiceMonitor fields the kustomize path
// must not use: one skips verifying the endpoint, the other reads
// Prometheus' own token file (deprecated; it may not be mounted).
var insecureScrapeFields = []string{"insecureSkipVerify", "bearerTokenFile"}

// checkSecureScrape checks that the build's one ServiceMonitor scrapes the
// metrics Service over TLS it verifies against the certificate the manager
// serves, with the token of a ServiceAccount that may only get /metrics. It
// returns the Secret the manager serves (and the ServiceMonitor trusts) and
// the name the ServiceMonitor verifies.
func checkSecureScrape(t *testing.T, m manifest) (secretName, serverName string) {
	t.Helper()
	for _, o := range m {
		for _, field := range insecureScrapeFields {
			if strings.Contains(string(o.doc), field) {
				t.Errorf("%s %s has %s", o.Kind, o.Name, field)
			}
		}
	}
	monitors := m.ofKind("ServiceMonitor")
	if len(monitors) != 1 {
		t.Fatalf("the build has %d ServiceMonitors, want 1: %s", len(monitors), m)
	}
	var monitor serviceMonitor
	decodeLoosely(t, monitors[0], &monitor)
	if len(monitor.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor %s has %d endpoints, want 1", monitor.Metadata.Name, len(monitor.Spec.Endpoints))
	}
	endpoint := monitor.Spec.Endpoints[0]
	ns := monitor.Metadata.Namespace
	if endpoint.Scheme != "https" || endpoint.TLSConfig == nil || endpoint.TLSConfig.CA.Secret == nil {
		t.Fatalf("the ServiceMonitor scrapes with scheme %q and verifies against no CA Secret", endpoint.Scheme)
	}

	t.Run("its token is a ServiceAccount's that may only get /metrics", func(t *testing.T) {
		auth := endpoint.Authorization
		if auth == nil || auth.Type != "Bearer" || auth.Credentials == nil || auth.Credentials.Key != "token" {
			t.Fatalf("the ServiceMonitor's authorization is %+v, want the token of a service-account-token Secret", auth)
		}
		var secret corev1.Secret
		m.get(t, "Secret", auth.Credentials.Name, &secret)
		account := secret.Annotations[corev1.ServiceAccountNameKey]
		if secret.Type != corev1.SecretTypeServiceAccountToken || secret.Namespace != ns || account == "" {
			t.Fatalf("Secret %s/%s is of type %s for ServiceAccount %q; want a service-account-token Secret in %s", secret.Namespace, secret.Name, secret.Type, account, ns)
		}
		var sa corev1.ServiceAccount
		m.get(t, "ServiceAccount", account, &sa)
		if sa.Namespace != ns {
			t.Errorf("ServiceAccount %s is in %q, its token Secret in %q", account, sa.Namespace, ns)
		}
		var roles []string
		for _, o := range m.ofKind("ClusterRoleBinding") {
			var b rbacv1.ClusterRoleBinding
			o.decode(t, &b)
			if slices.Contains(b.Subjects, rbacv1.Subject{Kind: rbacv1.ServiceAccountKind, Name: account, Namespace: ns}) {
				roles = append(roles, b.RoleRef.Kind+"/"+b.RoleRef.Name)
			}
		}
		if !slices.Equal(roles, []string{"ClusterRole/" + release + "-metrics-reader"}) {
			t.Fatalf("ServiceAccount %s is bound to %q, want only config/rbac's metrics reader", account, roles)
		}
		var reader rbacv1.ClusterRole
		m.get(t, "ClusterRole", release+"-metrics-reader", &reader)
		if len(reader.Rules) != 1 || !slices.Equal(reader.Rules[0].NonResourceURLs, []string{"/metrics"}) || !slices.Equal(reader.Rules[0].Verbs, []string{"get"}) {
			t.Errorf("the scraper may do %+v, want only get /metrics", reader.Rules)
		}
	})

	t.Run("it verifies the metrics Service's DNS name", func(t *testing.T) {
		selector, err := metav1.LabelSelectorAsSelector(&monitor.Spec.Selector)
		if err != nil {
			t.Fatal(err)
		}
		var scraped []corev1.Service
		for _, o := range m.ofKind("Service") {
			var s corev1.Service
			o.decode(t, &s)
			if s.Namespace == ns && selector.Matches(labels.Set(s.Labels)) &&
				slices.ContainsFunc(s.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == endpoint.Port }) {
				scraped = append(scraped, s)
			}
		}
		if len(scraped) != 1 {
			t.Fatalf("the ServiceMonitor selects %d Services with a port %q, want 1", len(scraped), endpoint.Port)
		}
		if want := scraped[0].Name + "." + scraped[0].Namespace + ".svc"; endpoint.TLSConfig.ServerName != want {
			t.Errorf("the ServiceMonitor verifies the endpoint as %q, want %q", endpoint.TLSConfig.ServerName, want)
		}
	})

	t.Run("it trusts the CA of the certificate the manager serves", func(t *testing.T) {
		ca := endpoint.TLSConfig.CA.Secret
		if ca.Key != "ca.crt" {
			t.Errorf("the ServiceMonitor trusts key %q of Secret %s, want ca.crt", ca.Key, ca.Name)
		}
		deployments := m.ofKind("Deployment")
		if len(deployments) != 1 {
			t.Fatalf("the build has %d Deployments, want the manager's", len(deployments))
		}
		var d appsv1.Deployment
		deployments[0].decode(t, &d)
		i := slices.IndexFunc(d.Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "manager" })
		if i < 0 {
			t.Fatalf("Deployment %s has no container named manager", d.Name)
		}
		c := d.Spec.Template.Spec.Containers[i]
		dirs := flagValues(c.Args, "metrics-cert-dir")
		if len(dirs) != 1 || dirs[0] == "" {
			t.Fatalf("the manager's --metrics-cert-dir is %q: it serves a self-signed certificate no scraper can verify", dirs)
		}
		mount := slices.IndexFunc(c.VolumeMounts, func(vm corev1.VolumeMount) bool { return vm.MountPath == dirs[0] })
		if mount < 0 {
			t.Fatalf("nothing is mounted at --metrics-cert-dir %s: %+v", dirs[0], c.VolumeMounts)
		}
		volumes := d.Spec.Template.Spec.Volumes
		v := slices.IndexFunc(volumes, func(v corev1.Volume) bool { return v.Name == c.VolumeMounts[mount].Name })
		if v < 0 || volumes[v].Secret == nil {
			t.Fatalf("--metrics-cert-dir %s is not a Secret's volume: %+v", dirs[0], volumes)
		}
		secret := volumes[v].Secret
		// The manager reads tls.crt and tls.key from the directory.
		for _, file := range []string{"tls.crt", "tls.key"} {
			if len(secret.Items) > 0 && !slices.ContainsFunc(secret.Items, func(k corev1.KeyToPath) bool { return k.Key == file && k.Path == file }) {
				t.Errorf("the mounted Secret's %s is not at %s/%s: %+v", file, dirs[0], file, secret.Items)
			}
		}
		if secret.SecretName != ca.Name {
			t.Errorf("the manager serves Secret %s, the ServiceMonitor trusts Secret %s", secret.SecretName, ca.Name)
		}
	})
	return endpoint.TLSConfig.CA.Secret.Name, endpoint.TLSConfig.ServerName
}

// config/default's ServiceMonitor is as secure as the chart's: verified TLS
// and a token from a Secret, with the metrics certificate cert-manager's
// (config/certmanager) or the user's own. The parts are turned on in a copy
// of config/ exactly as config/default/kustomization.yaml tells a user to,
// so the test covers those commented-out lines too.
func TestKustomizeServiceMonitorVerifiesTheEndpointAndAuthenticates(t *testing.T) {
	t.Run("nothing in config/ skips verification or reads Prometheus' own token file", func(t *testing.T) {
		err := filepath.WalkDir(configDir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := os.ReadFile(path)
			for _, field := range insecureScrapeFields {
				if strings.Contains(string(b), field) {
					t.Errorf("%s has %s", path, field)
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	})

	t.Run("as committed, config/default has no monitoring and the manager no certificate to mount", func(t *testing.T) {
		m := readManifest(t, "kustomize", strings.NewReader(run(t, "../..", os.Environ(), kustomizeBinary(t), "build", "config/default")))
		for _, kind := range []string{"ServiceMonitor", "Certificate", "Issuer"} {
			if got := m.ofKind(kind); len(got) > 0 {
				t.Errorf("config/default builds a %s although its part is commented out", kind)
			}
		}
		if dirs := flagValues(kustomizedManager(t, "../..").Args, "metrics-cert-dir"); len(dirs) > 0 {
			t.Errorf("config/default's manager has --metrics-cert-dir %q without a Secret to mount", dirs)
		}
	})

	t.Run("with cert-manager, the endpoint's certificate is issued for the name verified", func(t *testing.T) {
		m := buildConfigDefaultWith(t, partPrometheus, partCertManager, partMetricsCert)
		secretName, serverName := checkSecureScrape(t, m)
		var issued []certificate
		for _, o := range m.ofKind("Certificate") {
			var c certificate
			decodeLoosely(t, o, &c)
			if c.Spec.SecretName == secretName {
				issued = append(issued, c)
			}
			// Each Certificate's issuer is in the build (kustomize prefixed
			// the reference too), and a CA issuer's CA is a Certificate's.
			if c.Spec.IssuerRef.Kind != "Issuer" {
				t.Errorf("Certificate %s is issued by a %s, want an Issuer of the build", o.Name, c.Spec.IssuerRef.Kind)
				continue
			}
			found, ok := m.find("Issuer", c.Spec.IssuerRef.Name)
			if !ok {
				t.Errorf("Certificate %s names Issuer %s, which the build does not have", o.Name, c.Spec.IssuerRef.Name)
				continue
			}
			var is issuer
			decodeLoosely(t, found, &is)
			if is.Spec.CA != nil && !slices.ContainsFunc(m.ofKind("Certificate"), func(o object) bool {
				var ca certificate
				decodeLoosely(t, o, &ca)
				return ca.Spec.IsCA && ca.Spec.SecretName == is.Spec.CA.SecretName
			}) {
				t.Errorf("Issuer %s signs with Secret %s, which no CA Certificate of the build writes", found.Name, is.Spec.CA.SecretName)
			}
		}
		if len(issued) != 1 {
			t.Fatalf("%d Certificates write Secret %s, which the manager serves; want 1", len(issued), secretName)
		}
		if !slices.Contains(issued[0].Spec.DNSNames, serverName) {
			t.Errorf("the certificate is for %q, the ServiceMonitor verifies %q", issued[0].Spec.DNSNames, serverName)
		}
		if issued[0].Spec.IsCA {
			t.Error("the endpoint's certificate is a CA")
		}
	})

	t.Run("without cert-manager, the same Secret is the user's to make", func(t *testing.T) {
		m := buildConfigDefaultWith(t, partPrometheus, partMetricsCert)
		secretName, _ := checkSecureScrape(t, m)
		for _, kind := range []string{"Certificate", "Issuer"} {
			if got := m.ofKind(kind); len(got) > 0 {
				t.Errorf("the build has a %s without config/certmanager", kind)
			}
		}
		if _, ok := m.find("Secret", secretName); ok {
			t.Errorf("the build makes Secret %s, which is the user's (or cert-manager's)", secretName)
		}
		if secretName != "metrics-server-cert" {
			t.Errorf("the manager serves Secret %s; config/default/kustomization.yaml and the README tell users to make metrics-server-cert", secretName)
		}
	})
}
