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

package v1alpha1

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

func TestAnalyticsTenantSpecEffective(t *testing.T) {
	defaults := EffectiveTenantSpec{
		Region:               RegionEU,
		RetentionDays:        30,
		Domains:              []string{},
		DeletionPolicy:       DeletionPolicyDelete,
		RetainDays:           30,
		Replicas:             2,
		Resources:            DefaultIngestResources(),
		EventsPerMinutePerIP: 600,
		QueryParamAllowlist:  []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref", "source"},
		GeoPrecision:         GeoPrecisionCity,
	}
	with := func(change func(*EffectiveTenantSpec)) EffectiveTenantSpec {
		e := defaults
		e.Resources = *defaults.Resources.DeepCopy()
		change(&e)
		return e
	}
	customResources := IngestResources{Requests: &ComputeResources{CPU: "1"}}

	tests := []struct {
		name string
		spec AnalyticsTenantSpec
		want EffectiveTenantSpec
	}{
		{
			name: "an empty spec is an EU tenant on the 30-day plan with two ingest pods",
			spec: AnalyticsTenantSpec{},
			want: defaults,
		},
		{
			name: "a US tenant on the 365-day plan keeps both",
			spec: AnalyticsTenantSpec{Region: RegionUS, RetentionDays: ptr.To[int32](365)},
			want: with(func(e *EffectiveTenantSpec) { e.Region = RegionUS; e.RetentionDays = 365 }),
		},
		{
			name: "domains are kept in order",
			spec: AnalyticsTenantSpec{Domains: []Domain{"acme.com", "*.acme.com"}},
			want: with(func(e *EffectiveTenantSpec) { e.Domains = []string{"acme.com", "*.acme.com"} }),
		},
		{
			name: "explicit replicas, including zero, are kept",
			spec: AnalyticsTenantSpec{Ingest: &IngestSpec{Replicas: ptr.To[int32](0)}},
			want: with(func(e *EffectiveTenantSpec) { e.Replicas = 0 }),
		},
		{
			name: "autoscaling without a floor or target gets 1 and 70 percent and starts at the floor",
			spec: AnalyticsTenantSpec{Ingest: &IngestSpec{Autoscaling: &AutoscalingSpec{MaxReplicas: 5}}},
			want: with(func(e *EffectiveTenantSpec) {
				e.Replicas = 1
				e.Autoscaling = &EffectiveAutoscaling{MinReplicas: 1, MaxReplicas: 5, TargetCPUUtilizationPercentage: 70}
			}),
		},
		{
			name: "autoscaling with replicas starts at the given replicas",
			spec: AnalyticsTenantSpec{Ingest: &IngestSpec{
				Replicas:    ptr.To[int32](3),
				Autoscaling: &AutoscalingSpec{MinReplicas: ptr.To[int32](2), MaxReplicas: 20, TargetCPUUtilizationPercentage: ptr.To[int32](50)},
			}},
			want: with(func(e *EffectiveTenantSpec) {
				e.Replicas = 3
				e.Autoscaling = &EffectiveAutoscaling{MinReplicas: 2, MaxReplicas: 20, TargetCPUUtilizationPercentage: 50}
			}),
		},
		{
			name: "resources, image and rate limit given replace the defaults",
			spec: AnalyticsTenantSpec{Ingest: &IngestSpec{
				Image:     "registry.example.com/ingest:2",
				Resources: &customResources,
				RateLimit: &RateLimitSpec{EventsPerMinutePerIP: 60},
			}},
			want: with(func(e *EffectiveTenantSpec) {
				e.Image = "registry.example.com/ingest:2"
				e.Resources = corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}}
				e.EventsPerMinutePerIP = 60
			}),
		},
		{
			name: "an explicit empty allowlist keeps no query parameter",
			spec: AnalyticsTenantSpec{Privacy: &PrivacySpec{QueryParamAllowlist: []QueryParam{}}},
			want: with(func(e *EffectiveTenantSpec) { e.QueryParamAllowlist = []string{} }),
		},
		{
			name: "a privacy block without an allowlist keeps the default allowlist",
			spec: AnalyticsTenantSpec{Privacy: &PrivacySpec{GeoPrecision: GeoPrecisionCountry}},
			want: with(func(e *EffectiveTenantSpec) { e.GeoPrecision = GeoPrecisionCountry }),
		},
		{
			name: "a custom allowlist replaces the default",
			spec: AnalyticsTenantSpec{Privacy: &PrivacySpec{QueryParamAllowlist: []QueryParam{"gclid"}}},
			want: with(func(e *EffectiveTenantSpec) { e.QueryParamAllowlist = []string{"gclid"} }),
		},
		{
			name: "a shorter hold of retained data is kept",
			spec: AnalyticsTenantSpec{DeletionPolicy: DeletionPolicyRetain, RetainDays: ptr.To[int32](7)},
			want: with(func(e *EffectiveTenantSpec) { e.DeletionPolicy = DeletionPolicyRetain; e.RetainDays = 7 }),
		},
		{
			name: "suspend and Retain are kept",
			spec: AnalyticsTenantSpec{Suspend: true, DeletionPolicy: DeletionPolicyRetain},
			want: with(func(e *EffectiveTenantSpec) { e.Suspend = true; e.DeletionPolicy = DeletionPolicyRetain }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := tt.spec.DeepCopy()
			got := tt.spec.Effective()
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Effective() mismatch (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(before, &tt.spec); diff != "" {
				t.Errorf("Effective() modified the spec (-before +after):\n%s", diff)
			}
		})
	}
}

func TestEffectiveSharesNoMemoryWithTheSpec(t *testing.T) {
	spec := AnalyticsTenantSpec{
		Ingest:  &IngestSpec{Resources: &IngestResources{Limits: &ComputeResources{CPU: "1"}}},
		Privacy: &PrivacySpec{QueryParamAllowlist: []QueryParam{"ref"}},
	}
	e := spec.Effective()
	e.Resources.Limits[corev1.ResourceCPU] = resource.MustParse("9")
	e.QueryParamAllowlist[0] = "changed"
	if got := spec.Ingest.Resources.Limits.CPU; got != "1" {
		t.Errorf("changing the effective resources changed the spec to %s", got)
	}
	if spec.Privacy.QueryParamAllowlist[0] != "ref" {
		t.Errorf("changing the effective allowlist changed the spec")
	}
}

func TestPostgresSpecEffective(t *testing.T) {
	tests := []struct {
		name string
		spec PostgresSpec
		want EffectivePostgres
	}{
		{
			name: "unset port and sslMode are 5432 and verify-full",
			spec: PostgresSpec{Host: "pg", Database: "events"},
			want: EffectivePostgres{Host: "pg", Port: 5432, Database: "events", SSLMode: SSLModeVerifyFull},
		},
		{
			name: "given port and sslMode are kept",
			spec: PostgresSpec{Host: "pg", Port: ptr.To[int32](6432), Database: "events", SSLMode: SSLModeDisable},
			want: EffectivePostgres{Host: "pg", Port: 6432, Database: "events", SSLMode: SSLModeDisable},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.spec.Effective()); diff != "" {
				t.Errorf("Effective() mismatch (-want +got):\n%s", diff)
			}
		})
	}
}
