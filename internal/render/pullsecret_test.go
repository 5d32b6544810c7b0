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
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// tenantPodSpecs are the pod specs of every tenant pod the builders make:
// ingest's and the retention Job's.
func tenantPodSpecs(t Tenant) map[string]corev1.PodSpec {
	return map[string]corev1.PodSpec{
		"ingest":    IngestDeployment(t).Spec.Template.Spec,
		"retention": RetentionCronJob(t).Spec.JobTemplate.Spec.Template.Spec,
	}
}

func TestTenantPodsPullWithTheConfiguredSecrets(t *testing.T) {
	tests := []struct {
		name    string
		secrets []string
		want    []string
	}{
		{"without --tenant-image-pull-secret the pods name no pull secret", nil, nil},
		{"one secret is named in every tenant pod", []string{"ghcr"}, []string{"ghcr"}},
		{"several are named in the order given", []string{"ghcr", "mirror"}, []string{"ghcr", "mirror"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith()
			tenant.Settings.ImagePullSecrets = tt.secrets
			for pod, spec := range tenantPodSpecs(tenant) {
				var got []string
				for _, ref := range spec.ImagePullSecrets {
					got = append(got, ref.Name)
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("%s pods pull with %q, want %q", pod, got, tt.want)
				}
				if tt.want == nil && spec.ImagePullSecrets != nil {
					t.Errorf("%s pods have an empty, not a missing, imagePullSecrets: the template of every tenant would change", pod)
				}
			}
		})
	}
}
