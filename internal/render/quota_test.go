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
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
)

func TestResourceQuota(t *testing.T) {
	withResources := func(r v1alpha1.IngestResources) func(*v1alpha1.AnalyticsTenant) {
		return func(a *v1alpha1.AnalyticsTenant) { ingest(a).Resources = &r }
	}
	tests := []struct {
		name   string
		tenant Tenant
		want   map[corev1.ResourceName]string // "" means not bounded
	}{
		{
			// Ingest: (2 + 1 surge) x 100m/128Mi/256Mi; retention: 2 x 50m/64Mi/256Mi; all x 2.
			name:   "two default ingest pods leave CPU limits unbounded, as ingest sets none",
			tenant: tenantWith(),
			want: map[corev1.ResourceName]string{
				"pods": "10", "requests.cpu": "800m", "requests.memory": "1024Mi",
				"limits.memory": "2560Mi", "limits.cpu": "",
			},
		},
		{
			// Ingest: (20 + 1) x 100m/128Mi/256Mi.
			name:   "an autoscaled tenant is sized for its maximum",
			tenant: tenantWith(autoscaling(2, 20)),
			want: map[corev1.ResourceName]string{
				"pods": "46", "requests.cpu": "4400m", "requests.memory": "5632Mi", "limits.memory": "11776Mi",
			},
		},
		{
			name: "ingest with CPU and memory limits bounds both limits",
			tenant: tenantWith(withResources(v1alpha1.IngestResources{
				Requests: &v1alpha1.ComputeResources{CPU: "250m", Memory: "256Mi"},
				Limits:   &v1alpha1.ComputeResources{CPU: "1", Memory: "512Mi"},
			})),
			want: map[corev1.ResourceName]string{
				"pods": "10", "requests.cpu": "1700m", "requests.memory": "1792Mi",
				"limits.cpu": "8", "limits.memory": "4096Mi",
			},
		},
		{
			name: "ingest with only limits counts them as its requests too",
			tenant: tenantWith(withResources(v1alpha1.IngestResources{
				Limits: &v1alpha1.ComputeResources{CPU: "1", Memory: "1Gi"},
			})),
			want: map[corev1.ResourceName]string{
				"requests.cpu": "6200m", "requests.memory": "6400Mi", "limits.cpu": "8", "limits.memory": "7168Mi",
			},
		},
		{
			name:   "ingest with no resources leaves compute unbounded rather than unschedulable",
			tenant: tenantWith(withResources(v1alpha1.IngestResources{})),
			want: map[corev1.ResourceName]string{
				"pods": "10", "requests.cpu": "", "requests.memory": "", "limits.cpu": "", "limits.memory": "",
			},
		},
		{
			name:   "a suspended tenant keeps its quota, so resuming it does not wait on one",
			tenant: tenantWith(suspended),
			want:   map[corev1.ResourceName]string{"pods": "10", "requests.cpu": "800m"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hard := ResourceQuota(tt.tenant).Spec.Hard
			for name, want := range tt.want {
				got, ok := hard[name]
				switch {
				case want == "" && ok:
					t.Errorf("%s is bounded at %s, want it unbounded", name, got.String())
				case want != "" && !ok:
					t.Errorf("%s is unbounded, want %s", name, want)
				case want != "" && got.Cmp(resource.MustParse(want)) != 0:
					t.Errorf("%s = %s, want %s", name, got.String(), want)
				}
			}
			for _, zero := range []corev1.ResourceName{"services.loadbalancers", "services.nodeports", "persistentvolumeclaims"} {
				if q, ok := hard[zero]; !ok || !q.IsZero() {
					t.Errorf("%s is not bounded at 0", zero)
				}
			}
			for _, some := range []corev1.ResourceName{"services", "configmaps", "secrets"} {
				if q, ok := hard[some]; !ok || q.Value() < 2 {
					t.Errorf("%s = %v, want a small bound of at least 2 (a namespace always has kube-root-ca.crt)", some, q)
				}
			}
		})
	}
}

// TestTheQuotaFitsTheTenantsOwnPods checks every bound against what the
// tenant's own pods use at their most: ingest at its largest during a
// rollout and the retention pods, for every tenant shape.
func TestTheQuotaFitsTheTenantsOwnPods(t *testing.T) {
	for name, tenant := range tenantVariants() {
		t.Run(name, func(t *testing.T) {
			hard := ResourceQuota(tenant).Spec.Hard
			ingestPods := int64(maxIngestPods(tenant)) + 1
			ingestPod := IngestDeployment(tenant).Spec.Template.Spec.Containers[0].Resources
			retentionPod := RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Spec.Containers[0].Resources
			if hard.Pods().Value() < ingestPods+1 {
				t.Errorf("pods = %d, want room for %d ingest pods and a retention pod", hard.Pods().Value(), ingestPods)
			}
			for _, c := range quotaCompute {
				bound, bounded := hard[c.name]
				perIngest, ingestDeclares := declared(ingestPod, c.resource, c.limit)
				perRetention, retentionDeclares := declared(retentionPod, c.resource, c.limit)
				if bounded && (!ingestDeclares || !retentionDeclares) {
					t.Errorf("%s is bounded, but not every container declares it: pods would be refused", c.name)
				}
				if !bounded {
					continue
				}
				need := times(perIngest, ingestPods)
				need.Add(perRetention)
				if bound.Cmp(need) < 0 {
					t.Errorf("%s = %s, below the %s the tenant's pods need", c.name, bound.String(), need.String())
				}
			}
		})
	}
}
