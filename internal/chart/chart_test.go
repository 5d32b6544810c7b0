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
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"sigs.k8s.io/yaml"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	rendering "github.com/millimetric/tenant-operator/internal/render"
)

const (
	chartDir  = "../../dist/chart"
	configDir = "../../config"
	// release is the release name the tests render; it contains the chart's
	// name, so it is also the objects' name prefix (fullname).
	release   = "tenant-operator"
	namespace = "millimetric-system"
	// allFeatures turns every optional feature on (make chart-check renders it too).
	allFeatures = chartDir + "/ci/all-features-values.yaml"
	// prometheusOperatorKinds are the monitoring.coreos.com kinds the chart
	// renders only where the cluster serves them (.Capabilities).
	prometheusOperatorKinds = "monitoring.coreos.com/v1/ServiceMonitor,monitoring.coreos.com/v1/PodMonitor,monitoring.coreos.com/v1/PrometheusRule"
	// defaultLeaseName is the manager's own --leader-election-id default.
	defaultLeaseName = "tenant-operator.analytics.millimetric.ai"
)

// helmBinary is the pinned helm: $HELM, else bin/helm of the repository.
// Without it the tests cannot say anything about the chart, so they fail.
func helmBinary(t *testing.T) string {
	t.Helper()
	path := os.Getenv("HELM")
	if path == "" {
		abs, err := filepath.Abs("../../bin/helm")
		if err != nil {
			t.Fatal(err)
		}
		path = abs
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no helm at %s (%v): `make test` and `make chart-check` build it from hack/tools/helm "+
			"(or `make tools`); or point HELM at one", path, err)
	}
	return path
}

// object is one object `helm template` rendered or `kustomize build` built.
type object struct {
	Kind, Name, Namespace string
	// Template is the chart file it came from (helm's "# Source:" line;
	// empty for kustomize's).
	Template string
	doc      []byte
}

// decode reads the object into a Go type strictly: a field the type does
// not have (a misspelt one in a template) is an error, not a silent drop.
func (o object) decode(t *testing.T, into any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(o.doc, into); err != nil {
		t.Fatalf("%s %s (%s) does not decode as %T: %v", o.Kind, o.Name, o.Template, into, err)
	}
}

// fields is the object as generic YAML (as JSON would read it).
func (o object) fields(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(o.doc, &m); err != nil {
		t.Fatalf("%s %s: %v", o.Kind, o.Name, err)
	}
	return m
}

// manifest is everything one `helm template` rendered, or one `kustomize
// build` built.
type manifest []object

func (m manifest) find(kind, name string) (object, bool) {
	for _, o := range m {
		if o.Kind == kind && o.Name == name {
			return o, true
		}
	}
	return object{}, false
}

func (m manifest) ofKind(kind string) []object {
	var out []object
	for _, o := range m {
		if o.Kind == kind {
			out = append(out, o)
		}
	}
	return out
}

// get decodes the one object of that kind and name, strictly; it fails the
// test when there is none.
func (m manifest) get(t *testing.T, kind, name string, into any) {
	t.Helper()
	o, ok := m.find(kind, name)
	if !ok {
		t.Fatalf("no %s %q among %s", kind, name, m)
	}
	o.decode(t, into)
}

func (m manifest) String() string {
	names := make([]string, 0, len(m))
	for _, o := range m {
		names = append(names, o.Kind+"/"+o.Name)
	}
	return strings.Join(names, ", ")
}

// templateChart runs `helm template` for release name in namespace with
// the given helm arguments (--set, -f) and returns what it rendered, or
// helm's error.
func templateChart(t *testing.T, name string, args ...string) (manifest, error) {
	t.Helper()
	return templateChartIn(t, name, namespace, args...)
}

// templateChartIn is templateChart for a release in another namespace.
func templateChartIn(t *testing.T, name, ns string, args ...string) (manifest, error) {
	t.Helper()
	cmdArgs := append([]string{"template", name, chartDir, "--namespace", ns}, args...)
	cmd := exec.Command(helmBinary(t), cmdArgs...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("helm %s: %w: %s", strings.Join(cmdArgs, " "), err, stderr.String())
	}
	return readManifest(t, "helm", &stdout), nil
}

// readManifest reads the objects of a multi-document YAML stream that tool
// (helm, kustomize) wrote.
func readManifest(t *testing.T, tool string, r io.Reader) manifest {
	t.Helper()
	var out manifest
	reader := utilyaml.NewYAMLReader(bufio.NewReader(r))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("reading %s's output: %v", tool, err)
		}
		var meta struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name      string `json:"name"`
				Namespace string `json:"namespace"`
			} `json:"metadata"`
		}
		if err := yaml.Unmarshal(doc, &meta); err != nil {
			t.Fatalf("%s wrote YAML that does not parse: %v\n%s", tool, err, doc)
		}
		if meta.Kind == "" {
			continue // only comments
		}
		source := ""
		if _, rest, ok := strings.Cut(string(doc), "# Source: "); ok {
			source, _, _ = strings.Cut(rest, "\n")
		}
		out = append(out, object{Kind: meta.Kind, Name: meta.Metadata.Name, Namespace: meta.Metadata.Namespace,
			Template: source, doc: doc})
	}
}

// render is templateChart for release "tenant-operator" that must succeed.
func render(t *testing.T, args ...string) manifest {
	t.Helper()
	m, err := templateChart(t, release, args...)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// set turns key=value pairs into helm --set arguments.
func set(pairs ...string) []string {
	var args []string
	for _, p := range pairs {
		args = append(args, "--set", p)
	}
	return args
}

// readDocs reads every YAML document of a file into generic maps.
func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var m map[string]any
		if err := yaml.Unmarshal(doc, &m); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if len(m) > 0 {
			out = append(out, m)
		}
	}
}

// appVersion is the chart's appVersion: the default tag of both images.
func appVersion(t *testing.T) string {
	t.Helper()
	docs := readDocs(t, chartDir+"/Chart.yaml")
	v, _ := docs[0]["appVersion"].(string)
	if v == "" {
		t.Fatal("dist/chart/Chart.yaml has no appVersion")
	}
	return v
}

// managerContainer is the manager's container of the rendered Deployment.
func managerContainer(t *testing.T, m manifest) (appsv1.Deployment, corev1.Container) {
	t.Helper()
	var d appsv1.Deployment
	m.get(t, "Deployment", release, &d)
	for _, c := range d.Spec.Template.Spec.Containers {
		if c.Name == "manager" {
			return d, c
		}
	}
	t.Fatalf("Deployment %s has no container named manager", d.Name)
	return d, corev1.Container{}
}

// canonicalRules makes rules comparable regardless of order: each rule's
// lists sorted, then the rules sorted. Nothing else is changed, so two rule
// sets are equal only when they grant exactly the same rules.
func canonicalRules(t *testing.T, rules []rbacv1.PolicyRule) []string {
	t.Helper()
	out := make([]string, 0, len(rules))
	for _, r := range rules {
		r = *r.DeepCopy()
		for _, list := range [][]string{r.APIGroups, r.Resources, r.Verbs, r.ResourceNames, r.NonResourceURLs} {
			sort.Strings(list)
		}
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	sort.Strings(out)
	return out
}

// configRules are the rules of the one Role or ClusterRole in a config/rbac file.
func configRules(t *testing.T, file string) []rbacv1.PolicyRule {
	t.Helper()
	path := filepath.Join(configDir, "rbac", file)
	var roles []rbacv1.PolicyRule
	found := 0
	for _, doc := range readDocs(t, path) {
		if kind := doc["kind"]; kind != "Role" && kind != "ClusterRole" {
			continue
		}
		found++
		b, err := json.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		var role rbacv1.ClusterRole
		if err := json.Unmarshal(b, &role); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		roles = append(roles, role.Rules...)
	}
	if found != 1 {
		t.Fatalf("%s holds %d roles; the chart renders exactly one from it (dist/chart/templates/rbac): "+
			"teach the chart the others before relying on this check", path, found)
	}
	return roles
}

func TestChartRolesGrantExactlyTheRulesOfConfigRBAC(t *testing.T) {
	m := render(t)
	tests := []struct {
		name, kind, object, configFile string
	}{
		{"the manager's ClusterRole has the rules generated from the reconcilers' markers",
			"ClusterRole", release + "-manager", "role.yaml"},
		{"the leader election Role has config/rbac's rules",
			"Role", release + "-leader-election", "leader_election_role.yaml"},
		{"the metrics auth ClusterRole has config/rbac's rules",
			"ClusterRole", release + "-metrics-auth", "metrics_auth_role.yaml"},
		{"the metrics reader ClusterRole has config/rbac's rules",
			"ClusterRole", release + "-metrics-reader", "metrics_reader_role.yaml"},
		{"the tenant viewer ClusterRole has config/rbac's rules",
			"ClusterRole", release + "-analyticstenant-viewer", "analyticstenant_viewer_role.yaml"},
		{"the tenant editor ClusterRole has config/rbac's rules",
			"ClusterRole", release + "-analyticstenant-editor", "analyticstenant_editor_role.yaml"},
		{"the tenant admin ClusterRole has config/rbac's rules",
			"ClusterRole", release + "-analyticstenant-admin", "analyticstenant_admin_role.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var role rbacv1.ClusterRole // a Role has the same shape
			m.get(t, tt.kind, tt.object, &role)
			got, want := canonicalRules(t, role.Rules), canonicalRules(t, configRules(t, tt.configFile))
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("%s %s's rules differ from config/rbac/%s's (-config +chart); run `make chart-sync`:\n%s",
					tt.kind, tt.object, tt.configFile, diff)
			}
		})
	}
}

// The tenant roles reach people through the standard view, edit and admin
// ClusterRoles, as config/rbac's do: by the aggregation label, one each.
func TestChartTenantRolesAreAggregatedIntoTheStandardOnes(t *testing.T) {
	m := render(t)
	for role, standard := range map[string]string{"viewer": "view", "editor": "edit", "admin": "admin"} {
		var got rbacv1.ClusterRole
		m.get(t, "ClusterRole", release+"-analyticstenant-"+role, &got)
		var aggregated []string
		for k, v := range got.Labels {
			if strings.HasPrefix(k, "rbac.authorization.k8s.io/aggregate-to-") && v == "true" {
				aggregated = append(aggregated, strings.TrimPrefix(k, "rbac.authorization.k8s.io/aggregate-to-"))
			}
		}
		if len(aggregated) != 1 || aggregated[0] != standard {
			t.Errorf("ClusterRole %s is aggregated to %v, want exactly [%s]", got.Name, aggregated, standard)
		}
		for _, doc := range readDocs(t, filepath.Join(configDir, "rbac", "analyticstenant_"+role+"_role.yaml")) {
			labels, _ := doc["metadata"].(map[string]any)["labels"].(map[string]any)
			if labels["rbac.authorization.k8s.io/aggregate-to-"+standard] != "true" {
				t.Errorf("config/rbac/analyticstenant_%s_role.yaml is not aggregated to %s as the chart's is", role, standard)
			}
		}
		for _, r := range got.Rules {
			for _, res := range r.Resources {
				if strings.HasSuffix(res, "/status") && !slices.Equal(r.Verbs, []string{"get"}) {
					t.Errorf("ClusterRole %s grants %v on %s: status is the operator's alone", got.Name, r.Verbs, res)
				}
				if res == "storageregions" && !slices.Equal(r.Verbs, []string{"get", "list", "watch"}) {
					t.Errorf("ClusterRole %s grants %v on storageregions: regions are the platform team's", got.Name, r.Verbs)
				}
			}
		}
	}
}

func TestChartGrantsNoWildcard(t *testing.T) {
	for name, args := range map[string][]string{
		"default values":          nil,
		"every feature turned on": {"-f", allFeatures, "--api-versions", prometheusOperatorKinds},
	} {
		t.Run(name, func(t *testing.T) {
			m := render(t, args...)
			roles := append(m.ofKind("ClusterRole"), m.ofKind("Role")...)
			if len(roles) == 0 {
				t.Fatal("the chart renders no Role or ClusterRole")
			}
			for _, o := range roles {
				var role rbacv1.ClusterRole
				o.decode(t, &role)
				for i, r := range role.Rules {
					for field, values := range map[string][]string{"apiGroups": r.APIGroups, "resources": r.Resources,
						"verbs": r.Verbs, "resourceNames": r.ResourceNames, "nonResourceURLs": r.NonResourceURLs} {
						for _, v := range values {
							if strings.Contains(v, "*") {
								t.Errorf("%s %s rule %d grants the wildcard %s: %q", o.Kind, o.Name, i, field, v)
							}
						}
					}
				}
			}
		})
	}
}

func TestChartBindsItsRolesToTheManagerServiceAccount(t *testing.T) {
	m := render(t)
	var sa corev1.ServiceAccount
	m.get(t, "ServiceAccount", release, &sa)
	if sa.Namespace != namespace {
		t.Errorf("ServiceAccount %s is in namespace %q, want the release namespace %q", sa.Name, sa.Namespace, namespace)
	}
	d, _ := managerContainer(t, m)
	if d.Spec.Template.Spec.ServiceAccountName != sa.Name {
		t.Errorf("the manager runs as ServiceAccount %q, want %q", d.Spec.Template.Spec.ServiceAccountName, sa.Name)
	}
	wantBindings := map[string]string{ // binding kind/name -> role kind
		"ClusterRoleBinding/" + release + "-manager":      "ClusterRole",
		"ClusterRoleBinding/" + release + "-metrics-auth": "ClusterRole",
		"RoleBinding/" + release + "-leader-election":     "Role",
	}
	for key, roleKind := range wantBindings {
		kind, name, _ := strings.Cut(key, "/")
		var b rbacv1.ClusterRoleBinding // a RoleBinding has the same shape
		m.get(t, kind, name, &b)
		if b.RoleRef.Kind != roleKind {
			t.Errorf("%s refers to a %s, want a %s", key, b.RoleRef.Kind, roleKind)
		}
		if _, ok := m.find(b.RoleRef.Kind, b.RoleRef.Name); !ok {
			t.Errorf("%s refers to %s %s, which the chart does not render", key, b.RoleRef.Kind, b.RoleRef.Name)
		}
		want := []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa.Name, Namespace: namespace}}
		if diff := cmp.Diff(want, b.Subjects); diff != "" {
			t.Errorf("%s binds other subjects than the manager's ServiceAccount (-want +got):\n%s", key, diff)
		}
	}
	if n := len(m.ofKind("ClusterRoleBinding")) + len(m.ofKind("RoleBinding")); n != len(wantBindings) {
		t.Errorf("the chart renders %d bindings, want exactly %d: %s", n, len(wantBindings), m)
	}
}

func TestChartCRDsAreTheGeneratedOnes(t *testing.T) {
	bases, err := filepath.Glob(filepath.Join(configDir, "crd", "bases", "*.yaml"))
	if err != nil || len(bases) == 0 {
		t.Fatalf("no CRDs in config/crd/bases (%v)", err)
	}
	m := render(t)
	if got := len(m.ofKind("CustomResourceDefinition")); got != len(bases) {
		t.Errorf("the chart renders %d CRDs, config/crd/bases has %d; run `make chart-sync`", got, len(bases))
	}
	for _, base := range bases {
		want := readDocs(t, base)[0]
		name, _ := want["metadata"].(map[string]any)["name"].(string)
		t.Run(name, func(t *testing.T) {
			o, ok := m.find("CustomResourceDefinition", name)
			if !ok {
				t.Fatalf("the chart does not render CRD %s of %s; run `make chart-sync`", name, base)
			}
			got := o.fields(t)
			meta := got["metadata"].(map[string]any)
			annotations, _ := meta["annotations"].(map[string]any)
			if annotations["helm.sh/resource-policy"] != "keep" {
				t.Errorf("CRD %s lacks helm.sh/resource-policy: keep, so helm uninstall would delete every tenant", name)
			}
			// What the chart adds: its labels and the keep policy. The rest
			// must be config/crd/bases' to the letter.
			delete(annotations, "helm.sh/resource-policy")
			delete(meta, "labels")
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("the chart's CRD %s differs from %s (-config +chart); run `make chart-sync`:\n%s", name, base, diff)
			}
		})
	}
	t.Run("crds.install=false renders no CRD", func(t *testing.T) {
		if crds := render(t, set("crds.install=false")...).ofKind("CustomResourceDefinition"); len(crds) != 0 {
			t.Errorf("crds.install=false still renders %d CRDs", len(crds))
		}
	})
}

// flagValues are the values of flag name among args ("--name=value"; a
// bare "--name" has value "").
func flagValues(args []string, name string) []string {
	var out []string
	for _, a := range args {
		if a == "--"+name {
			out = append(out, "")
		} else if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			out = append(out, v)
		}
	}
	return out
}

func TestChartManagerImagesDefaultToTheAppVersionAndFollowOverrides(t *testing.T) {
	version := appVersion(t)
	tests := []struct {
		name                 string
		args                 []string
		wantIngest, wantOper string
	}{
		{"by default both images are the chart's appVersion", nil,
			"ghcr.io/millimetric/ingest:" + version, "ghcr.io/millimetric/tenant-operator:" + version},
		{"image.tag moves the operator's image only",
			set("image.tag=1.2.3"),
			"ghcr.io/millimetric/ingest:" + version, "ghcr.io/millimetric/tenant-operator:1.2.3"},
		{"ingestImage overrides the ingest image only",
			set("ingestImage.repository=registry.example.com/ingest", "ingestImage.tag=2.0.0"),
			"registry.example.com/ingest:2.0.0", "ghcr.io/millimetric/tenant-operator:" + version},
		{"image.repository moves the manager and the retention jobs' image together",
			set("image.repository=registry.example.com/tenant-operator"),
			"ghcr.io/millimetric/ingest:" + version, "registry.example.com/tenant-operator:" + version},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := managerContainer(t, render(t, tt.args...))
			if got := flagValues(c.Args, "ingest-image"); !slices.Equal(got, []string{tt.wantIngest}) {
				t.Errorf("--ingest-image = %q, want [%q]", got, tt.wantIngest)
			}
			if got := flagValues(c.Args, "operator-image"); !slices.Equal(got, []string{tt.wantOper}) {
				t.Errorf("--operator-image = %q, want [%q]", got, tt.wantOper)
			}
			if c.Image != tt.wantOper {
				t.Errorf("the manager runs %q, want the image it gives the retention jobs, %q", c.Image, tt.wantOper)
			}
		})
	}
}

func TestChartManagerFlagsFollowTheValues(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		want   map[string]string // flag -> its one value ("" for a bare flag)
		absent []string
	}{
		{"by default the manager elects a leader, reads admin Secrets from the release namespace and refuses insecure storage",
			nil,
			map[string]string{"leader-elect": "", "allowed-secret-namespace": namespace,
				"health-probe-bind-address": ":8081", "metrics-bind-address": ":8443", "max-concurrent-reconciles": "4",
				"max-concurrent-tenant-rollouts": "10", "zap-log-level": "info", "zap-encoder": "json"},
			[]string{"allow-insecure-storage", "tenant-selector", "leader-election-id", "tenant-namespace-prefix",
				"edge-namespace-selector", "dns-namespace-selector", "dns-pod-selector", "ingest-trusted-proxies",
				"ingest-cf-connecting-ip", "ingest-gateway", "ingest-domain", "ingest-gateway-namespace-selector",
				"ingest-geoip-image", "ingest-geoip-file", "ingest-geoip-mount", "tenant-image-pull-secret"}},
		{"routing, its namespace selector, CF-Connecting-IP and the GeoIP database are passed on",
			set("tenants.ingestGateway=edge/public/https", "tenants.ingestDomain=ingest.example.com",
				"tenants.ingestTrustedProxies={10.0.0.0/8}", "tenants.ingestCFConnectingIP=true",
				"tenants.network.gatewayNamespaceSelector=kubernetes.io/metadata.name=traefik",
				"tenants.geoip.image=registry.example.com/geoip:1", "tenants.geoip.file=/city.mmdb", "tenants.geoip.mount=copy"),
			map[string]string{"ingest-gateway": "edge/public/https", "ingest-domain": "ingest.example.com",
				"ingest-cf-connecting-ip": "", "ingest-gateway-namespace-selector": "kubernetes.io/metadata.name=traefik",
				"ingest-geoip-image": "registry.example.com/geoip:1", "ingest-geoip-file": "/city.mmdb", "ingest-geoip-mount": "copy"}, nil},
		{"the tenants' pull secrets and rollout limit are passed on",
			set("tenants.imagePullSecrets={ghcr,mirror}", "tenants.maxConcurrentRollouts=0"),
			map[string]string{"tenant-image-pull-secret": "ghcr,mirror", "max-concurrent-tenant-rollouts": "0"}, nil},
		{"storage.allowInsecure passes --allow-insecure-storage",
			set("storage.allowInsecure=true"),
			map[string]string{"allow-insecure-storage": ""}, nil},
		{"storage.allowedSecretNamespace replaces the release namespace",
			set("storage.allowedSecretNamespace=db-admins"),
			map[string]string{"allowed-secret-namespace": "db-admins"}, nil},
		{"a shard reconciles only its tenants, under a Lease of its own",
			set("tenants.selector=millimetric.ai/shard=a"),
			map[string]string{"tenant-selector": "millimetric.ai/shard=a",
				"leader-election-id": release + ".shard.analytics.millimetric.ai"}, nil},
		{"leaderElection.id names the Lease",
			set("tenants.selector=millimetric.ai/shard=b", "leaderElection.id=shard-b"),
			map[string]string{"tenant-selector": "millimetric.ai/shard=b", "leader-election-id": "shard-b"}, nil},
		{"the tenants' network selectors, namespace prefix, trusted proxies and concurrency are passed on",
			set("tenants.network.edgeNamespaceSelector=kubernetes.io/metadata.name in (edge\\,ingress)",
				"tenants.network.dnsNamespaceSelector=kubernetes.io/metadata.name=dns",
				"tenants.network.dnsPodSelector=k8s-app=coredns",
				"tenants.namespacePrefix=analytics-",
				"tenants.ingestTrustedProxies={10.0.0.0/8,fd00::/8}",
				"tenants.maxConcurrentReconciles=16"),
			map[string]string{"edge-namespace-selector": "kubernetes.io/metadata.name in (edge,ingress)",
				"dns-namespace-selector": "kubernetes.io/metadata.name=dns", "dns-pod-selector": "k8s-app=coredns",
				"tenant-namespace-prefix": "analytics-", "ingest-trusted-proxies": "10.0.0.0/8,fd00::/8",
				"max-concurrent-reconciles": "16"}, nil},
		{"metrics.enabled=false turns the metrics endpoint off",
			set("metrics.enabled=false"),
			map[string]string{"metrics-bind-address": "0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, c := managerContainer(t, render(t, tt.args...))
			for flag, want := range tt.want {
				if got := flagValues(c.Args, flag); !slices.Equal(got, []string{want}) {
					t.Errorf("--%s = %q, want [%q]; args: %q", flag, got, want, c.Args)
				}
			}
			for _, flag := range tt.absent {
				if got := flagValues(c.Args, flag); len(got) != 0 {
					t.Errorf("--%s is passed (%q), want it absent", flag, got)
				}
			}
		})
	}
}

func TestChartShardsOfDifferentReleasesHoldDifferentLeases(t *testing.T) {
	lease := func(name string) string {
		m, err := templateChart(t, name, set("tenants.selector=shard="+name)...)
		if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		m.get(t, "Deployment", name+"-tenant-operator", &d)
		got := flagValues(d.Spec.Template.Spec.Containers[0].Args, "leader-election-id")
		if len(got) != 1 {
			t.Fatalf("release %s passes --leader-election-id %q, want one", name, got)
		}
		return got[0]
	}
	a, b := lease("a"), lease("b")
	if a == b || a == defaultLeaseName || b == defaultLeaseName {
		t.Errorf("shards a and b lease %q and %q: they must differ from each other and from an unsharded release's %q",
			a, b, defaultLeaseName)
	}
}

// managerFlags are the flags cmd/main.go defines (flag.XVar and flag.Func),
// read from its source, and those of controller-runtime's
// zap.Options.BindFlags.
func managerFlags(t *testing.T) map[string]bool {
	t.Helper()
	src, err := os.ReadFile("../../cmd/main.go")
	if err != nil {
		t.Fatal(err)
	}
	flags := map[string]bool{"zap-devel": true, "zap-encoder": true, "zap-log-level": true,
		"zap-stacktrace-level": true, "zap-time-encoding": true}
	for _, m := range regexp.MustCompile(`flag\.(?:\w+Var\(&\w+,\s*|Func\()"([a-z0-9-]+)"`).FindAllSubmatch(src, -1) {
		flags[string(m[1])] = true
	}
	if !flags["ingest-image"] || !flags["leader-elect"] {
		t.Fatalf("found no flag definitions in cmd/main.go (%v): update managerFlags", flags)
	}
	return flags
}

// unknownFlags are the args that name no flag of the manager.
func unknownFlags(args []string, known map[string]bool) []string {
	var out []string
	for _, a := range args {
		name, _, _ := strings.Cut(strings.TrimPrefix(a, "--"), "=")
		if !strings.HasPrefix(a, "--") || !known[name] {
			out = append(out, a)
		}
	}
	return out
}

func TestChartPassesOnlyFlagsTheManagerDefines(t *testing.T) {
	known := managerFlags(t)
	for name, args := range map[string][]string{
		"default values":          nil,
		"every feature turned on": append([]string{"-f", allFeatures}, set("storage.allowInsecure=true")...),
	} {
		t.Run(name, func(t *testing.T) {
			_, c := managerContainer(t, render(t, args...))
			if bad := unknownFlags(c.Args, known); len(bad) > 0 {
				t.Errorf("the manager would exit on flags cmd/main.go does not define: %q", bad)
			}
		})
	}
	t.Run("a misspelt flag is caught", func(t *testing.T) {
		_, c := managerContainer(t, render(t, set("extraArgs={--ingest-imge=x}")...))
		if bad := unknownFlags(c.Args, known); !slices.Equal(bad, []string{"--ingest-imge=x"}) {
			t.Errorf("unknownFlags found %q, want the misspelt --ingest-imge=x", bad)
		}
	})
}

func TestChartManagerRunsRestricted(t *testing.T) {
	for name, args := range map[string][]string{
		"default values":          nil,
		"every feature turned on": {"-f", allFeatures, "--api-versions", prometheusOperatorKinds},
	} {
		t.Run(name, func(t *testing.T) {
			d, c := managerContainer(t, render(t, args...))
			pod := d.Spec.Template.Spec
			if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
				psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("the pod's securityContext %+v must set runAsNonRoot and seccomp RuntimeDefault", psc)
			}
			sc := c.SecurityContext
			if sc == nil {
				t.Fatal("the manager container has no securityContext")
			}
			if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
				t.Error("the manager may escalate privileges: allowPrivilegeEscalation must be false")
			}
			if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
				t.Error("the manager's root filesystem is writable: readOnlyRootFilesystem must be true")
			}
			if sc.Privileged != nil && *sc.Privileged {
				t.Error("the manager is privileged")
			}
			if sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0 {
				t.Errorf("the manager's capabilities %+v: want drop [ALL] and nothing added", sc.Capabilities)
			}
			evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
			if err != nil {
				t.Fatal(err)
			}
			lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
			if r := policy.AggregateCheckResults(evaluator.EvaluatePod(lv, &d.Spec.Template.ObjectMeta, &pod)); !r.Allowed {
				t.Errorf("Pod Security restricted refuses the manager's pods: %s", r.ForbiddenDetail())
			}
		})
	}
}

func TestChartManagerProbesEnvironmentAndResources(t *testing.T) {
	_, c := managerContainer(t, render(t))
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	for probeName, tt := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		p := tt.probe
		if p == nil || p.HTTPGet == nil {
			t.Errorf("the manager has no HTTP %s probe", probeName)
			continue
		}
		port := p.HTTPGet.Port.IntVal
		if p.HTTPGet.Port.StrVal != "" {
			port = ports[p.HTTPGet.Port.StrVal]
		}
		if p.HTTPGet.Path != tt.path || port != 8081 {
			t.Errorf("the %s probe asks %s on port %d, want %s on 8081", probeName, p.HTTPGet.Path, port, tt.path)
		}
	}
	var podNamespace *corev1.EnvVar
	for i := range c.Env {
		if c.Env[i].Name == "POD_NAMESPACE" {
			podNamespace = &c.Env[i]
		}
	}
	if podNamespace == nil || podNamespace.ValueFrom == nil || podNamespace.ValueFrom.FieldRef == nil ||
		podNamespace.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE must come from the pod's metadata.namespace, got %+v", podNamespace)
	}
	want := corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("128Mi")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
	}
	if !equalResources(want, c.Resources) {
		t.Errorf("the manager's resources are %v, want %v by default", c.Resources, want)
	}
}

func equalResources(a, b corev1.ResourceRequirements) bool {
	eq := func(x, y corev1.ResourceList) bool {
		if len(x) != len(y) {
			return false
		}
		for k, v := range x {
			if w, ok := y[k]; !ok || v.Cmp(w) != 0 {
				return false
			}
		}
		return true
	}
	return eq(a.Requests, b.Requests) && eq(a.Limits, b.Limits)
}

func TestChartManagerSurvivesANodeGoingAway(t *testing.T) {
	m := render(t)
	d, _ := managerContainer(t, m)
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
		t.Errorf("the manager has %v replicas by default, want 2", d.Spec.Replicas)
	}
	podLabels := labels.Set(d.Spec.Template.Labels)
	selects := func(what string, sel *metav1.LabelSelector) {
		t.Helper()
		s, err := metav1.LabelSelectorAsSelector(sel)
		if err != nil || s.Empty() || !s.Matches(podLabels) {
			t.Errorf("%s's selector %v does not select the manager's pods %v (%v)", what, sel, podLabels, err)
		}
	}

	var pdb policyv1.PodDisruptionBudget
	m.get(t, "PodDisruptionBudget", release, &pdb)
	if pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() != 1 || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("the PodDisruptionBudget keeps minAvailable %v, maxUnavailable %v; want minAvailable 1",
			pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
	selects("the PodDisruptionBudget", pdb.Spec.Selector)

	aff := d.Spec.Template.Spec.Affinity
	if aff == nil || aff.PodAntiAffinity == nil || len(aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution) != 1 {
		t.Fatalf("the manager's pods prefer no spreading over nodes: affinity %+v", aff)
	}
	term := aff.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[0].PodAffinityTerm
	if term.TopologyKey != corev1.LabelHostname {
		t.Errorf("the anti-affinity spreads over %q, want nodes (%s)", term.TopologyKey, corev1.LabelHostname)
	}
	selects("the pod anti-affinity", term.LabelSelector)

	t.Run("one replica has no PodDisruptionBudget, which would block every drain", func(t *testing.T) {
		if pdbs := render(t, set("replicaCount=1")...).ofKind("PodDisruptionBudget"); len(pdbs) != 0 {
			t.Errorf("replicaCount=1 renders %d PodDisruptionBudgets", len(pdbs))
		}
	})
	t.Run("podAntiAffinity=required puts each replica on its own node", func(t *testing.T) {
		d, _ := managerContainer(t, render(t, set("podAntiAffinity=required")...))
		aa := d.Spec.Template.Spec.Affinity.PodAntiAffinity
		if len(aa.RequiredDuringSchedulingIgnoredDuringExecution) != 1 ||
			aa.RequiredDuringSchedulingIgnoredDuringExecution[0].TopologyKey != corev1.LabelHostname {
			t.Errorf("podAntiAffinity=required renders %+v", aa)
		}
	})
	t.Run("more than one replica without leader election is refused", func(t *testing.T) {
		if _, err := templateChart(t, release, set("leaderElection.enabled=false")...); err == nil {
			t.Error("helm rendered two replicas without leader election: both would reconcile every tenant")
		}
	})
}

func TestChartRefusesMisspeltValues(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"a misspelt top-level value", set("replicaCont=3")},
		{"a misspelt nested value", set("storage.allowInsecur=true")},
		{"a misspelt feature switch", set("metrics.serviceMonitor.enabeld=true")},
		{"a value outside its enumeration", set("podAntiAffinity=sometimes")},
		{"a value of the wrong type", set("replicaCount=two")},
		{"the misspelt values file make chart-check uses", []string{"-f", "testdata/misspelt-values.yaml"}},
	}
	for _, tt := range tests {
		t.Run(tt.name+" is refused", func(t *testing.T) {
			_, err := templateChart(t, release, tt.args...)
			if err == nil {
				t.Fatalf("helm accepted %q: values.schema.json must refuse it", tt.args)
			}
			if !strings.Contains(err.Error(), "schema") {
				t.Errorf("helm refused %q, but not for its schema: %v", tt.args, err)
			}
		})
	}
	t.Run("the same values spelt right are accepted", func(t *testing.T) {
		render(t, set("replicaCount=3", "storage.allowInsecure=true", "metrics.serviceMonitor.enabled=true",
			"podAntiAffinity=none")...)
	})
}

func TestChartMetrics(t *testing.T) {
	m := render(t)
	var svc corev1.Service
	m.get(t, "Service", release+"-metrics", &svc)
	if len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != 8443 || svc.Spec.Ports[0].Name != "https" ||
		svc.Spec.Ports[0].TargetPort.StrVal != "metrics" {
		t.Errorf("the metrics Service's ports are %+v, want https 8443 to the container's metrics port", svc.Spec.Ports)
	}
	d, c := managerContainer(t, m)
	if !labels.SelectorFromSet(svc.Spec.Selector).Matches(labels.Set(d.Spec.Template.Labels)) {
		t.Errorf("the metrics Service selects %v, not the manager's pods %v", svc.Spec.Selector, d.Spec.Template.Labels)
	}
	if !slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == "metrics" && p.ContainerPort == 8443 }) {
		t.Errorf("the manager has no port metrics 8443: %+v", c.Ports)
	}
	for _, kind := range []string{"ServiceMonitor", "PodMonitor", "PrometheusRule"} {
		if n := len(m.ofKind(kind)); n != 0 {
			t.Errorf("the default values render %d %ss; they are off by default", n, kind)
		}
	}

	monitoring := set("metrics.serviceMonitor.enabled=true", "metrics.prometheusRule.enabled=true", "metrics.ingestPodMonitor.enabled=true")
	t.Run("without the Prometheus Operator's CRDs in the cluster no monitoring.coreos.com object is rendered", func(t *testing.T) {
		// helm install would otherwise fail on such a cluster; NOTES.txt
		// says what was left out.
		for _, o := range render(t, monitoring...) {
			if o.fields(t)["apiVersion"] == "monitoring.coreos.com/v1" {
				t.Errorf("%s %s is rendered for a cluster that does not serve it", o.Kind, o.Name)
			}
		}
	})
	on := render(t, append(monitoring, "--api-versions", prometheusOperatorKinds)...)
	t.Run("metrics.ingestPodMonitor.enabled scrapes every tenant's ingest pods on their metrics port", func(t *testing.T) {
		o, ok := on.find("PodMonitor", release+"-ingest")
		if !ok {
			t.Fatalf("no PodMonitor: %s", on)
		}
		spec := o.fields(t)["spec"].(map[string]any)
		endpoint := spec["podMetricsEndpoints"].([]any)[0].(map[string]any)
		if endpoint["port"] != rendering.IngestMetricsPortName || endpoint["path"] != "/metrics" {
			t.Errorf("the PodMonitor's endpoint is %v, want /metrics on port %s", endpoint, rendering.IngestMetricsPortName)
		}
		if any, _ := spec["namespaceSelector"].(map[string]any)["any"].(bool); !any {
			t.Errorf("the PodMonitor looks in %v; tenants are in namespaces of their own", spec["namespaceSelector"])
		}
		// The pods as the operator renders them.
		tenant := rendering.Tenant{Object: &v1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"}},
			Spec: (&v1alpha1.AnalyticsTenantSpec{}).Effective(), Settings: rendering.DefaultSettings()}
		podLabels := rendering.IngestDeployment(tenant).Spec.Template.Labels
		matchLabels := spec["selector"].(map[string]any)["matchLabels"].(map[string]any)
		if len(matchLabels) == 0 {
			t.Fatal("the PodMonitor selects every pod")
		}
		for k, v := range matchLabels {
			if podLabels[k] != v {
				t.Errorf("the PodMonitor selects %s=%v; ingest pods have %q", k, v, podLabels[k])
			}
		}
		retention := labels.Set(rendering.RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Labels)
		selector := labels.Set{}
		for k, v := range matchLabels {
			selector[k] = v.(string)
		}
		if labels.SelectorFromSet(selector).Matches(retention) {
			t.Error("the PodMonitor also selects the retention pods")
		}
	})
	t.Run("metrics.serviceMonitor.enabled scrapes the metrics Service over HTTPS", func(t *testing.T) {
		o, ok := on.find("ServiceMonitor", release)
		if !ok {
			t.Fatalf("no ServiceMonitor: %s", on)
		}
		spec := o.fields(t)["spec"].(map[string]any)
		endpoint := spec["endpoints"].([]any)[0].(map[string]any)
		if endpoint["port"] != "https" || endpoint["scheme"] != "https" || endpoint["path"] != "/metrics" {
			t.Errorf("the ServiceMonitor's endpoint is %v, want https /metrics on port https", endpoint)
		}
		// The alerts find the operator's scrape job by "tenant-operator"
		// (files/alerts/rules.yaml, OperatorDown): the job is the Service's
		// app.kubernetes.io/name, whatever the release is called.
		if spec["jobLabel"] != "app.kubernetes.io/name" || !strings.Contains(svc.Labels["app.kubernetes.io/name"], "tenant-operator") {
			t.Errorf("the ServiceMonitor's jobLabel is %v and the Service's app.kubernetes.io/name %q; "+
				"want the job named after that label, containing tenant-operator", spec["jobLabel"], svc.Labels["app.kubernetes.io/name"])
		}
		matchLabels := spec["selector"].(map[string]any)["matchLabels"].(map[string]any)
		for k, v := range matchLabels {
			if svc.Labels[k] != v {
				t.Errorf("the ServiceMonitor selects %s=%v; the metrics Service has %q", k, v, svc.Labels[k])
			}
		}
	})
	t.Run("metrics.prometheusRule.enabled renders the chart's alert rules when it has them", func(t *testing.T) {
		rules, err := os.ReadFile(chartDir + "/files/alerts/rules.yaml")
		o, rendered := on.find("PrometheusRule", release)
		switch {
		case errors.Is(err, os.ErrNotExist):
			if rendered {
				t.Error("a PrometheusRule is rendered although the chart has no files/alerts/rules.yaml")
			}
		case err != nil:
			t.Fatal(err)
		case !rendered:
			t.Fatalf("the chart has files/alerts/rules.yaml but renders no PrometheusRule: %s", on)
		default:
			var file map[string]any
			if err := yaml.Unmarshal(rules, &file); err != nil {
				t.Fatal(err)
			}
			got := o.fields(t)["spec"].(map[string]any)["groups"]
			if diff := cmp.Diff(file["groups"], got); diff != "" {
				t.Errorf("the PrometheusRule's groups differ from files/alerts/rules.yaml's (-file +rendered):\n%s", diff)
			}
		}
	})
}

func TestChartObjectsAreWellFormed(t *testing.T) {
	types := map[string]func() any{
		"Deployment":          func() any { return &appsv1.Deployment{} },
		"Service":             func() any { return &corev1.Service{} },
		"ServiceAccount":      func() any { return &corev1.ServiceAccount{} },
		"PodDisruptionBudget": func() any { return &policyv1.PodDisruptionBudget{} },
		"ClusterRole":         func() any { return &rbacv1.ClusterRole{} },
		"Role":                func() any { return &rbacv1.Role{} },
		"ClusterRoleBinding":  func() any { return &rbacv1.ClusterRoleBinding{} },
		"RoleBinding":         func() any { return &rbacv1.RoleBinding{} },
		"ValidatingAdmissionPolicy": func() any {
			return &admissionregistrationv1.ValidatingAdmissionPolicy{}
		},
		"ValidatingAdmissionPolicyBinding": func() any {
			return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{}
		},
	}
	clusterScoped := map[string]bool{"ClusterRole": true, "ClusterRoleBinding": true, "CustomResourceDefinition": true,
		"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true}
	for name, args := range map[string][]string{
		"default values":          nil,
		"every feature turned on": {"-f", allFeatures, "--api-versions", prometheusOperatorKinds},
	} {
		t.Run(name, func(t *testing.T) {
			for _, o := range render(t, args...) {
				if newObject, ok := types[o.Kind]; ok {
					o.decode(t, newObject())
				}
				if clusterScoped[o.Kind] != (o.Namespace == "") {
					t.Errorf("%s %s has namespace %q", o.Kind, o.Name, o.Namespace)
				} else if o.Namespace != "" && o.Namespace != namespace {
					t.Errorf("%s %s is in namespace %q, not the release's", o.Kind, o.Name, o.Namespace)
				}
				var meta struct {
					Metadata metav1.ObjectMeta `json:"metadata"`
				}
				if err := yaml.Unmarshal(o.doc, &meta); err != nil {
					t.Fatal(err)
				}
				if meta.Metadata.Labels["app.kubernetes.io/instance"] != release {
					t.Errorf("%s %s lacks the release's labels: %v", o.Kind, o.Name, meta.Metadata.Labels)
				}
			}
		})
	}
}

// valuePaths are the dotted paths of values.yaml's settings: a map is
// descended into while the schema lists its keys and refuses others, so
// free-form maps (resources.requests, podLabels, ...) are one setting.
func valuePaths(prefix string, values map[string]any, schema map[string]any) []string {
	var out []string
	props, _ := schema["properties"].(map[string]any)
	for key, value := range values {
		path := strings.TrimPrefix(prefix+"."+key, ".")
		sub, _ := props[key].(map[string]any)
		nested, isMap := value.(map[string]any)
		if _, listed := sub["properties"]; isMap && len(nested) > 0 && listed && sub["additionalProperties"] == false {
			out = append(out, valuePaths(path, nested, sub)...)
			continue
		}
		out = append(out, path)
	}
	sort.Strings(out)
	return out
}

func TestChartValuesAreAllDocumented(t *testing.T) {
	values := readDocs(t, chartDir+"/values.yaml")[0]
	schemaJSON, err := os.ReadFile(chartDir + "/values.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema map[string]any
	if err := json.Unmarshal(schemaJSON, &schema); err != nil {
		t.Fatalf("values.schema.json: %v", err)
	}
	if schema["additionalProperties"] != false {
		t.Error("values.schema.json lets unknown top-level values through")
	}
	readme, err := os.ReadFile(chartDir + "/README.md")
	if err != nil {
		t.Fatal(err)
	}
	paths := valuePaths("", values, schema)
	if len(paths) < 20 {
		t.Fatalf("found only %d values in values.yaml: %q", len(paths), paths)
	}
	for _, path := range paths {
		if !bytes.Contains(readme, []byte("| `"+path+"` |")) {
			t.Errorf("value %s has no row in dist/chart/README.md's values table", path)
		}
	}
}
