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
	"errors"
	"fmt"
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// The paths of ingest's public port that a route forwards, and no other:
// the event API and the SDK's directory. internal/ingest/server serves
// them (a test keeps the two equal); its probes and metrics are on
// another port, which no route names.
const (
	// IngestEventPath is the event API, matched exactly.
	IngestEventPath = "/api/event"
	// IngestScriptPathPrefix is the SDK's directory (mm.js and its
	// versioned copies), matched as a path prefix.
	IngestScriptPathPrefix = "/js/"
)

// IngestRouteName names the tenant's HTTPRoute.
const IngestRouteName = IngestName

// GatewayRef is the platform Gateway every tenant's HTTPRoute attaches to
// (--ingest-gateway=<namespace>/<name>[/<sectionName>]).
type GatewayRef struct {
	Namespace string
	Name      string
	// SectionName is the Gateway's listener the routes attach to; empty
	// means every listener that admits them.
	SectionName string
}

// String is the reference as --ingest-gateway spells it.
func (g GatewayRef) String() string {
	s := g.Namespace + "/" + g.Name
	if g.SectionName != "" {
		s += "/" + g.SectionName
	}
	return s
}

// ParentRef is the reference an HTTPRoute's parentRefs and its status's
// parents name the Gateway by.
func (g GatewayRef) ParentRef() gatewayv1.ParentReference {
	ref := gatewayv1.ParentReference{
		Group:     ptr.To(gatewayv1.Group(gatewayv1.GroupName)),
		Kind:      ptr.To(gatewayv1.Kind("Gateway")),
		Namespace: ptr.To(gatewayv1.Namespace(g.Namespace)),
		Name:      gatewayv1.ObjectName(g.Name),
	}
	if g.SectionName != "" {
		ref.SectionName = ptr.To(gatewayv1.SectionName(g.SectionName))
	}
	return ref
}

// ParseGatewayRef parses --ingest-gateway: "" is no gateway (nil), else
// <namespace>/<name>[/<sectionName>], each part a valid name of its kind.
func ParseGatewayRef(s string) (*GatewayRef, error) {
	if s == "" {
		return nil, nil
	}
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return nil, fmt.Errorf("%q is not <namespace>/<name>[/<sectionName>]", s)
	}
	g := &GatewayRef{Namespace: parts[0], Name: parts[1]}
	if len(parts) == 3 {
		g.SectionName = parts[2]
	}
	if errs := validation.IsDNS1123Label(g.Namespace); len(errs) > 0 {
		return nil, fmt.Errorf("namespace %q of %q: %s", g.Namespace, s, strings.Join(errs, "; "))
	}
	if errs := validation.IsDNS1123Subdomain(g.Name); len(errs) > 0 {
		return nil, fmt.Errorf("name %q of %q: %s", g.Name, s, strings.Join(errs, "; "))
	}
	if len(parts) == 3 {
		if errs := validation.IsDNS1123Subdomain(g.SectionName); len(errs) > 0 || len(g.SectionName) > 253 {
			return nil, fmt.Errorf("section name %q of %q: %s", g.SectionName, s, strings.Join(errs, "; "))
		}
	}
	return g, nil
}

// CheckRouting is what the operator refuses to start with: a gateway
// without the domain its default hostnames are made under, or without the
// proxies ingest may believe a visitor's address from. Behind a gateway,
// every request's peer is the gateway's pod: trusting no proxy would make
// every visitor that pod, one rate limit for the whole site and the
// gateway's location for every event.
func (s Settings) CheckRouting() error {
	if s.IngestGateway == nil {
		return nil
	}
	var errs []error
	if s.IngestDomain == "" {
		errs = append(errs, errors.New("--ingest-gateway is set but --ingest-domain is empty: each tenant's route needs its default hostname <tenant>.<ingest-domain>"))
	}
	if len(s.IngestTrustedProxies) == 0 {
		errs = append(errs, errors.New("--ingest-gateway is set but --ingest-trusted-proxies is empty: behind a gateway every request comes from the gateway's pods, so ingest would rate-limit and locate every visitor as the gateway; "+
			"list the gateway pods' range (and, behind Cloudflare, Cloudflare's published ranges)"))
	}
	return errors.Join(errs...)
}

// CheckIngestDomain refuses an --ingest-domain that is not a lowercase DNS
// name: it becomes part of every tenant's hostname.
func CheckIngestDomain(domain string) error {
	if domain == "" {
		return nil
	}
	if errs := validation.IsDNS1123Subdomain(domain); len(errs) > 0 {
		return fmt.Errorf("%q is not a DNS name: %s", domain, strings.Join(errs, "; "))
	}
	return nil
}

// DefaultHostname is the tenant's own hostname under the operator's ingest
// domain, <tenant>.<ingest-domain>; "" without an ingest domain.
func DefaultHostname(t Tenant) string {
	if t.Settings.IngestDomain == "" {
		return ""
	}
	return t.Object.Name + "." + t.Settings.IngestDomain
}

// IngestURL is where the tenant's SDK and event API are reached from
// outside: https on its default hostname; "" when routes are not rendered
// (no gateway, or no ingest domain).
func IngestURL(t Tenant) string {
	if t.Settings.IngestGateway == nil || DefaultHostname(t) == "" {
		return ""
	}
	return "https://" + DefaultHostname(t)
}

// UnderIngestDomain says whether a hostname is the ingest domain or one of
// its subdomains: those are the tenants' default hostnames, which no
// tenant may claim in its spec (another tenant's default would be taken).
func UnderIngestDomain(t Tenant, hostname string) bool {
	d := t.Settings.IngestDomain
	return d != "" && (hostname == d || strings.HasSuffix(hostname, "."+d))
}

// IngestHTTPRoute attaches the tenant's ingest Service to the platform
// Gateway (Settings.IngestGateway) under hostnames: the tenant's default
// hostname and the extra ones the reconciler let it have, sorted. Only the
// event API (IngestEventPath, exactly) and the SDK (under
// IngestScriptPathPrefix) are forwarded; every other path of the
// hostnames is not routed at all. Nil without a gateway or without a
// hostname: a route without hostnames would take every host's traffic.
func IngestHTTPRoute(t Tenant, hostnames []string) *gatewayv1.HTTPRoute {
	if t.Settings.IngestGateway == nil || len(hostnames) == 0 {
		return nil
	}
	hosts := make([]gatewayv1.Hostname, 0, len(hostnames))
	for _, h := range slices.Compact(slices.Sorted(slices.Values(hostnames))) {
		hosts = append(hosts, gatewayv1.Hostname(h))
	}
	match := func(kind gatewayv1.PathMatchType, path string) gatewayv1.HTTPRouteMatch {
		return gatewayv1.HTTPRouteMatch{Path: &gatewayv1.HTTPPathMatch{Type: ptr.To(kind), Value: ptr.To(path)}}
	}
	return &gatewayv1.HTTPRoute{
		TypeMeta:   metav1.TypeMeta{APIVersion: gatewayv1.GroupVersion.String(), Kind: "HTTPRoute"},
		ObjectMeta: objectMeta(t, IngestRouteName, componentLabels(t, ComponentIngest)),
		Spec: gatewayv1.HTTPRouteSpec{
			CommonRouteSpec: gatewayv1.CommonRouteSpec{ParentRefs: []gatewayv1.ParentReference{t.Settings.IngestGateway.ParentRef()}},
			Hostnames:       hosts,
			Rules: []gatewayv1.HTTPRouteRule{{
				Matches: []gatewayv1.HTTPRouteMatch{
					match(gatewayv1.PathMatchExact, IngestEventPath),
					match(gatewayv1.PathMatchPathPrefix, IngestScriptPathPrefix),
				},
				BackendRefs: []gatewayv1.HTTPBackendRef{{BackendRef: gatewayv1.BackendRef{BackendObjectReference: gatewayv1.BackendObjectReference{
					Group: ptr.To(gatewayv1.Group("")),
					Kind:  ptr.To(gatewayv1.Kind("Service")),
					Name:  gatewayv1.ObjectName(IngestName),
					Port:  ptr.To(gatewayv1.PortNumber(IngestServicePort)),
				},
					// The CRD's default, stated: the API server would
					// default it into our apply and our managed fields, and
					// an intent without it would never match them.
					Weight: ptr.To[int32](1),
				}}},
			}},
		},
	}
}
