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
	"slices"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// Values in force when a spec leaves a field unset. They live here, not in
// the CRD schema, so that the API server never writes them into a spec.
const (
	// DefaultRegion is where events are stored unless the customer asks for US.
	DefaultRegion = RegionEU
	// DefaultRetentionDays is the smallest plan's window.
	DefaultRetentionDays int32 = 30
	// DefaultReplicas is the number of ingest pods without autoscaling: two,
	// so a node drain never stops ingestion.
	DefaultReplicas int32 = 2
	// DefaultMinReplicas is the autoscaler's floor when unset.
	DefaultMinReplicas int32 = 1
	// DefaultTargetCPUUtilizationPercentage is the autoscaler's target when unset.
	DefaultTargetCPUUtilizationPercentage int32 = 70
	// DefaultEventsPerMinutePerIP is the abuse rate limit when unset.
	DefaultEventsPerMinutePerIP int32 = 600
	// DefaultGeoPrecision is the finest location kept when unset.
	DefaultGeoPrecision = GeoPrecisionCity
	// DefaultDeletionPolicy purges a deleted tenant's data, as the policy
	// promises for closed accounts.
	DefaultDeletionPolicy = DeletionPolicyDelete
	// DefaultRetainDays, and the most allowed, is the hold of a retained
	// tenant's data: the policy deletes account data within 30 days of
	// closure.
	DefaultRetainDays int32 = 30
	// DefaultPostgresPort is PostgreSQL's port.
	DefaultPostgresPort int32 = 5432
	// DefaultSSLMode checks the server's certificate and host name.
	DefaultSSLMode = SSLModeVerifyFull
)

// PlanRetentionDays are the plans' windows for raw events, in days, the
// values spec.retentionDays may take, smallest first. The CEL rule on the
// field spells them too, as a marker cannot name a Go value;
// TestThePlansWindowsAreTheSchemas fails when the two differ.
var PlanRetentionDays = []int32{30, 90, 365}

// PlanWindows is PlanRetentionDays as a person reads it: "30, 90 or 365".
func PlanWindows() string {
	s := ""
	for i, d := range PlanRetentionDays {
		switch {
		case i == 0:
		case i == len(PlanRetentionDays)-1:
			s += " or "
		default:
			s += ", "
		}
		s += strconv.Itoa(int(d))
	}
	return s
}

// DefaultQueryParamAllowlist is the query parameters kept when a tenant does
// not list its own: campaign attribution only.
func DefaultQueryParamAllowlist() []string {
	return []string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content", "ref", "source"}
}

// DefaultIngestResources is what an ingest container requests and is limited
// to when the tenant does not say.
func DefaultIngestResources() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{
		Requests: corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse("100m"),
			corev1.ResourceMemory: resource.MustParse("128Mi"),
		},
		Limits: corev1.ResourceList{
			corev1.ResourceMemory: resource.MustParse("256Mi"),
		},
	}
}

// EffectiveTenantSpec is an AnalyticsTenantSpec with every unset field
// resolved to the value in force. Builders and status read this, never the
// raw spec, so a default is decided in exactly one place.
// +kubebuilder:object:generate=false
type EffectiveTenantSpec struct {
	Region         Region
	RetentionDays  int32
	Domains        []string
	Suspend        bool
	DeletionPolicy DeletionPolicy
	// RetainDays is the hold of deletionPolicy Retain.
	RetainDays int32
	// AdoptRetainedFrom is the uid of the deleted tenant whose retained
	// data the tenant asks to adopt; empty when it asks for none.
	AdoptRetainedFrom string

	// Image is the ingest image the tenant asked for; empty means the
	// operator's default.
	Image string
	// Replicas is the ingest size without autoscaling.
	Replicas int32
	// Autoscaling is nil when the tenant does not autoscale.
	Autoscaling *EffectiveAutoscaling
	Resources   corev1.ResourceRequirements

	// Hostnames are spec.ingest.hostnames, sorted.
	Hostnames []string

	EventsPerMinutePerIP int32
	QueryParamAllowlist  []string
	GeoPrecision         GeoPrecision
	// RespectGlobalPrivacyControl is spec.privacy's, false when unset.
	RespectGlobalPrivacyControl bool
}

// EffectiveAutoscaling is an AutoscalingSpec with its defaults resolved.
// +kubebuilder:object:generate=false
type EffectiveAutoscaling struct {
	MinReplicas                    int32
	MaxReplicas                    int32
	TargetCPUUtilizationPercentage int32
}

// Effective resolves every unset field of the spec to the value in force.
// It never modifies the spec; the result shares no memory with it.
func (s *AnalyticsTenantSpec) Effective() EffectiveTenantSpec {
	e := EffectiveTenantSpec{
		Region:               orDefault(s.Region, DefaultRegion),
		RetentionDays:        derefOr(s.RetentionDays, DefaultRetentionDays),
		Domains:              make([]string, 0, len(s.Domains)),
		Suspend:              s.Suspend,
		DeletionPolicy:       orDefault(s.DeletionPolicy, DefaultDeletionPolicy),
		RetainDays:           derefOr(s.RetainDays, DefaultRetainDays),
		Replicas:             DefaultReplicas,
		Resources:            DefaultIngestResources(),
		EventsPerMinutePerIP: DefaultEventsPerMinutePerIP,
		QueryParamAllowlist:  DefaultQueryParamAllowlist(),
		GeoPrecision:         DefaultGeoPrecision,
	}
	for _, d := range s.Domains {
		e.Domains = append(e.Domains, string(d))
	}
	if in := s.Ingest; in != nil {
		e.Image = in.Image
		e.Replicas = derefOr(in.Replicas, DefaultReplicas)
		if a := in.Autoscaling; a != nil {
			e.Autoscaling = &EffectiveAutoscaling{
				MinReplicas:                    derefOr(a.MinReplicas, DefaultMinReplicas),
				MaxReplicas:                    a.MaxReplicas,
				TargetCPUUtilizationPercentage: derefOr(a.TargetCPUUtilizationPercentage, DefaultTargetCPUUtilizationPercentage),
			}
			if in.Replicas == nil {
				// The Deployment starts at the autoscaler's floor.
				e.Replicas = e.Autoscaling.MinReplicas
			}
		}
		if in.Resources != nil {
			// An amount stored before the schema bounded it is left out
			// here, never parsed; the controller refuses such a tenant
			// (CheckQuantities) before anything is rendered from it.
			e.Resources = in.Resources.Requirements()
		}
		if in.RateLimit != nil {
			e.EventsPerMinutePerIP = in.RateLimit.EventsPerMinutePerIP
		}
		for _, h := range in.Hostnames {
			e.Hostnames = append(e.Hostnames, string(h))
		}
		slices.Sort(e.Hostnames)
	}
	if st := s.Storage; st != nil {
		e.AdoptRetainedFrom = st.AdoptRetainedFrom
	}
	if p := s.Privacy; p != nil {
		if p.QueryParamAllowlist != nil {
			// An explicit empty list keeps no query parameter at all.
			e.QueryParamAllowlist = make([]string, 0, len(p.QueryParamAllowlist))
			for _, q := range p.QueryParamAllowlist {
				e.QueryParamAllowlist = append(e.QueryParamAllowlist, string(q))
			}
		}
		e.GeoPrecision = orDefault(p.GeoPrecision, DefaultGeoPrecision)
		e.RespectGlobalPrivacyControl = p.RespectGlobalPrivacyControl
	}
	return e
}

// EffectivePostgres is a PostgresSpec with its defaults resolved.
// +kubebuilder:object:generate=false
type EffectivePostgres struct {
	Host           string
	Port           int32
	Database       string
	SSLMode        SSLMode
	AdminSecretRef SecretReference
}

// Effective resolves the unset fields of the region's database settings.
func (p *PostgresSpec) Effective() EffectivePostgres {
	return EffectivePostgres{
		Host:           p.Host,
		Port:           derefOr(p.Port, DefaultPostgresPort),
		Database:       p.Database,
		SSLMode:        orDefault(p.SSLMode, DefaultSSLMode),
		AdminSecretRef: p.AdminSecretRef,
	}
}

func orDefault[T ~string](v, def T) T {
	if v == "" {
		return def
	}
	return v
}

func derefOr[T any](p *T, def T) T {
	if p == nil {
		return def
	}
	return *p
}
