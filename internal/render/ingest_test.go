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
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
)

func TestIngestScale(t *testing.T) {
	tests := []struct {
		name         string
		tenant       Tenant
		wantReplicas *int32
		wantHPA      *[2]int32 // min, max; nil: no HPA
		wantPDB      bool
	}{
		{
			name:         "a tenant with default settings runs two pods, protected by a disruption budget",
			tenant:       tenantWith(),
			wantReplicas: ptr.To[int32](2),
			wantPDB:      true,
		},
		{
			name:         "a tenant with one replica runs one pod and gets no disruption budget",
			tenant:       tenantWith(replicas(1)),
			wantReplicas: ptr.To[int32](1),
		},
		{
			name:         "a tenant with five replicas runs five pods, protected by a disruption budget",
			tenant:       tenantWith(replicas(5)),
			wantReplicas: ptr.To[int32](5),
			wantPDB:      true,
		},
		{
			name:         "a suspended tenant runs no pods and gets no disruption budget",
			tenant:       tenantWith(suspended),
			wantReplicas: ptr.To[int32](0),
		},
		{
			name:    "an autoscaled tenant leaves the replicas to its autoscaler",
			tenant:  tenantWith(autoscaling(2, 20)),
			wantHPA: &[2]int32{2, 20},
			wantPDB: true,
		},
		{
			name:    "an autoscaled tenant with a floor of one gets no disruption budget",
			tenant:  tenantWith(autoscaling(1, 5)),
			wantHPA: &[2]int32{1, 5},
		},
		{
			name: "an autoscaled tenant with a floor of one but more replicas asked gets a disruption budget",
			tenant: tenantWith(autoscaling(1, 5), func(a *v1alpha1.AnalyticsTenant) {
				a.Spec.Ingest.Replicas = ptr.To[int32](3)
			}),
			wantHPA: &[2]int32{1, 5},
			wantPDB: true,
		},
		{
			name:         "a suspended autoscaled tenant runs no pods and has no autoscaler or disruption budget",
			tenant:       tenantWith(autoscaling(2, 20), suspended),
			wantReplicas: ptr.To[int32](0),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := IngestDeployment(tt.tenant)
			if diff := cmp.Diff(tt.wantReplicas, d.Spec.Replicas); diff != "" {
				t.Errorf("Deployment replicas (-want +got):\n%s", diff)
			}
			raw, _ := json.Marshal(d.Spec)
			var spec map[string]any
			_ = json.Unmarshal(raw, &spec)
			if _, sent := spec["replicas"]; sent != (tt.wantReplicas != nil) {
				t.Errorf("replicas sent on apply = %v, want %v", sent, tt.wantReplicas != nil)
			}

			hpa := IngestHPA(tt.tenant)
			switch {
			case tt.wantHPA == nil && hpa != nil:
				t.Errorf("got an HPA, want none")
			case tt.wantHPA != nil && hpa == nil:
				t.Errorf("got no HPA, want one")
			case hpa != nil:
				if *hpa.Spec.MinReplicas != tt.wantHPA[0] || hpa.Spec.MaxReplicas != tt.wantHPA[1] {
					t.Errorf("HPA bounds = %d..%d, want %d..%d", *hpa.Spec.MinReplicas, hpa.Spec.MaxReplicas, tt.wantHPA[0], tt.wantHPA[1])
				}
				wantTarget := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: IngestName}
				if hpa.Spec.ScaleTargetRef != wantTarget {
					t.Errorf("HPA scales %+v, want %+v", hpa.Spec.ScaleTargetRef, wantTarget)
				}
				if len(hpa.Spec.Metrics) != 1 || hpa.Spec.Metrics[0].Resource == nil ||
					hpa.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
					hpa.Spec.Metrics[0].Resource.Target.Type != autoscalingv2.UtilizationMetricType ||
					*hpa.Spec.Metrics[0].Resource.Target.AverageUtilization != v1alpha1.DefaultTargetCPUUtilizationPercentage {
					t.Errorf("HPA metrics = %+v, want CPU utilization at %d%%", hpa.Spec.Metrics, v1alpha1.DefaultTargetCPUUtilizationPercentage)
				}
			}

			pdb := IngestPDB(tt.tenant)
			if (pdb != nil) != tt.wantPDB {
				t.Fatalf("got a PDB: %v, want one: %v", pdb != nil, tt.wantPDB)
			}
			if pdb != nil {
				if diff := cmp.Diff(ptr.To(intstr.FromInt32(1)), pdb.Spec.MaxUnavailable); diff != "" {
					t.Errorf("PDB maxUnavailable (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(d.Spec.Selector, pdb.Spec.Selector); diff != "" {
					t.Errorf("PDB selects other pods than the Deployment (-deployment +pdb):\n%s", diff)
				}
			}
		})
	}
}

func TestIngestDeployment(t *testing.T) {
	tenant := tenantWith()
	d := IngestDeployment(tenant)
	pod := d.Spec.Template

	wantSelector := map[string]string{LabelTenant: "acme", LabelComponent: ComponentIngest}
	if diff := cmp.Diff(wantSelector, d.Spec.Selector.MatchLabels); diff != "" || len(d.Spec.Selector.MatchExpressions) > 0 {
		t.Errorf("the selector is not the minimal tenant and component (-want +got):\n%s", diff)
	}
	for k, v := range d.Spec.Selector.MatchLabels {
		if pod.Labels[k] != v {
			t.Errorf("the pod template does not match the selector on %s", k)
		}
	}
	for k, v := range Labels(tenant) {
		if pod.Labels[k] != v {
			t.Errorf("the pod template lacks label %s=%s", k, v)
		}
	}
	if pod.Annotations[AnnotationConfigHash] != ConfigHash(IngestConfigMap(tenant)) {
		t.Error("the pod template does not carry the ConfigMap's hash")
	}
	wantStrategy := appsv1.DeploymentStrategy{
		Type: appsv1.RollingUpdateDeploymentStrategyType,
		RollingUpdate: &appsv1.RollingUpdateDeployment{
			MaxUnavailable: ptr.To(intstr.FromInt32(0)), MaxSurge: ptr.To(intstr.FromInt32(1)),
		},
	}
	if diff := cmp.Diff(wantStrategy, d.Spec.Strategy); diff != "" {
		t.Errorf("strategy (-want +got):\n%s", diff)
	}

	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	if c.Name != "ingest" || c.Image != DefaultIngestImage {
		t.Errorf("container %s runs %s, want ingest running %s", c.Name, c.Image, DefaultIngestImage)
	}
	if diff := cmp.Diff(ingestArgs, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
	if len(c.Ports) != 2 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != IngestPort ||
		c.Ports[1].Name != "metrics" || c.Ports[1].ContainerPort != IngestMetricsPort {
		t.Errorf("ports = %+v, want http on %d and metrics on %d", c.Ports, IngestPort, IngestMetricsPort)
	}
	// The probes are on the metrics port: the public one, which the edge
	// forwards, serves none.
	for probe, wantPath := range map[*corev1.Probe]string{c.StartupProbe: "/healthz", c.ReadinessProbe: "/readyz", c.LivenessProbe: "/healthz"} {
		if probe == nil || probe.HTTPGet == nil || probe.HTTPGet.Path != wantPath || probe.HTTPGet.Port != intstr.FromString("metrics") {
			t.Errorf("probe %+v, want GET %s on metrics", probe, wantPath)
		}
	}
	if diff := cmp.Diff(tenant.Spec.Resources, c.Resources); diff != "" {
		t.Errorf("resources are not the effective spec's (-want +got):\n%s", diff)
	}
	mounts := map[string]corev1.VolumeMount{}
	for _, m := range c.VolumeMounts {
		mounts[m.MountPath] = m
	}
	if m, ok := mounts["/etc/millimetric"]; !ok || !m.ReadOnly {
		t.Errorf("the config is not mounted read-only at /etc/millimetric: %+v", c.VolumeMounts)
	}
	if _, ok := mounts["/tmp"]; !ok {
		t.Errorf("no writable /tmp: %+v", c.VolumeMounts)
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Spec.Volumes {
		volumes[v.Name] = v
	}
	if v := volumes[mounts["/etc/millimetric"].Name]; v.ConfigMap == nil || v.ConfigMap.Name != IngestConfigName {
		t.Errorf("/etc/millimetric is not the %s ConfigMap: %+v", IngestConfigName, v)
	}
	if v := volumes[mounts["/tmp"].Name]; v.EmptyDir == nil {
		t.Errorf("/tmp is not an emptyDir: %+v", v)
	}

	if len(pod.Spec.TopologySpreadConstraints) != 2 {
		t.Fatalf("topology spread constraints = %+v, want zone and host name", pod.Spec.TopologySpreadConstraints)
	}
	for i, key := range []string{corev1.LabelTopologyZone, corev1.LabelHostname} {
		tsc := pod.Spec.TopologySpreadConstraints[i]
		if tsc.TopologyKey != key || tsc.MaxSkew != 1 || tsc.WhenUnsatisfiable != corev1.ScheduleAnyway ||
			!cmp.Equal(tsc.LabelSelector, d.Spec.Selector) {
			t.Errorf("spread constraint %d = %+v, want maxSkew 1 over %s, ScheduleAnyway, the pod selector", i, tsc, key)
		}
	}
}

func TestIngestImage(t *testing.T) {
	tests := []struct {
		name   string
		tenant Tenant
		want   string
	}{
		{"a tenant without an image runs the operator's default, the Dockerfile's ingest target", tenantWith(), "ghcr.io/millimetric/ingest:0.1.0"},
		{"a tenant with an image runs it", tenantWith(func(a *v1alpha1.AnalyticsTenant) {
			ingest(a).Image = "registry.example.com/ingest:2.0.0"
		}), "registry.example.com/ingest:2.0.0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IngestDeployment(tt.tenant).Spec.Template.Spec.Containers[0].Image; got != tt.want {
				t.Errorf("image = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStorageEnvironment checks the pod contract: each workload reads the
// credentials of its own role, from its own Secret, and no other.
func TestStorageEnvironment(t *testing.T) {
	want := map[string]string{
		"PGHOST": "host", "PGPORT": "port", "PGDATABASE": "database", "PGUSER": "username",
		"PGPASSWORD": "password", "PGSSLMODE": "sslmode", "PGSCHEMA": "schema",
	}
	tests := []struct {
		name        string
		storageCA   bool
		wantRootCrt bool
	}{
		{"without a private CA the containers trust the system's roots", false, false},
		{"with a private CA the containers trust the mounted ca.crt only", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith()
			tenant.StorageCA = tt.storageCA
			pods := map[string]struct {
				spec   corev1.PodSpec
				secret *corev1.Secret
			}{
				"ingest":    {IngestDeployment(tenant).Spec.Template.Spec, IngestSecret(tenant, testIngestCredentials(), testVisitorKey)},
				"retention": {RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Spec, StorageSecret(tenant, testCredentials())},
			}
			for what, pod := range pods {
				spec, secret := pod.spec, pod.secret
				c := spec.Containers[0]
				got := map[string]string{}
				var rootCert string
				for _, e := range c.Env {
					switch {
					case e.Name == EnvPGSSLRootCert:
						rootCert = e.Value
					case e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil || e.Value != "":
						t.Errorf("%s: %s is not read from a Secret", what, e.Name)
					case e.ValueFrom.SecretKeyRef.Name != secret.Name:
						t.Errorf("%s: %s is read from Secret %s, want only %s", what, e.Name, e.ValueFrom.SecretKeyRef.Name, secret.Name)
					default:
						got[e.Name] = e.ValueFrom.SecretKeyRef.Key
						if _, ok := secret.Data[e.ValueFrom.SecretKeyRef.Key]; !ok {
							t.Errorf("%s: %s reads key %s, which Secret %s does not have", what, e.Name, e.ValueFrom.SecretKeyRef.Key, secret.Name)
						}
					}
				}
				wantEnv := maps.Clone(want)
				if what == "ingest" {
					// Only ingest reads the visitor key.
					wantEnv[EnvVisitorKey] = SecretKeyVisitorKey
				}
				if diff := cmp.Diff(wantEnv, got); diff != "" {
					t.Errorf("%s: environment from the Secret (-want +got):\n%s", what, diff)
				}
				if (rootCert != "") != tt.wantRootCrt {
					t.Errorf("%s: PGSSLROOTCERT = %q, want it set: %v", what, rootCert, tt.wantRootCrt)
				}
				if rootCert != "" && rootCert != StorageCADir+"/ca.crt" {
					t.Errorf("%s: PGSSLROOTCERT = %q, want %s/ca.crt", what, rootCert, StorageCADir)
				}
				var caVolume *corev1.Volume
				for i, v := range spec.Volumes {
					if v.Secret != nil {
						caVolume = &spec.Volumes[i]
					}
				}
				if caVolume == nil {
					t.Fatalf("%s: no volume of Secret %s's ca.crt", what, secret.Name)
				}
				s := caVolume.Secret
				if s.SecretName != secret.Name || s.Optional == nil || !*s.Optional ||
					!cmp.Equal(s.Items, []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}) {
					t.Errorf("%s: the CA volume %+v must project only the optional ca.crt key (never the password)", what, s)
				}
				mounted := false
				for _, m := range c.VolumeMounts {
					if m.Name == caVolume.Name && m.MountPath == StorageCADir && m.ReadOnly && m.SubPath == "" {
						mounted = true
					}
				}
				if !mounted {
					t.Errorf("%s: the CA volume is not mounted read-only at %s", what, StorageCADir)
				}
			}
		})
	}
}

// ingestArgs are the ingest container's arguments without trusted proxies.
var ingestArgs = []string{"--config=/etc/millimetric/ingest.json", "--listen=:8080", "--metrics-listen=:9090"}

func TestIngestTrustsForwardedAddressesOnlyFromTheProxiesNamed(t *testing.T) {
	tests := []struct {
		name    string
		proxies []string
		want    []string
	}{
		{"an operator naming no proxies gives ingest no trusted proxies", nil, ingestArgs},
		{"an operator naming an empty list gives ingest no trusted proxies", []string{}, ingestArgs},
		{"an operator naming proxies gives ingest all of them in one flag", []string{"10.0.0.0/8", "fd00::/8"},
			append(slices.Clone(ingestArgs), "--trusted-proxies=10.0.0.0/8,fd00::/8")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith()
			tenant.Settings.IngestTrustedProxies = tt.proxies
			if diff := cmp.Diff(tt.want, IngestDeployment(tenant).Spec.Template.Spec.Containers[0].Args); diff != "" {
				t.Errorf("args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestParseTrustedProxies(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string
		wantErr  string
	}{
		{"an empty flag trusts no proxy", "", nil, ""},
		{"IPv4 and IPv6 CIDRs are kept in order", "10.0.0.0/8,192.168.0.0/16,fd00::/8",
			[]string{"10.0.0.0/8", "192.168.0.0/16", "fd00::/8"}, ""},
		{"spaces around items are ignored", " 10.0.0.0/8 , 172.16.0.0/12", []string{"10.0.0.0/8", "172.16.0.0/12"}, ""},
		{"host bits are cleared", "10.1.2.3/8", []string{"10.0.0.0/8"}, ""},
		{"a bare address is refused", "10.0.0.1", nil, `"10.0.0.1" is not a CIDR`},
		{"a trailing comma is refused", "10.0.0.0/8,", nil, `"" is not a CIDR`},
		{"a host name is refused", "edge.example.com/32", nil, `"edge.example.com/32" is not a CIDR`},
		{"a prefix too long is refused", "10.0.0.0/33", nil, `"10.0.0.0/33" is not a CIDR`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseTrustedProxies(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one saying %s", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestIngestConfigMap(t *testing.T) {
	tenant := tenantWith(func(a *v1alpha1.AnalyticsTenant) {
		a.Spec.Region = v1alpha1.RegionUS
		a.Spec.Privacy = &v1alpha1.PrivacySpec{QueryParamAllowlist: []v1alpha1.QueryParam{"utm_source", "ref"}, GeoPrecision: v1alpha1.GeoPrecisionCountry,
			RespectGlobalPrivacyControl: true}
		ingest(a).RateLimit = &v1alpha1.RateLimitSpec{EventsPerMinutePerIP: 120}
	})
	cm := IngestConfigMap(tenant)
	if len(cm.Data) != 1 || len(cm.BinaryData) != 0 {
		t.Fatalf("data keys = %v, want only %s", cm.Data, IngestConfigKey)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(cm.Data["ingest.json"]), &got); err != nil {
		t.Fatalf("ingest.json is not JSON: %v", err)
	}
	want := map[string]any{
		"tenant":              "acme",
		"region":              "US",
		"domains":             []any{"*.acme.com", "acme.com"},
		"queryParamAllowlist": []any{"ref", "utm_source"},
		"geoPrecision":        "Country",
		"rateLimit":           map[string]any{"eventsPerMinutePerIP": float64(120)},
		"storeIPAddress":      false,

		"respectGlobalPrivacyControl": true,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("ingest.json (-want +got):\n%s", diff)
	}

	t.Run("an empty allowlist is written as an empty list, keeping no parameter", func(t *testing.T) {
		tenant := tenantWith(func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.Privacy = &v1alpha1.PrivacySpec{QueryParamAllowlist: []v1alpha1.QueryParam{}}
		})
		var got map[string]any
		if err := json.Unmarshal([]byte(IngestConfigMap(tenant).Data["ingest.json"]), &got); err != nil {
			t.Fatal(err)
		}
		if l, ok := got["queryParamAllowlist"].([]any); !ok || len(l) != 0 {
			t.Errorf("queryParamAllowlist = %#v, want []", got["queryParamAllowlist"])
		}
	})
	t.Run("the defaults are written out", func(t *testing.T) {
		var got map[string]any
		if err := json.Unmarshal([]byte(IngestConfigMap(tenantWith()).Data["ingest.json"]), &got); err != nil {
			t.Fatal(err)
		}
		if got["geoPrecision"] != "City" || got["region"] != "EU" || len(got["queryParamAllowlist"].([]any)) != 7 ||
			got["rateLimit"].(map[string]any)["eventsPerMinutePerIP"] != float64(600) {
			t.Errorf("defaults not in force: %v", got)
		}
	})
}

func TestConfigHash(t *testing.T) {
	base := tenantWith()
	baseHash := IngestDeployment(base).Spec.Template.Annotations[AnnotationConfigHash]
	if len(baseHash) != 64 {
		t.Fatalf("hash %q is not a hex SHA-256", baseHash)
	}
	tests := []struct {
		name        string
		change      func(*v1alpha1.AnalyticsTenant)
		wantChanged bool
	}{
		{"adding a domain rolls the pods", func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.Domains = append(a.Spec.Domains, "acme.org")
		}, true},
		{"changing the allowlist rolls the pods", func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.Privacy = &v1alpha1.PrivacySpec{QueryParamAllowlist: []v1alpha1.QueryParam{"utm_source"}}
		}, true},
		{"changing the geo precision rolls the pods", func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.Privacy = &v1alpha1.PrivacySpec{GeoPrecision: v1alpha1.GeoPrecisionRegion}
		}, true},
		{"changing the rate limit rolls the pods", func(a *v1alpha1.AnalyticsTenant) {
			ingest(a).RateLimit = &v1alpha1.RateLimitSpec{EventsPerMinutePerIP: 60}
		}, true},
		{"changing the retention window does not roll the pods", func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.RetentionDays = ptr.To[int32](365)
		}, false},
		{"changing the replicas does not roll the pods", func(a *v1alpha1.AnalyticsTenant) {
			ingest(a).Replicas = ptr.To[int32](7)
		}, false},
		{"suspending does not roll the pods", suspended, false},
		{"reordering the domains does not roll the pods", func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.Domains = []v1alpha1.Domain{"*.acme.com", "acme.com"}
		}, false},
		{"writing out a default does not roll the pods", func(a *v1alpha1.AnalyticsTenant) {
			a.Spec.Privacy = &v1alpha1.PrivacySpec{GeoPrecision: v1alpha1.GeoPrecisionCity}
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := IngestDeployment(tenantWith(tt.change)).Spec.Template.Annotations[AnnotationConfigHash]
			if changed := got != baseHash; changed != tt.wantChanged {
				t.Errorf("hash changed: %v, want %v", changed, tt.wantChanged)
			}
		})
	}

	t.Run("the hash does not depend on map order and tells keys from values", func(t *testing.T) {
		a := &corev1.ConfigMap{Data: map[string]string{"a": "1", "b": "2", "c": "3"}}
		b := &corev1.ConfigMap{Data: map[string]string{"c": "3", "b": "2", "a": "1"}}
		if ConfigHash(a) != ConfigHash(b) {
			t.Error("same data, different hashes")
		}
		c := &corev1.ConfigMap{Data: map[string]string{"a": "12"}}
		d := &corev1.ConfigMap{Data: map[string]string{"a1": "2"}}
		if ConfigHash(c) == ConfigHash(d) {
			t.Error("different data, same hash")
		}
		e := &corev1.ConfigMap{BinaryData: map[string][]byte{"a": []byte("1")}}
		f := &corev1.ConfigMap{Data: map[string]string{"a": "1"}}
		if ConfigHash(e) == ConfigHash(f) {
			t.Error("binary data hashes as data")
		}
	})
}

func TestIngestService(t *testing.T) {
	tenant := tenantWith()
	svc := IngestService(tenant)
	if svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("type = %s, want ClusterIP", svc.Spec.Type)
	}
	want := []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80, TargetPort: intstr.FromString("http")}}
	if diff := cmp.Diff(want, svc.Spec.Ports); diff != "" {
		t.Errorf("ports (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(IngestDeployment(tenant).Spec.Selector.MatchLabels, svc.Spec.Selector); diff != "" {
		t.Errorf("the Service selects other pods than the Deployment's (-deployment +service):\n%s", diff)
	}
	if got := IngestServiceAddress(tenant); got != "ingest.tenant-acme.svc" {
		t.Errorf("IngestServiceAddress = %q", got)
	}
}

func TestServiceAccountsMountNoToken(t *testing.T) {
	tenant := tenantWith()
	for _, sa := range []*corev1.ServiceAccount{IngestServiceAccount(tenant), RetentionServiceAccount(tenant)} {
		if sa.AutomountServiceAccountToken == nil || *sa.AutomountServiceAccountToken {
			t.Errorf("ServiceAccount %s mounts its token", sa.Name)
		}
	}
	if IngestServiceAccount(tenant).Name != IngestDeployment(tenant).Spec.Template.Spec.ServiceAccountName {
		t.Error("ingest pods do not run as the ingest ServiceAccount")
	}
	if RetentionServiceAccount(tenant).Name != RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Spec.ServiceAccountName {
		t.Error("retention pods do not run as the retention ServiceAccount")
	}
}
