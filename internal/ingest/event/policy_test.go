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

package event

import "testing"

func TestAllowsDomain(t *testing.T) {
	p := Policy{Domains: []string{"acme.com", "*.acme.com", "Beta.Example.ORG."}}
	tests := []struct {
		name string
		host string
		want bool
	}{
		{name: "a listed domain is allowed", host: "acme.com", want: true},
		{name: "a listed domain in upper case is allowed", host: "ACME.COM", want: true},
		{name: "a trailing dot is ignored", host: "acme.com.", want: true},
		{name: "a port is ignored", host: "acme.com:8443", want: true},
		{name: "an Origin is reduced to its host", host: "https://shop.acme.com:8443", want: true},
		{name: "a wildcard matches a subdomain", host: "shop.acme.com", want: true},
		{name: "a wildcard matches a deeper subdomain", host: "a.b.acme.com", want: true},
		{name: "a listed domain written in upper case with a dot matches", host: "beta.example.org", want: true},
		{name: "the wildcard alone does not match the apex of an unlisted domain", host: "example.org"},
		{name: "a domain that only ends like a listed one is refused", host: "notacme.com"},
		{name: "a listed domain as a prefix is refused", host: "acme.com.evil.com"},
		{name: "an empty label before the parent is refused", host: ".acme.com"},
		{name: "a double dot before the parent is refused", host: "a..acme.com"},
		{name: "an empty host is refused", host: ""},
		{name: "a wildcard sent as a host is refused", host: "*.acme.com"},
		{name: "another domain is refused", host: "evil.com"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.AllowsDomain(tt.host); got != tt.want {
				t.Errorf("AllowsDomain(%q) = %v, want %v", tt.host, got, tt.want)
			}
		})
	}

	t.Run("a wildcard does not match its apex", func(t *testing.T) {
		p := Policy{Domains: []string{"*.acme.com"}}
		if p.AllowsDomain("acme.com") {
			t.Error("*.acme.com allowed acme.com")
		}
		if !p.AllowsDomain("shop.acme.com") {
			t.Error("*.acme.com refused shop.acme.com")
		}
	})
	t.Run("a leading www. does not count, on either side, as Plausible has it", func(t *testing.T) {
		bare := Policy{Domains: []string{"acme.com"}}
		www := Policy{Domains: []string{"www.acme.com"}}
		for _, tc := range []struct {
			p    Policy
			host string
			want bool
		}{
			{bare, "www.acme.com", true},
			{bare, "https://www.acme.com", true},
			{www, "acme.com", true},
			{www, "www.acme.com", true},
			{bare, "www.www.acme.com", false},
			{bare, "wwwacme.com", false},
			{bare, "www.notacme.com", false},
			{Policy{Domains: []string{"*.acme.com"}}, "www.acme.com", true},
			{Policy{Domains: []string{"*.www.acme.com"}}, "acme.com", false},
		} {
			if got := tc.p.AllowsDomain(tc.host); got != tc.want {
				t.Errorf("%v allows %q: %v, want %v", tc.p.Domains, tc.host, got, tc.want)
			}
		}
	})
	t.Run("a tenant with no domains allows nothing", func(t *testing.T) {
		if (Policy{}).AllowsDomain("acme.com") {
			t.Error("an empty policy allowed acme.com")
		}
	})
}

func TestPolicyValidate(t *testing.T) {
	tests := []struct {
		name    string
		policy  Policy
		wantErr bool
	}{
		{name: "a policy with domains and a known precision is valid", policy: Policy{Domains: []string{"acme.com"}, GeoPrecision: PrecisionRegion}},
		{name: "a policy without domains is invalid", policy: Policy{GeoPrecision: PrecisionCity}, wantErr: true},
		{name: "a policy with an empty domain is invalid", policy: Policy{Domains: []string{" "}, GeoPrecision: PrecisionCity}, wantErr: true},
		{name: "a policy with a bare wildcard is invalid", policy: Policy{Domains: []string{"*."}, GeoPrecision: PrecisionCity}, wantErr: true},
		{name: "a policy with an unknown precision is invalid", policy: Policy{Domains: []string{"acme.com"}, GeoPrecision: "city"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.policy.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate() = %v, want error: %v", err, tt.wantErr)
			}
		})
	}
}
