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
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/yaml"
)

// configPolicy is config/admission's policy and binding.
func configPolicy(t *testing.T) (admissionregistrationv1.ValidatingAdmissionPolicy, admissionregistrationv1.ValidatingAdmissionPolicyBinding) {
	t.Helper()
	var policy admissionregistrationv1.ValidatingAdmissionPolicy
	var binding admissionregistrationv1.ValidatingAdmissionPolicyBinding
	for file, into := range map[string]any{"policy.yaml": &policy, "binding.yaml": &binding} {
		docs := readDocs(t, filepath.Join(configDir, "admission", file))
		if len(docs) != 1 {
			t.Fatalf("config/admission/%s holds %d objects, want 1", file, len(docs))
		}
		b, err := yaml.Marshal(docs[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := yaml.UnmarshalStrict(b, into); err != nil {
			t.Fatalf("config/admission/%s: %v", file, err)
		}
	}
	return policy, binding
}

// withIdentity is the policy with the ServiceAccount, the system
// namespace and the tenant namespace prefix it is for set.
func withIdentity(p admissionregistrationv1.ValidatingAdmissionPolicy, user, namespace, prefix string) admissionregistrationv1.ValidatingAdmissionPolicySpec {
	spec := *p.Spec.DeepCopy()
	for i := range spec.MatchConditions {
		if spec.MatchConditions[i].Name == "the-operators-service-account" {
			spec.MatchConditions[i].Expression = "request.userInfo.username == '" + user + "'"
		}
	}
	for i := range spec.Variables {
		switch spec.Variables[i].Name {
		case "systemNamespace":
			spec.Variables[i].Expression = "'" + namespace + "'"
		case "namespacePrefix":
			spec.Variables[i].Expression = "'" + prefix + "'"
		}
	}
	return spec
}

func TestChartAdmissionPolicyIsConfigAdmissionsForItsRelease(t *testing.T) {
	policy, binding := configPolicy(t)
	if got := withIdentity(policy, "system:serviceaccount:millimetric-system:tenant-operator-controller-manager", "millimetric-system", "tenant-"); !cmp.Equal(got, policy.Spec) {
		t.Fatalf("config/admission's policy is not for config/default's ServiceAccount, namespace and prefix:\n%s", cmp.Diff(policy.Spec, got))
	}
	tests := []struct {
		name                    string
		release, namespace      string
		args                    []string
		user, system, prefix    string
		wantPolicy, wantBinding string
	}{
		{"by default, for the release's ServiceAccount and namespace and the prefix tenant-",
			release, namespace, nil,
			"system:serviceaccount:millimetric-system:tenant-operator", "millimetric-system", "tenant-",
			"tenant-operator-writes", "tenant-operator-writes"},
		{"for another release, namespace, ServiceAccount and prefix",
			"shard-b", "analytics", set("serviceAccount.name=operator-b", "tenants.namespacePrefix=b-"),
			"system:serviceaccount:analytics:operator-b", "analytics", "b-",
			"shard-b-tenant-operator-writes", "shard-b-tenant-operator-writes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := templateChartIn(t, tt.release, tt.namespace, tt.args...)
			if err != nil {
				t.Fatal(err)
			}
			var gotPolicy admissionregistrationv1.ValidatingAdmissionPolicy
			var gotBinding admissionregistrationv1.ValidatingAdmissionPolicyBinding
			m.get(t, "ValidatingAdmissionPolicy", tt.wantPolicy, &gotPolicy)
			m.get(t, "ValidatingAdmissionPolicyBinding", tt.wantBinding, &gotBinding)
			if diff := cmp.Diff(withIdentity(policy, tt.user, tt.system, tt.prefix), gotPolicy.Spec); diff != "" {
				t.Errorf("the chart's policy is not config/admission's for %s (-want +chart); run `make chart-sync`:\n%s", tt.user, diff)
			}
			want := *binding.Spec.DeepCopy()
			want.PolicyName = tt.wantPolicy
			if diff := cmp.Diff(want, gotBinding.Spec); diff != "" {
				t.Errorf("the chart's binding is not config/admission's (-want +chart):\n%s", diff)
			}
		})
	}
	t.Run("admissionPolicy.enabled=false renders neither", func(t *testing.T) {
		m := render(t, set("admissionPolicy.enabled=false")...)
		if n := len(m.ofKind("ValidatingAdmissionPolicy")) + len(m.ofKind("ValidatingAdmissionPolicyBinding")); n != 0 {
			t.Errorf("admissionPolicy.enabled=false still renders %d policy objects", n)
		}
	})
}
