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

package config_test

import (
	"slices"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/ingest/config"
	"github.com/millimetric/tenant-operator/internal/render"
)

// The operator renders the file and the service reads it: this test holds
// both sides of that contract together.
func TestTheServiceReadsTheConfigurationTheOperatorRenders(t *testing.T) {
	obj := &v1alpha1.AnalyticsTenant{
		ObjectMeta: metav1.ObjectMeta{Name: "acme", UID: "u-1"},
		Spec: v1alpha1.AnalyticsTenantSpec{
			Region:  v1alpha1.RegionUS,
			Domains: []v1alpha1.Domain{"acme.com", "*.acme.com"},
			Ingest:  &v1alpha1.IngestSpec{RateLimit: &v1alpha1.RateLimitSpec{EventsPerMinutePerIP: 120}},
			Privacy: &v1alpha1.PrivacySpec{QueryParamAllowlist: []v1alpha1.QueryParam{"utm_source", "ref"}, GeoPrecision: v1alpha1.GeoPrecisionCountry},
		},
	}
	cm := render.IngestConfigMap(render.Tenant{Object: obj, Spec: obj.Spec.Effective(), Settings: render.DefaultSettings()})
	got, err := config.Parse([]byte(cm.Data[render.IngestConfigKey]))
	if err != nil {
		t.Fatalf("the rendered configuration does not parse: %v\n%s", err, cm.Data[render.IngestConfigKey])
	}
	if got.Tenant != "acme" || got.Region != "US" || got.GeoPrecision != "Country" || got.RateLimit.EventsPerMinutePerIP != 120 {
		t.Errorf("parsed %+v", got)
	}
	if !slices.Equal(got.Domains, []string{"*.acme.com", "acme.com"}) || !slices.Equal(got.QueryParamAllowlist, []string{"ref", "utm_source"}) {
		t.Errorf("domains %v, allowlist %v", got.Domains, got.QueryParamAllowlist)
	}
	if !got.Policy().AllowsDomain("shop.acme.com") {
		t.Error("the policy does not allow the tenant's wildcard")
	}
}

func TestABadConfigurationIsRefusedWithWhatIsWrong(t *testing.T) {
	tests := []struct {
		name, file, want string
	}{
		{"an unknown field is refused, not ignored", `{"tenant":"a","domains":["a.com"],"geoPrecision":"City","storeIPAdress":false}`, `unknown field "storeIPAdress"`},
		{"storing IP addresses is refused", `{"tenant":"a","domains":["a.com"],"geoPrecision":"City","storeIPAddress":true}`, "IP addresses are never stored"},
		{"no domains is refused", `{"tenant":"a","domains":[],"geoPrecision":"City"}`, "no domains"},
		{"an unknown precision is refused", `{"tenant":"a","domains":["a.com"],"geoPrecision":"Street"}`, `geo precision "Street"`},
		{"a negative rate limit is refused", `{"tenant":"a","domains":["a.com"],"geoPrecision":"City","rateLimit":{"eventsPerMinutePerIP":-1}}`, "is negative"},
		{"two documents are refused", `{"tenant":"a","domains":["a.com"],"geoPrecision":"City"} {}`, "more than one JSON value"},
		{"not JSON is refused", `tenant: a`, "not a valid ingest configuration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := config.Parse([]byte(tc.file))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want it to say %q", err, tc.want)
			}
		})
	}
}
