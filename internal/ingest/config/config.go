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

// Package config reads the ingest service's configuration: the tenant's
// settings from the JSON file the operator renders into the tenant's
// ingest-config ConfigMap (render.IngestConfigMap), and the storage
// credentials from the libpq environment variables the operator sets from
// the tenant's ingest-credentials Secret.
//
// The file is read strictly: an unknown field is an error, never a setting
// silently ignored, since the operator and the ingest image are released
// together and a field one of them does not know means they disagree.
package config

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
)

// Tenant is the content of the ingest configuration file.
type Tenant struct {
	// Tenant is the AnalyticsTenant's name.
	Tenant string `json:"tenant"`
	// Region is the tenant's storage region (EU or US).
	Region string `json:"region"`
	// Domains are the tenant's domains and wildcards ("*.acme.com").
	Domains []string `json:"domains"`
	// QueryParamAllowlist names the only query parameters kept.
	QueryParamAllowlist []string `json:"queryParamAllowlist"`
	// GeoPrecision is Country, Region or City.
	GeoPrecision string `json:"geoPrecision"`
	// RespectGlobalPrivacyControl drops events from browsers that send
	// Global Privacy Control, and selects the SDK build that sends none.
	RespectGlobalPrivacyControl bool `json:"respectGlobalPrivacyControl"`
	// RateLimit bounds what one client (an IPv4 address, an IPv6 /64) may
	// send.
	RateLimit RateLimit `json:"rateLimit"`
	// StoreIPAddress must be false: the service refuses to start otherwise,
	// as it has no way to keep an address and the policy forbids it.
	StoreIPAddress bool `json:"storeIPAddress"`
}

// RateLimit is the per-client rate limit (ratelimit.Limiter).
type RateLimit struct {
	// EventsPerMinutePerIP is how many events one client (an IPv4
	// address, an IPv6 /64) may send per minute; 0 means no limit.
	EventsPerMinutePerIP int32 `json:"eventsPerMinutePerIP"`
}

// Policy is the part of the configuration that decides what is kept of an
// event.
func (t Tenant) Policy() event.Policy {
	return event.Policy{
		Domains:             slices.Clone(t.Domains),
		QueryParamAllowlist: slices.Clone(t.QueryParamAllowlist),
		GeoPrecision:        t.GeoPrecision,

		RespectGlobalPrivacyControl: t.RespectGlobalPrivacyControl,
	}
}

// EnvVisitorKey is the environment variable that holds the tenant's
// visitor key, hex-encoded: the operator sets it from the tenant's
// ingest-credentials Secret, like the storage credentials.
const EnvVisitorKey = "INGEST_VISITOR_KEY"

// VisitorKeyFromEnv reads the tenant's visitor key (EnvVisitorKey). Its
// errors never quote the value.
func VisitorKeyFromEnv(getenv func(string) string) ([]byte, error) {
	v := strings.TrimSpace(getenv(EnvVisitorKey))
	if v == "" {
		return nil, fmt.Errorf("%s is not set: it holds the tenant's visitor key, from its ingest Secret", EnvVisitorKey)
	}
	key, err := hex.DecodeString(v)
	if err != nil {
		return nil, fmt.Errorf("%s is not hexadecimal", EnvVisitorKey)
	}
	if err := event.CheckVisitorKey(key); err != nil {
		return nil, fmt.Errorf("%s: %w", EnvVisitorKey, err)
	}
	return key, nil
}

// Load reads and checks the configuration file at path.
func Load(path string) (Tenant, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Tenant{}, fmt.Errorf("reading the configuration: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return Tenant{}, fmt.Errorf("configuration %s: %w", path, err)
	}
	return t, nil
}

// Parse decodes and checks a configuration file's content.
func Parse(data []byte) (Tenant, error) {
	var t Tenant
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&t); err != nil {
		return Tenant{}, fmt.Errorf("not a valid ingest configuration: %w", err)
	}
	if dec.More() {
		return Tenant{}, errors.New("not a valid ingest configuration: more than one JSON value")
	}
	return t, t.validate()
}

// ParseTrustedProxies parses the comma-separated CIDR list of the
// proxies (the Gateway's pods, the edge) whose forwarding headers ingest
// believes (server.Options.TrustedProxies): the ingest
// service's --trusted-proxies and the operator's --ingest-trusted-proxies,
// which renders into it. Host bits are cleared; an empty list trusts no
// proxy. A bare address or an empty item is refused rather than guessed at.
func ParseTrustedProxies(list string) ([]netip.Prefix, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	var out []netip.Prefix
	for item := range strings.SplitSeq(list, ",") {
		item = strings.TrimSpace(item)
		prefix, err := netip.ParsePrefix(item)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR such as 10.0.0.0/8 or fd00::/8: %w", item, err)
		}
		out = append(out, prefix.Masked())
	}
	return out, nil
}

func (t Tenant) validate() error {
	var problems []string
	if t.Tenant == "" {
		problems = append(problems, "tenant is empty")
	}
	if err := t.Policy().Validate(); err != nil {
		problems = append(problems, strings.ReplaceAll(err.Error(), "\n", "; "))
	}
	if t.RateLimit.EventsPerMinutePerIP < 0 {
		problems = append(problems, fmt.Sprintf("rateLimit.eventsPerMinutePerIP %d is negative", t.RateLimit.EventsPerMinutePerIP))
	}
	if t.StoreIPAddress {
		problems = append(problems, "storeIPAddress is true, but IP addresses are never stored: the privacy policy forbids it")
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid ingest configuration: %s", strings.Join(problems, "; "))
	}
	return nil
}
