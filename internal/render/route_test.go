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
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	"github.com/millimetric/tenant-operator/internal/ingest/server"
)

// routed is tenantWith behind Gateway edge/public on listener https, under
// ingest.millimetric.example.
func routed() Tenant {
	t := tenantWith()
	t.Settings.IngestGateway = &GatewayRef{Namespace: "edge", Name: "public", SectionName: "https"}
	t.Settings.IngestDomain = "ingest.millimetric.example"
	t.Settings.IngestTrustedProxies = []string{"10.0.0.0/8"}
	return t
}

func TestTheRouteForwardsOnlyTheEventAPIAndTheSDKOfItsHostnamesToTheIngestService(t *testing.T) {
	tenant := routed()
	route := IngestHTTPRoute(tenant, []string{"stats.acme.com", DefaultHostname(tenant), "stats.acme.com"})
	if route == nil {
		t.Fatal("no route")
	}
	if route.Namespace != "tenant-acme" || route.Name != "ingest" {
		t.Errorf("route %s/%s, want tenant-acme/ingest", route.Namespace, route.Name)
	}
	if diff := cmp.Diff([]metav1.OwnerReference{ownerReference(tenant)}, route.OwnerReferences); diff != "" {
		t.Errorf("owner (-want +got):\n%s", diff)
	}
	if route.Labels[LabelManagedBy] != ManagedBy || route.Labels[LabelTenant] != "acme" {
		t.Errorf("labels %v lack the managed-by and tenant labels the cache selects children by", route.Labels)
	}
	wantParent := gatewayv1.ParentReference{
		Group: ptr.To(gatewayv1.Group("gateway.networking.k8s.io")), Kind: ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace("edge")), Name: "public", SectionName: ptr.To(gatewayv1.SectionName("https")),
	}
	if diff := cmp.Diff([]gatewayv1.ParentReference{wantParent}, route.Spec.ParentRefs); diff != "" {
		t.Errorf("parentRefs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]gatewayv1.Hostname{"acme.ingest.millimetric.example", "stats.acme.com"}, route.Spec.Hostnames); diff != "" {
		t.Errorf("hostnames, sorted and once each (-want +got):\n%s", diff)
	}
	if len(route.Spec.Rules) != 1 {
		t.Fatalf("%d rules, want 1", len(route.Spec.Rules))
	}
	rule := route.Spec.Rules[0]
	wantMatches := []gatewayv1.HTTPRouteMatch{
		{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchExact), Value: ptr.To("/api/event")}},
		{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(gatewayv1.PathMatchPathPrefix), Value: ptr.To("/js/")}},
	}
	if diff := cmp.Diff(wantMatches, rule.Matches); diff != "" {
		t.Errorf("matches: only the event API and the SDK (-want +got):\n%s", diff)
	}
	wantBackend := []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
		Group: ptr.To(gatewayv1.Group("")), Kind: ptr.To(gatewayv1.Kind("Service")), Name: "ingest", Port: ptr.To(gatewayv1.PortNumber(80)),
	}, Weight: ptr.To[int32](1)}}}
	if diff := cmp.Diff(wantBackend, rule.BackendRefs); diff != "" {
		t.Errorf("backend: the ingest Service's port (-want +got):\n%s", diff)
	}
	svc := IngestService(tenant)
	if string(rule.BackendRefs[0].Name) != svc.Name || *rule.BackendRefs[0].Port != svc.Spec.Ports[0].Port {
		t.Errorf("the backend is not the ingest Service %s:%d", svc.Name, svc.Spec.Ports[0].Port)
	}
	if got := IngestURL(tenant); got != "https://acme.ingest.millimetric.example" {
		t.Errorf("IngestURL = %q", got)
	}
}

func TestTheRoutedPathsAreTheOnesIngestServesPublicly(t *testing.T) {
	if IngestEventPath != "/api/event" {
		t.Errorf("IngestEventPath %q is not the event API ingest serves", IngestEventPath)
	}
	if !strings.HasPrefix(server.ScriptPath, IngestScriptPathPrefix) {
		t.Errorf("the SDK %s is not under the routed prefix %s", server.ScriptPath, IngestScriptPathPrefix)
	}
}

func TestNoRouteIsRenderedThatCouldTakeOtherHostsTraffic(t *testing.T) {
	if r := IngestHTTPRoute(tenantWith(), []string{"acme.example"}); r != nil {
		t.Error("a route without a gateway configured")
	}
	if r := IngestHTTPRoute(routed(), nil); r != nil {
		t.Error("a route without hostnames, which would match every host")
	}
	noDomain := routed()
	noDomain.Settings.IngestDomain = ""
	if DefaultHostname(noDomain) != "" || IngestURL(noDomain) != "" {
		t.Error("a default hostname without an ingest domain")
	}
}

func TestParseGatewayRef(t *testing.T) {
	tests := []struct {
		in      string
		want    *GatewayRef
		wantErr bool
	}{
		{"", nil, false},
		{"edge/public", &GatewayRef{Namespace: "edge", Name: "public"}, false},
		{"edge/public/https", &GatewayRef{Namespace: "edge", Name: "public", SectionName: "https"}, false},
		{"public", nil, true},
		{"edge/public/https/more", nil, true},
		{"Edge/public", nil, true},
		{"edge/", nil, true},
		{"edge/public/", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseGatewayRef(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tt.wantErr)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
			if got != nil && got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestAGatewayWithoutTrustedProxiesOrADomainIsRefused(t *testing.T) {
	tests := []struct {
		name   string
		change func(*Settings)
		want   []string
	}{
		{"a gateway with trusted proxies and a domain is accepted", func(*Settings) {}, nil},
		{"no gateway needs neither", func(s *Settings) { s.IngestGateway, s.IngestDomain, s.IngestTrustedProxies = nil, "", nil }, nil},
		{"a gateway without trusted proxies is refused", func(s *Settings) { s.IngestTrustedProxies = nil }, []string{"--ingest-trusted-proxies is empty"}},
		{"a gateway without a domain is refused", func(s *Settings) { s.IngestDomain = "" }, []string{"--ingest-domain is empty"}},
		{"a gateway without either is refused for both", func(s *Settings) { s.IngestDomain, s.IngestTrustedProxies = "", nil },
			[]string{"--ingest-domain is empty", "--ingest-trusted-proxies is empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := routed().Settings
			tt.change(&s)
			err := s.CheckRouting()
			if (err != nil) != (len(tt.want) > 0) {
				t.Fatalf("err = %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not say %q", err, w)
				}
			}
		})
	}
}

func TestTheGatewaysNamespacesReachIngestsPublicPortOnly(t *testing.T) {
	tenant := routed()
	tenant.Settings.GatewayNamespaceSelector = metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "edge"}}
	rules := policiesByName(t, tenant)["ingest"].Spec.Ingress
	want := networkingv1.NetworkPolicyIngressRule{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{corev1.LabelMetadataName: "edge"}}}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(IngestPort)},
	}
	if !slices.ContainsFunc(rules, func(r networkingv1.NetworkPolicyIngressRule) bool { return cmp.Diff(want, r) == "" }) {
		t.Errorf("no rule lets the gateway's namespace reach port %d: %v", IngestPort, rules)
	}
	tenant.Settings.GatewayNamespaceSelector = metav1.LabelSelector{}
	if got := policiesByName(t, tenant)["ingest"].Spec.Ingress; len(got) != len(rules)-1 {
		t.Errorf("an empty gateway selector, which would match every namespace, still admits: %v", got)
	}
}

func TestIngestReadsCFConnectingIPOnlyWhenTheOperatorSaysSo(t *testing.T) {
	tenant := routed()
	if slices.Contains(IngestArgs(tenant), "--cf-connecting-ip") {
		t.Error("--cf-connecting-ip without --ingest-cf-connecting-ip")
	}
	tenant.Settings.IngestCFConnectingIP = true
	if !slices.Contains(IngestArgs(tenant), "--cf-connecting-ip") {
		t.Errorf("no --cf-connecting-ip in %v", IngestArgs(tenant))
	}
}
