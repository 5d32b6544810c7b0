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

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
)

// The geographic precisions a tenant may choose (AnalyticsTenant
// spec.privacy.geoPrecision).
const (
	// PrecisionCountry keeps the country only.
	PrecisionCountry = "Country"
	// PrecisionRegion keeps the country and the region.
	PrecisionRegion = "Region"
	// PrecisionCity keeps the country, the region and the city.
	PrecisionCity = "City"
)

// Policy is the tenant's settings, from its ingest ConfigMap.
type Policy struct {
	// Domains are the tenant's sites: host names ("acme.com") and
	// wildcards ("*.acme.com", every subdomain but not the apex).
	Domains []string
	// QueryParamAllowlist names the only query parameters kept, matched
	// exactly and case-sensitively, as URLs compare them.
	QueryParamAllowlist []string
	// GeoPrecision is the finest location kept: PrecisionCountry,
	// PrecisionRegion or PrecisionCity. Any other value keeps the country
	// only, so a broken config errs towards privacy; Validate reports it.
	GeoPrecision string
	// RespectGlobalPrivacyControl drops every event whose request carries
	// the browser's Global Privacy Control signal (Sec-GPC: 1).
	RespectGlobalPrivacyControl bool
}

// Validate reports settings Reduce would have to guess about, so the
// ingest service can refuse to start on them rather than guess on every
// event.
func (p Policy) Validate() error {
	var errs []error
	if len(p.Domains) == 0 {
		errs = append(errs, errors.New("no domains: every event would be refused"))
	}
	for _, d := range p.Domains {
		if n := normalizeHost(d); n == "" || n == "*" {
			errs = append(errs, fmt.Errorf("domain %q names no host", d))
		}
	}
	switch p.GeoPrecision {
	case PrecisionCountry, PrecisionRegion, PrecisionCity:
	default:
		errs = append(errs, fmt.Errorf("geo precision %q is not %s, %s or %s",
			p.GeoPrecision, PrecisionCountry, PrecisionRegion, PrecisionCity))
	}
	return errors.Join(errs...)
}

// AllowsDomain says whether host is one of the tenant's domains or matches
// one of its wildcards: "*.acme.com" matches "shop.acme.com" and
// "a.b.acme.com" but not "acme.com", which the tenant lists on its own
// when it wants it. A leading "www." does not count against a listed
// domain, on either side, as Plausible strips it from both: "acme.com"
// allows "www.acme.com", and "www.acme.com" allows "acme.com"; a wildcard
// is matched by the host as sent ("www.acme.com" is under "*.acme.com").
// host may be a domain or an Origin's host; a full Origin
// ("https://shop.acme.com:8443") is accepted too, for CORS. Comparison is
// case-insensitive, and a trailing dot and a port are ignored, because
// browsers and servers spell the same host those ways.
func (p Policy) AllowsDomain(host string) bool {
	h := normalizeHost(host)
	if h == "" || strings.Contains(h, "*") {
		// A host is never a pattern: "*.acme.com" sent as a domain is not
		// a subdomain of acme.com.
		return false
	}
	bare := withoutWWW(h)
	for _, d := range p.Domains {
		d = normalizeHost(d)
		if parent, ok := strings.CutPrefix(d, "*."); ok {
			sub, ok := strings.CutSuffix(h, "."+parent)
			if ok && parent != "" && sub != "" && !strings.HasSuffix(sub, ".") {
				return true
			}
			continue
		}
		if h == d || bare != "" && bare == withoutWWW(d) {
			return true
		}
	}
	return false
}

// withoutWWW is host without a leading "www.", as Plausible compares a
// site's domains.
func withoutWWW(host string) string { return strings.TrimPrefix(host, "www.") }

// normalizeHost reduces a domain, host, host:port or origin to the lower
// case host name without port, brackets or trailing dot.
func normalizeHost(s string) string {
	s = strings.TrimSpace(s)
	if _, rest, ok := strings.Cut(s, "://"); ok {
		s = rest
		if i := strings.IndexAny(s, "/?#"); i >= 0 {
			s = s[:i]
		}
		if i := strings.LastIndexByte(s, '@'); i >= 0 {
			s = s[i+1:]
		}
	}
	if h, _, err := net.SplitHostPort(s); err == nil {
		s = h
	} else {
		s = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]")
	}
	return strings.ToLower(strings.TrimSuffix(s, "."))
}

// precise keeps of loc what the tenant's precision allows.
func (p Policy) precise(loc Location) Location {
	switch p.GeoPrecision {
	case PrecisionCity:
		return loc
	case PrecisionRegion:
		return Location{Country: loc.Country, Region: loc.Region}
	default:
		return Location{Country: loc.Country}
	}
}

// allowsParam says whether the query parameter named key is kept.
func (p Policy) allowsParam(key string) bool {
	return slices.Contains(p.QueryParamAllowlist, key)
}
