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
	"fmt"
	"reflect"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/pod-security-admission/api"
	"k8s.io/utils/ptr"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
)

func TestEveryObjectIsReadyToApply(t *testing.T) {
	for name, tenant := range tenantVariants() {
		t.Run(name, func(t *testing.T) {
			wantOwner := metav1.OwnerReference{
				APIVersion: "analytics.millimetric.ai/v1alpha1", Kind: "AnalyticsTenant",
				Name: "acme", UID: tenant.Object.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
			}
			for _, obj := range allObjects(tenant, testProvisioned()) {
				gvk := obj.GetObjectKind().GroupVersionKind()
				what := fmt.Sprintf("%s %s", gvk.Kind, obj.GetName())
				t.Run(what, func(t *testing.T) {
					known, _, err := clientgoscheme.Scheme.ObjectKinds(obj)
					if err != nil {
						t.Fatalf("the object's type is not a Kubernetes kind: %v", err)
					}
					if gvk.Empty() || !slices.Contains(known, gvk) {
						t.Errorf("TypeMeta says %q, want one of %v", gvk, known)
					}
					if obj.GetName() == "" {
						t.Error("the object has no name")
					}
					wantNamespace := "tenant-acme"
					if gvk.Kind == "Namespace" {
						wantNamespace = ""
						if obj.GetName() != "tenant-acme" {
							t.Errorf("namespace is named %q, want tenant-acme", obj.GetName())
						}
					}
					if obj.GetNamespace() != wantNamespace {
						t.Errorf("namespace = %q, want %q", obj.GetNamespace(), wantNamespace)
					}
					for k, v := range Labels(tenant) {
						if got, ok := obj.GetLabels()[k]; !ok || got != v {
							t.Errorf("label %s = %q, want %q", k, got, v)
						}
					}
					if diff := cmp.Diff([]metav1.OwnerReference{wantOwner}, obj.GetOwnerReferences()); diff != "" {
						t.Errorf("owner references (-want +got):\n%s", diff)
					}
					raw, err := json.Marshal(obj)
					if err != nil {
						t.Fatal(err)
					}
					var fields map[string]any
					if err := json.Unmarshal(raw, &fields); err != nil {
						t.Fatal(err)
					}
					// Typed status structs marshal some zero fields; what
					// matters is that the builder set none.
					if status := reflect.ValueOf(obj).Elem().FieldByName("Status"); status.IsValid() && !status.IsZero() {
						t.Errorf("status is set: %+v", status.Interface())
					}
					meta := fields["metadata"].(map[string]any)
					for _, serverOwned := range []string{"creationTimestamp", "resourceVersion", "uid", "generation", "managedFields"} {
						if v, ok := meta[serverOwned]; ok {
							t.Errorf("metadata.%s is set (%v); the API server owns it", serverOwned, v)
						}
					}
				})
			}
		})
	}
}

func TestBuildersArePure(t *testing.T) {
	for name, tenant := range tenantVariants() {
		t.Run(name, func(t *testing.T) {
			first := allObjects(tenant, testProvisioned())
			second := allObjects(tenant, testProvisioned())
			if !reflect.DeepEqual(first, second) {
				t.Fatal("building twice from the same inputs gave different objects")
			}
			// Changing the inputs afterwards must not reach into the
			// objects already built: they share no memory.
			before, err := json.Marshal(first)
			if err != nil {
				t.Fatal(err)
			}
			tenant.Settings.EdgeNamespaceSelector.MatchLabels["changed"] = "yes"
			tenant.Settings.DNSPodSelector.MatchLabels["changed"] = "yes"
			tenant.Spec.Resources.Requests["cpu"] = tenant.Spec.Resources.Requests["memory"]
			if tenant.Region != nil && tenant.Region.Spec.Placement != nil {
				tenant.Region.Spec.Placement.NodeSelector["changed"] = "yes"
			}
			if tenant.Region != nil && tenant.Region.Spec.Egress != nil {
				tenant.Region.Spec.Egress.To[0].IPBlock.CIDR = "0.0.0.0/0"
			}
			after, err := json.Marshal(first)
			if err != nil {
				t.Fatal(err)
			}
			if string(before) != string(after) {
				t.Error("changing the inputs changed objects already built")
			}
		})
	}
}

func TestNamespaceName(t *testing.T) {
	tests := []struct {
		name   string
		prefix string
		want   string
	}{
		{"the default prefix makes tenant-<name>", DefaultNamespacePrefix, "tenant-acme"},
		{"another prefix is used as given", "analytics-", "analytics-acme"},
		{"an empty prefix falls back to the default, so no tenant lands in a system namespace", "", "tenant-acme"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith()
			tenant.Settings.NamespacePrefix = tt.prefix
			if got := NamespaceName(tenant); got != tt.want {
				t.Errorf("NamespaceName = %q, want %q", got, tt.want)
			}
			if got := Namespace(tenant).Name; got != tt.want {
				t.Errorf("Namespace(...).Name = %q, want %q", got, tt.want)
			}
			if got := IngestDeployment(tenant).Namespace; got != tt.want {
				t.Errorf("IngestDeployment(...).Namespace = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLabelsNameTheTenantAndItsEffectiveRegion(t *testing.T) {
	tests := []struct {
		name   string
		region v1alpha1.Region
		want   string
	}{
		{"a tenant that names no region is labelled EU", "", "EU"},
		{"a US tenant is labelled US", v1alpha1.RegionUS, "US"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith(func(a *v1alpha1.AnalyticsTenant) { a.Spec.Region = tt.region })
			want := map[string]string{
				LabelTenant:                    "acme",
				LabelRegion:                    tt.want,
				"app.kubernetes.io/managed-by": "tenant-operator",
				"app.kubernetes.io/name":       "millimetric-analytics",
			}
			if diff := cmp.Diff(want, Labels(tenant)); diff != "" {
				t.Errorf("Labels (-want +got):\n%s", diff)
			}
		})
	}
}

func TestNamespaceEnforcesRestrictedPodSecurity(t *testing.T) {
	ns := Namespace(tenantWith())
	privileged := api.LevelVersion{Level: api.LevelPrivileged, Version: api.LatestVersion()}
	policy, errs := api.PolicyToEvaluate(ns.Labels, api.Policy{Enforce: privileged, Audit: privileged, Warn: privileged})
	if len(errs) > 0 {
		t.Fatalf("the Pod Security labels do not parse: %v", errs.ToAggregate())
	}
	want := api.LevelVersion{Level: api.LevelRestricted, Version: api.LatestVersion()}
	for mode, got := range map[string]api.LevelVersion{"enforce": policy.Enforce, "audit": policy.Audit, "warn": policy.Warn} {
		if !got.Equivalent(&want) {
			t.Errorf("%s = %v, want %v", mode, got, want)
		}
	}
}
