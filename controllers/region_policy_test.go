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

package controllers

import (
	"testing"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

func TestTheRegionPolicyDecidesWhichSecretsAndSSLModesARegionMayUse(t *testing.T) {
	region := func(ns string, mode analyticsv1alpha1.SSLMode) *analyticsv1alpha1.StorageRegion {
		return &analyticsv1alpha1.StorageRegion{Spec: analyticsv1alpha1.StorageRegionSpec{Postgres: analyticsv1alpha1.PostgresSpec{
			Host: "pg", Database: "events", SSLMode: mode,
			AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: ns, Name: "admin"},
		}}}
	}
	strict := RegionPolicy{AllowedSecretNamespace: "millimetric-system"}
	local := RegionPolicy{AllowedSecretNamespace: "millimetric-system", AllowInsecure: true}
	tests := []struct {
		name   string
		policy RegionPolicy
		region *analyticsv1alpha1.StorageRegion
		want   string // reason; "" allowed
	}{
		{"a Secret in the operator's namespace with verify-full is allowed", strict, region("millimetric-system", analyticsv1alpha1.SSLModeVerifyFull), ""},
		{"an unset sslMode means verify-full and is allowed", strict, region("millimetric-system", ""), ""},
		{"verify-ca is allowed", strict, region("millimetric-system", analyticsv1alpha1.SSLModeVerifyCA), ""},
		{"require, which checks no certificate, is refused by default", strict, region("millimetric-system", analyticsv1alpha1.SSLModeRequire), analyticsv1alpha1.ReasonInsecureConnection},
		{"require is allowed with --allow-insecure-storage", local, region("millimetric-system", analyticsv1alpha1.SSLModeRequire), ""},
		{"a Secret in another namespace is refused", strict, region("kube-system", analyticsv1alpha1.SSLModeVerifyFull), analyticsv1alpha1.ReasonSecretNotAllowed},
		{"a Secret in another namespace is refused even when insecure storage is allowed", local, region("default", analyticsv1alpha1.SSLModeDisable), analyticsv1alpha1.ReasonSecretNotAllowed},
		{"sslMode disable is refused by default", strict, region("millimetric-system", analyticsv1alpha1.SSLModeDisable), analyticsv1alpha1.ReasonInsecureConnection},
		{"sslMode disable is allowed with --allow-insecure-storage", local, region("millimetric-system", analyticsv1alpha1.SSLModeDisable), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.policy.admit(tt.region)
			switch {
			case tt.want == "" && got != nil:
				t.Errorf("refused (%s): %s", got.reason, got.msg)
			case tt.want != "" && got == nil:
				t.Errorf("allowed, want %s", tt.want)
			case tt.want != "" && got.reason != tt.want:
				t.Errorf("reason %s, want %s", got.reason, tt.want)
			}
		})
	}
}
