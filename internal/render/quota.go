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
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// How the ResourceQuota is sized.
const (
	// QuotaHeadroom multiplies what the tenant's own pods need at most at
	// once. Without it, a rollout that lowers ingest's resources would
	// deadlock: with maxUnavailable 0 the new pod must fit next to all the
	// old, larger ones, and pods still terminating count too. Twice the need
	// lets resources be halved in one step and leaves room for a person's
	// debugging pod, while still bounding the namespace.
	QuotaHeadroom = 2
	// QuotaRetentionPods is the retention pods counted at once: one run
	// (runs never overlap, and failed pods stop counting) and one started by
	// hand with kubectl create job --from.
	QuotaRetentionPods = 2
	// QuotaIngestSurge is the extra ingest pod of a rolling update.
	QuotaIngestSurge = 1
)

// quotaCompute are the compute resources the quota bounds, each with the
// container field it is read from.
var quotaCompute = []struct {
	name     corev1.ResourceName
	resource corev1.ResourceName
	limit    bool
}{
	{corev1.ResourceRequestsCPU, corev1.ResourceCPU, false},
	{corev1.ResourceRequestsMemory, corev1.ResourceMemory, false},
	{corev1.ResourceLimitsCPU, corev1.ResourceCPU, true},
	{corev1.ResourceLimitsMemory, corev1.ResourceMemory, true},
}

// maxIngestPods is the most ingest pods the tenant asks for: the
// autoscaler's ceiling, or the fixed size. Suspension does not lower it, so
// resuming a tenant does not wait on the quota.
func maxIngestPods(t Tenant) int32 {
	n := t.Spec.Replicas
	if a := t.Spec.Autoscaling; a != nil && a.MaxReplicas > n {
		n = a.MaxReplicas
	}
	return n
}

// ResourceQuota bounds what the tenant's namespace can consume, computed
// from the effective spec: pods and CPU and memory requests and limits for
// ingest at its most pods (autoscaling maximum or replicas, plus the rolling
// update's surge pod) with its resources, plus QuotaRetentionPods retention
// pods, all times QuotaHeadroom; a few Services, ConfigMaps and Secrets; no
// load balancers, node ports or volume claims, which tenants never need.
//
// A quota on a compute resource makes the API server refuse every pod that
// does not declare it, so a resource is bounded only when ingest declares
// it (a request may be implied by a limit, as the API server defaults it):
// with the default ingest resources, which have no CPU limit, limits.cpu is
// left unbounded rather than making ingest unschedulable.
func ResourceQuota(t Tenant) *corev1.ResourceQuota {
	ingestPods := int64(maxIngestPods(t)) + QuotaIngestSurge
	hard := corev1.ResourceList{
		corev1.ResourcePods:                   *resource.NewQuantity((ingestPods+QuotaRetentionPods)*QuotaHeadroom, resource.DecimalSI),
		corev1.ResourceServices:               resource.MustParse("5"),
		corev1.ResourceServicesLoadBalancers:  resource.MustParse("0"),
		corev1.ResourceServicesNodePorts:      resource.MustParse("0"),
		corev1.ResourceConfigMaps:             resource.MustParse("10"),
		corev1.ResourceSecrets:                resource.MustParse("10"),
		corev1.ResourcePersistentVolumeClaims: resource.MustParse("0"),
	}
	retention := retentionResources()
	for _, c := range quotaCompute {
		perIngest, ok := declared(t.Spec.Resources, c.resource, c.limit)
		if !ok {
			continue
		}
		perRetention, ok := declared(retention, c.resource, c.limit)
		if !ok {
			continue
		}
		total := times(perIngest, ingestPods)
		total.Add(times(perRetention, QuotaRetentionPods))
		total = times(total, QuotaHeadroom)
		hard[c.name] = total
	}
	return &corev1.ResourceQuota{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ResourceQuota"},
		ObjectMeta: objectMeta(t, ResourceQuotaName, Labels(t)),
		Spec:       corev1.ResourceQuotaSpec{Hard: hard},
	}
}

// declared is what a container with these resources counts against the
// quota for one resource, and whether it declares it at all. A missing
// request defaults to the limit.
func declared(r corev1.ResourceRequirements, name corev1.ResourceName, limit bool) (resource.Quantity, bool) {
	if q, ok := r.Limits[name]; ok && limit {
		return q.DeepCopy(), true
	}
	if limit {
		return resource.Quantity{}, false
	}
	if q, ok := r.Requests[name]; ok {
		return q.DeepCopy(), true
	}
	if q, ok := r.Limits[name]; ok {
		return q.DeepCopy(), true
	}
	return resource.Quantity{}, false
}

// times multiplies a quantity, in its canonical form.
func times(q resource.Quantity, n int64) resource.Quantity {
	out := q.DeepCopy()
	out.Mul(n)
	return resource.MustParse(out.String())
}
