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
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
	"k8s.io/utils/ptr"
)

// restrictedViolations is what Pod Security "restricted", at its latest
// version, finds wrong with a pod template: empty when it would be admitted
// in the tenant's namespace.
func restrictedViolations(t *testing.T, tmpl *corev1.PodTemplateSpec) string {
	t.Helper()
	evaluator, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("building the Pod Security evaluator: %v", err)
	}
	lv := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	result := policy.AggregateCheckResults(evaluator.EvaluatePod(lv, &tmpl.ObjectMeta, &tmpl.Spec))
	if result.Allowed {
		return ""
	}
	return result.ForbiddenDetail()
}

func TestEveryPodTemplateIsRestricted(t *testing.T) {
	for name, tenant := range tenantVariants() {
		templates := map[string]*corev1.PodTemplateSpec{
			"the ingest pods":    &IngestDeployment(tenant).Spec.Template,
			"the retention pods": &RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template,
		}
		for what, tmpl := range templates {
			t.Run(name+": "+what+" pass Pod Security restricted", func(t *testing.T) {
				if v := restrictedViolations(t, tmpl); v != "" {
					t.Errorf("restricted refuses the pod: %s", v)
				}
			})
		}
	}
}

// TestRestrictedCheckCanFail makes sure the check above is not vacuous: a
// pod broken on purpose is refused.
func TestRestrictedCheckCanFail(t *testing.T) {
	tests := []struct {
		name     string
		breakPod func(*corev1.PodSpec)
		want     string
	}{
		{"a pod that may run as root is refused", func(s *corev1.PodSpec) {
			s.SecurityContext.RunAsNonRoot = nil
			s.Containers[0].SecurityContext.RunAsNonRoot = nil
		}, "runAsNonRoot"},
		{"a container that may escalate privileges is refused", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
		}, "allowPrivilegeEscalation"},
		{"a container that keeps NET_RAW is refused", func(s *corev1.PodSpec) {
			s.Containers[0].SecurityContext.Capabilities = &corev1.Capabilities{Add: []corev1.Capability{"NET_RAW"}}
		}, "capabilities"},
		{"a pod without a seccomp profile is refused", func(s *corev1.PodSpec) {
			s.SecurityContext.SeccompProfile = nil
		}, "seccompProfile"},
		{"a pod with a host path volume is refused", func(s *corev1.PodSpec) {
			s.Volumes = append(s.Volumes, corev1.Volume{Name: "host", VolumeSource: corev1.VolumeSource{
				HostPath: &corev1.HostPathVolumeSource{Path: "/var/run"}}})
		}, "hostPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tmpl := IngestDeployment(tenantWith()).Spec.Template.DeepCopy()
			tt.breakPod(&tmpl.Spec)
			v := restrictedViolations(t, tmpl)
			if v == "" {
				t.Fatal("restricted admits the broken pod")
			}
			if !strings.Contains(v, tt.want) {
				t.Errorf("restricted refuses it for %q, want a reason mentioning %q", v, tt.want)
			}
		})
	}
}

func TestPodsHardenBeyondRestricted(t *testing.T) {
	for name, tenant := range tenantVariants() {
		specs := map[string]corev1.PodSpec{
			"ingest":    IngestDeployment(tenant).Spec.Template.Spec,
			"retention": RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Spec,
		}
		for what, spec := range specs {
			t.Run(name+": the "+what+" pods mount no token, link no services and write nowhere but their volumes", func(t *testing.T) {
				if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
					t.Error("the pod mounts a service account token")
				}
				if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
					t.Error("the pod gets service link environment variables")
				}
				if spec.ServiceAccountName != what {
					t.Errorf("serviceAccountName = %q, want %q", spec.ServiceAccountName, what)
				}
				sc := spec.SecurityContext
				if sc.RunAsUser == nil || *sc.RunAsUser != PodUID || sc.RunAsGroup == nil || *sc.RunAsGroup != PodUID ||
					sc.FSGroup == nil || *sc.FSGroup != PodUID {
					t.Errorf("the pod does not run as %d:%d with fsGroup %d: %+v", PodUID, PodUID, PodUID, sc)
				}
				for _, c := range spec.Containers {
					if c.SecurityContext.ReadOnlyRootFilesystem == nil || !*c.SecurityContext.ReadOnlyRootFilesystem {
						t.Errorf("container %s has a writable root file system", c.Name)
					}
					if len(c.SecurityContext.Capabilities.Drop) != 1 || c.SecurityContext.Capabilities.Drop[0] != "ALL" {
						t.Errorf("container %s does not drop ALL capabilities", c.Name)
					}
				}
				if tenant.Region != nil && tenant.Region.Spec.Placement != nil {
					if spec.NodeSelector[corev1.LabelTopologyRegion] != tenant.Region.Spec.Placement.NodeSelector[corev1.LabelTopologyRegion] {
						t.Errorf("nodeSelector = %v, want the region's", spec.NodeSelector)
					}
					if len(spec.Tolerations) != len(tenant.Region.Spec.Placement.Tolerations) {
						t.Errorf("tolerations = %v, want the region's", spec.Tolerations)
					}
				} else if spec.NodeSelector != nil || spec.Tolerations != nil {
					t.Errorf("placement set without the region asking: %v %v", spec.NodeSelector, spec.Tolerations)
				}
			})
		}
	}
}

// TestEachPasswordIsOnlyInItsOwnSecret checks the passwords and the
// visitor key (in the ingest Secret only, hex-encoded).
func TestEachPasswordIsOnlyInItsOwnSecret(t *testing.T) {
	for name, tenant := range tenantVariants() {
		t.Run(name, func(t *testing.T) {
			creds := testProvisioned()
			// Where each password may be, and must be.
			visitorKey := hex.EncodeToString(testVisitorKey)
			home := map[string]string{testPassword: StorageSecretName, testIngestPassword: IngestSecretName, visitorKey: IngestSecretName}
			for password, secretName := range home {
				var secret *corev1.Secret
				for _, obj := range allObjects(tenant, creds) {
					if s, ok := obj.(*corev1.Secret); ok && s.Name == secretName {
						secret = s
					}
				}
				if secret == nil || (string(secret.Data[SecretKeyPassword]) != password && string(secret.Data[SecretKeyVisitorKey]) != password) {
					t.Fatalf("Secret %s does not hold its password; the search below would prove nothing", secretName)
				}
			}
			for _, obj := range allObjects(tenant, creds) {
				raw, err := json.Marshal(obj)
				if err != nil {
					t.Fatal(err)
				}
				kind := obj.GetObjectKind().GroupVersionKind().Kind
				for password, secretName := range home {
					if kind == "Secret" && obj.GetName() == secretName {
						continue
					}
					// Secrets marshal their data in base64; look for both.
					for _, form := range []string{password, b64(password)} {
						if strings.Contains(string(raw), form) {
							t.Errorf("%s %s holds the password of Secret %s", kind, obj.GetName(), secretName)
						}
					}
				}
			}
		})
	}
}
