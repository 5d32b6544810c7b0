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

package v1alpha1_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/big"
	"math/rand/v2"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/testenv"
)

// k8s talks to a real kube-apiserver with the generated CRDs installed, so
// these tests check the schema and CEL rules the API server enforces.
var k8s client.Client

func TestMain(m *testing.M) {
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	k8s, err = client.New(cfg, client.Options{})
	code := 1
	if err == nil {
		code = m.Run()
	} else {
		fmt.Fprintln(os.Stderr, err)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// tenant is an AnalyticsTenant manifest with the given spec (YAML, indented
// by two spaces under spec:), and a domain when the spec names none: every
// tenant must have one.
func tenant(name, spec string) string {
	if !strings.Contains(spec, "domains:") {
		if spec == "  {}\n" {
			spec = ""
		}
		spec = "  domains: [example.com]\n" + spec
	}
	return tenantAsIs(name, spec)
}

// tenantAsIs is an AnalyticsTenant manifest with exactly the given spec.
func tenantAsIs(name, spec string) string {
	return "apiVersion: analytics.millimetric.ai/v1alpha1\nkind: AnalyticsTenant\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

// region is a StorageRegion manifest with the given spec.
func region(name, spec string) string {
	return "apiVersion: analytics.millimetric.ai/v1alpha1\nkind: StorageRegion\nmetadata:\n  name: " + name + "\nspec:\n" + spec
}

const goodPostgres = `  postgres:
    host: pg.internal
    database: events
    adminSecretRef: {namespace: millimetric-system, name: pg-admin}
`

func decode(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("the test's manifest is not YAML: %v\n%s", err, manifest)
	}
	return u
}

// create sends the manifest as kubectl does: strict field validation, so an
// unknown or misspelt field is refused rather than silently dropped.
func create(t *testing.T, manifest string) (*unstructured.Unstructured, error) {
	t.Helper()
	u := decode(t, manifest)
	err := k8s.Create(context.Background(), u, client.FieldValidation("Strict"))
	if err == nil {
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), u) })
	}
	return u, err
}

func domains(n int) string {
	var b strings.Builder
	b.WriteString("  domains:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - site%d.example.com\n", i)
	}
	return b.String()
}

func TestInvalidManifestsAreRefusedWithASpecificMessage(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
		want     string
	}{
		// AnalyticsTenant
		{"a tenant in an unknown region is refused",
			tenant("bad-region", "  region: ASIA\n"), `Unsupported value: "ASIA": supported values: "EU", "US"`},
		{"a region in lower case is refused",
			tenant("lower-region", "  region: eu\n"), `Unsupported value: "eu"`},
		{"a retention outside the plans is refused",
			tenant("ret-45", "  retentionDays: 45\n"), "retentionDays must be one of the plans' windows: 30, 90 or 365"},
		{"a retention of zero days is refused",
			tenant("ret-0", "  retentionDays: 0\n"), "retentionDays must be one of the plans' windows"},
		{"a retention written as a string is refused",
			tenant("ret-str", "  retentionDays: \"90\"\n"), `spec.retentionDays: Invalid value: "string": spec.retentionDays in body must be of type integer`},
		{"a hold of retained data longer than the policy's 30 days is refused",
			tenant("retain-31", "  deletionPolicy: Retain\n  retainDays: 31\n"), "spec.retainDays: Invalid value: 31: spec.retainDays in body should be less than or equal to 30"},
		{"a hold of retained data of zero days is refused",
			tenant("retain-0", "  deletionPolicy: Retain\n  retainDays: 0\n"), "spec.retainDays: Invalid value: 0: spec.retainDays in body should be greater than or equal to 1"},
		{"a tenant name longer than 40 characters is refused",
			tenant(strings.Repeat("a", 41), "  {}\n"), "tenant name must be at most 40 characters"},
		{"a tenant name with a dot is refused",
			tenant("acme.com", "  {}\n"), "tenant name must be a DNS label"},
		{"a domain in upper case is refused",
			tenant("dom-upper", "  domains: [Acme.com]\n"), "each domain must be a lowercase host name"},
		{"a domain without a dot is refused",
			tenant("dom-single", "  domains: [localhost]\n"), "each domain must be a lowercase host name"},
		{"a wildcard in the middle of a domain is refused",
			tenant("dom-mid", "  domains: [\"foo.*.acme.com\"]\n"), "each domain must be a lowercase host name"},
		{"a URL instead of a domain is refused",
			tenant("dom-url", "  domains: [\"https://acme.com\"]\n"), "each domain must be a lowercase host name"},
		{"a wildcard without its dot is refused",
			tenant("dom-star", "  domains: [\"*acme.com\"]\n"), "each domain must be a lowercase host name"},
		{"an IP address instead of a domain is refused",
			tenant("dom-ip", "  domains: [\"10.0.0.1\"]\n"), "each domain must be a lowercase host name"},
		{"a domain listed twice is refused",
			tenant("dom-dup", "  domains: [acme.com, acme.com]\n"), `Duplicate value: "acme.com"`},
		{"an ingest hostname in upper case is refused",
			tenant("host-upper", "  ingest: {hostnames: [Stats.acme.com]}\n"), "each hostname must be a lowercase DNS name"},
		{"a wildcard ingest hostname is refused: a route's name must be one host",
			tenant("host-star", "  ingest: {hostnames: [\"*.acme.com\"]}\n"), "each hostname must be a lowercase DNS name"},
		{"an ingest hostname with a port is refused",
			tenant("host-port", "  ingest: {hostnames: [\"stats.acme.com:443\"]}\n"), "each hostname must be a lowercase DNS name"},
		{"an ingest hostname with a trailing dot is refused",
			tenant("host-dot", "  ingest: {hostnames: [\"stats.acme.com.\"]}\n"), "each hostname must be a lowercase DNS name"},
		{"an ingest hostname of one label is refused",
			tenant("host-one", "  ingest: {hostnames: [stats]}\n"), "each hostname must be a lowercase DNS name"},
		{"a duplicate ingest hostname is refused",
			tenant("host-dup", "  ingest: {hostnames: [stats.acme.com, stats.acme.com]}\n"), `Duplicate value: "stats.acme.com"`},
		{"more than 15 ingest hostnames are refused: a route holds 16 with the default",
			tenant("host-16", "  ingest: {hostnames: [a.acme.com, b.acme.com, c.acme.com, d.acme.com, e.acme.com, f.acme.com, g.acme.com, h.acme.com, i.acme.com, j.acme.com, k.acme.com, l.acme.com, m.acme.com, n.acme.com, o.acme.com, p.acme.com]}\n"),
			"must have at most 15 items"},
		{"more than 100 domains are refused",
			tenant("dom-101", domains(101)), "must have at most 100 items"},
		{"a domain longer than 253 characters is refused",
			tenant("dom-long", "  domains: ["+strings.Repeat("a.", 127)+"com]\n"), "may not be more than 253 bytes"},
		{"negative replicas are refused",
			tenant("rep-neg", "  ingest: {replicas: -1}\n"), "spec.ingest.replicas in body should be greater than or equal to 0"},
		{"more than 100 replicas are refused",
			tenant("rep-101", "  ingest: {replicas: 101}\n"), "spec.ingest.replicas in body should be less than or equal to 100"},
		{"an autoscaling floor above its ceiling is refused",
			tenant("hpa-minmax", "  ingest: {autoscaling: {minReplicas: 5, maxReplicas: 2}}\n"), "autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"},
		{"an autoscaling floor of zero is refused",
			tenant("hpa-min0", "  ingest: {autoscaling: {minReplicas: 0, maxReplicas: 2}}\n"), "spec.ingest.autoscaling.minReplicas in body should be greater than or equal to 1"},
		{"autoscaling without a ceiling is refused",
			tenant("hpa-nomax", "  ingest: {autoscaling: {minReplicas: 2}}\n"), "spec.ingest.autoscaling.maxReplicas: Required value"},
		{"replicas outside the autoscaling bounds are refused",
			tenant("hpa-rep", "  ingest: {replicas: 30, autoscaling: {minReplicas: 2, maxReplicas: 20}}\n"), "with autoscaling set, replicas must lie between autoscaling.minReplicas and autoscaling.maxReplicas"},
		{"a CPU target above 100 percent is refused",
			tenant("hpa-cpu", "  ingest: {autoscaling: {maxReplicas: 2, targetCPUUtilizationPercentage: 150}}\n"), "targetCPUUtilizationPercentage in body should be less than or equal to 100"},
		{"a rate limit of zero is refused",
			tenant("rate-0", "  ingest: {rateLimit: {eventsPerMinutePerIP: 0}}\n"), "rateLimit.eventsPerMinutePerIP must be a positive number of events"},
		{"a negative rate limit is refused",
			tenant("rate-neg", "  ingest: {rateLimit: {eventsPerMinutePerIP: -5}}\n"), "rateLimit.eventsPerMinutePerIP must be a positive number of events"},
		{"an ingest resource other than cpu and memory is refused",
			tenant("res-gpu", "  ingest: {resources: {limits: {nvidia.com/gpu: 1}}}\n"), `unknown field "spec.ingest.resources.limits.nvidia.com/gpu"`},
		{"a negative memory limit is refused",
			tenant("res-neg", "  ingest: {resources: {limits: {memory: \"-512Mi\"}}}\n"), `spec.ingest.resources.limits.memory: Invalid value: "-512Mi": ` + v1alpha1.QuantityMessage},
		{"a negative number of cores is refused",
			tenant("res-negint", "  ingest: {resources: {requests: {cpu: -1}}}\n"), "spec.ingest.resources.requests.cpu: Invalid value: -1: " + v1alpha1.QuantityMessage},
		{"a memory amount of more than 12 digits is refused",
			tenant("res-big", "  ingest: {resources: {requests: {memory: 1000000000000}}}\n"), "spec.ingest.resources.requests.memory: Invalid value: 1000000000000: " + v1alpha1.QuantityMessage},
		{"an amount with an exponent is refused",
			tenant("res-exp", "  ingest: {resources: {requests: {memory: \"1e9\"}}}\n"), v1alpha1.QuantityMessage},
		{"an amount with an unknown suffix is refused",
			tenant("res-suffix", "  ingest: {resources: {requests: {memory: 1GB}}}\n"), v1alpha1.QuantityMessage},
		{"an amount longer than any bounded one is refused by its length, before any rule runs",
			tenant("res-long", "  ingest: {resources: {requests: {memory: \""+strings.Repeat("9", 22)+"\"}}}\n"), "spec.ingest.resources.requests.memory: Too long: may not be more than 21 bytes"},
		{"a memory request above its limit is refused",
			tenant("res-over", "  ingest: {resources: {requests: {memory: 1Gi}, limits: {memory: 512Mi}}}\n"), "spec.ingest.resources.requests.memory: Invalid value: requests.memory must not be more than limits.memory"},
		{"a CPU request above its limit, written in other units, is refused",
			tenant("res-cpu-over", "  ingest: {resources: {requests: {cpu: \"1.0001\"}, limits: {cpu: 1000m}}}\n"), "requests.cpu must not be more than limits.cpu"},
		{"an image reference with a space is refused",
			tenant("img-space", "  ingest: {image: \"ingest latest\"}\n"), "image must be an image reference without spaces"},
		{"a query parameter name with a space is refused",
			tenant("qp-space", "  privacy: {queryParamAllowlist: [\"utm source\"]}\n"), "query parameter names may contain only letters, digits"},
		{"a query parameter name starting with a dash is refused",
			tenant("qp-dash", "  privacy: {queryParamAllowlist: [\"-ref\"]}\n"), "query parameter names may contain only letters, digits"},
		{"a query parameter listed twice is refused",
			tenant("qp-dup", "  privacy: {queryParamAllowlist: [ref, ref]}\n"), `Duplicate value: "ref"`},
		{"an unknown geo precision is refused",
			tenant("geo-street", "  privacy: {geoPrecision: Street}\n"), `Unsupported value: "Street": supported values: "Country", "Region", "City"`},
		{"adopting retained data by a name instead of the deleted tenant's uid is refused",
			tenant("adopt-name", "  storage: {adoptRetainedFrom: acme}\n"), "adoptRetainedFrom must be the metadata.uid of the deleted AnalyticsTenant whose retained data to adopt"},
		{"adopting retained data by an upper-case uid is refused",
			tenant("adopt-upper", "  storage: {adoptRetainedFrom: 4F1C2D3E-5A6B-4C7D-8E9F-0A1B2C3D4E5F}\n"), "a lowercase UUID"},
		{"an unknown deletion policy is refused",
			tenant("del-orphan", "  deletionPolicy: Orphan\n"), `Unsupported value: "Orphan": supported values: "Delete", "Retain"`},
		{"suspend written as a word is refused",
			tenant("suspend-yes", "  suspend: \"yes\"\n"), "spec.suspend in body must be of type boolean"},
		{"a misspelt field is refused, not dropped",
			tenant("typo", "  retentionDay: 90\n"), `unknown field "spec.retentionDay"`},
		{"a tenant without domains is refused: its ingest would refuse every event",
			tenantAsIs("no-domains", "  region: EU\n"), "spec.domains: Required value: domains must list at least one site the tenant collects events for"},
		{"an empty spec is refused: a tenant needs its domains",
			tenantAsIs("empty-spec", "  {}\n"), "domains must list at least one site the tenant collects events for"},
		{"an empty list of domains is refused",
			tenantAsIs("no-domains-list", "  domains: []\n"), "domains must list at least one site the tenant collects events for"},
		{"a hold of retained data with deletionPolicy Delete is refused: Delete purges at once",
			tenant("retain-delete", "  deletionPolicy: Delete\n  retainDays: 7\n"), "spec.retainDays: Invalid value: retainDays is how long deletionPolicy Retain holds a deleted tenant's data"},
		{"a hold of retained data without a deletion policy (Delete) is refused",
			tenant("retain-unset", "  retainDays: 30\n"), "retainDays is how long deletionPolicy Retain holds a deleted tenant's data"},
		{"a rate limit of 2^31-1 events a minute, no limit at all, is refused",
			tenant("rate-max", "  ingest: {rateLimit: {eventsPerMinutePerIP: 2147483647}}\n"), "rateLimit.eventsPerMinutePerIP must be at most 100000"},
		{"a rate limit just above 100000 is refused",
			tenant("rate-100001", "  ingest: {rateLimit: {eventsPerMinutePerIP: 100001}}\n"), "rateLimit.eventsPerMinutePerIP must be at most 100000"},
		{"an allowlisted e-mail parameter, in any case and with any separator, is refused",
			tenant("qp-email", "  privacy: {queryParamAllowlist: [utm_source, E-Mail]}\n"), "this query parameter name usually carries personal data"},
		{"an allowlisted parameter containing email is refused",
			tenant("qp-user-email", "  privacy: {queryParamAllowlist: [user_email]}\n"), "this query parameter name usually carries personal data"},
		{"an allowlisted access token is refused",
			tenant("qp-token", "  privacy: {queryParamAllowlist: [access_token]}\n"), "this query parameter name usually carries personal data"},
		{"an allowlisted API key is refused",
			tenant("qp-apikey", "  privacy: {queryParamAllowlist: [X-API-Key]}\n"), "this query parameter name usually carries personal data"},
		{"an allowlisted session id is refused",
			tenant("qp-jsession", "  privacy: {queryParamAllowlist: [JSESSIONID]}\n"), "this query parameter name usually carries personal data"},
		{"a tenant without a spec is refused",
			"apiVersion: analytics.millimetric.ai/v1alpha1\nkind: AnalyticsTenant\nmetadata:\n  name: no-spec\n", "spec: Required value"},

		// StorageRegion
		{"a storage region for an unknown region is refused",
			region("asia", "  region: ASIA\n"+goodPostgres), `Unsupported value: "ASIA": supported values: "EU", "US"`},
		{"a storage region without a region is refused",
			region("no-region", goodPostgres), "spec.region: Required value"},
		{"a storage region without postgres is refused",
			region("no-pg", "  region: EU\n"), "spec.postgres: Required value"},
		{"port zero is refused",
			region("port-0", "  region: EU\n"+goodPostgres+"    port: 0\n"), "spec.postgres.port in body should be greater than or equal to 1"},
		{"a port above 65535 is refused",
			region("port-big", "  region: EU\n"+goodPostgres+"    port: 70000\n"), "spec.postgres.port in body should be less than or equal to 65535"},
		{"an unknown sslMode is refused",
			region("ssl-prefer", "  region: EU\n"+goodPostgres+"    sslMode: prefer\n"), `Unsupported value: "prefer": supported values: "disable", "require", "verify-ca", "verify-full"`},
		{"an empty host is refused",
			region("host-empty", "  region: EU\n  postgres: {host: \"\", database: events, adminSecretRef: {namespace: ns, name: s}}\n"), "spec.postgres.host in body should be at least 1 chars long"},
		{"a URL as host is refused",
			region("host-url", "  region: EU\n  postgres: {host: \"postgres://pg/events\", database: events, adminSecretRef: {namespace: ns, name: s}}\n"), "host must be a bare host name or IP address"},
		{"a postgres without a database is refused",
			region("no-db", "  region: EU\n  postgres: {host: pg, adminSecretRef: {namespace: ns, name: s}}\n"), "spec.postgres.database: Required value"},
		{"a postgres without an admin secret is refused",
			region("no-secret", "  region: EU\n  postgres: {host: pg, database: events}\n"), "spec.postgres.adminSecretRef: Required value"},
		{"an admin secret reference without a name is refused",
			region("secret-noname", "  region: EU\n  postgres: {host: pg, database: events, adminSecretRef: {namespace: ns}}\n"), "spec.postgres.adminSecretRef.name: Required value"},
		{"an egress port number above 65535 is refused",
			region("port-huge", "  region: EU\n"+goodPostgres+"  egress:\n    ports:\n    - {port: 99999999999}\n"), "each egress port must be a port number from 1 to 65535, or a port name"},
		{"an egress port number of zero is refused",
			region("port-zero", "  region: EU\n"+goodPostgres+"  egress:\n    ports:\n    - {port: 0}\n"), "each egress port must be a port number from 1 to 65535, or a port name"},
		{"an admin secret in an invalid namespace is refused",
			region("secret-badns", "  region: EU\n  postgres: {host: pg, database: events, adminSecretRef: {namespace: My_NS, name: s}}\n"), "spec.postgres.adminSecretRef.namespace: Invalid value: \"My_NS\": namespace must be a namespace name"},
		{"an admin secret name that is not a DNS name is refused",
			region("secret-badname", "  region: EU\n  postgres: {host: pg, database: events, adminSecretRef: {namespace: ns, name: Pg_Admin}}\n"), "spec.postgres.adminSecretRef.name: Invalid value: \"Pg_Admin\": name must be a Secret name"},
		{"an admin secret name with a slash is refused",
			region("secret-slash", "  region: EU\n  postgres: {host: pg, database: events, adminSecretRef: {namespace: ns, name: \"ns/pg-admin\"}}\n"), "name must be a Secret name"},
		{"a comma-separated host, which the driver reads as several servers, is refused",
			region("host-comma", "  region: EU\n  postgres: {host: \"pg1.internal,pg2.internal\", database: events, adminSecretRef: {namespace: ns, name: s}}\n"), "the driver reads a comma-separated host as a list of servers"},
		{"a host with a space is refused",
			region("host-space", "  region: EU\n  postgres: {host: \"pg internal\", database: events, adminSecretRef: {namespace: ns, name: s}}\n"), "host must be a bare host name or IP address"},
		{"a database name with a space is refused",
			region("db-space", "  region: EU\n  postgres: {host: pg, database: \"my events\", adminSecretRef: {namespace: ns, name: s}}\n"), "spec.postgres.database: Invalid value: \"my events\": database must be a name of letters, digits, '_' and '-'"},
		{"a database name that is a libpq connection string is refused",
			region("db-dsn", "  region: EU\n  postgres: {host: pg, database: \"dbname=events host=evil\", adminSecretRef: {namespace: ns, name: s}}\n"), "database must be a name of letters, digits, '_' and '-'"},
		{"a database name with a quote is refused",
			region("db-quote", "  region: EU\n  postgres: {host: pg, database: \"events'\", adminSecretRef: {namespace: ns, name: s}}\n"), "database must be a name of letters, digits, '_' and '-'"},
		{"egress to every IPv4 address is refused",
			region("egress-all4", "  region: EU\n"+goodPostgres+"  egress:\n    to:\n    - ipBlock: {cidr: 0.0.0.0/0}\n"), "a /0 block (0.0.0.0/0, ::/0) lets every tenant workload reach any address"},
		{"egress to every IPv6 address is refused",
			region("egress-all6", "  region: EU\n"+goodPostgres+"  egress:\n    to:\n    - ipBlock: {cidr: \"::/0\", except: [\"fd00::/8\"]}\n"), "a /0 block (0.0.0.0/0, ::/0)"},
		{"an egress ipBlock that is not a CIDR is refused",
			region("egress-notcidr", "  region: EU\n"+goodPostgres+"  egress:\n    to:\n    - ipBlock: {cidr: pg.internal}\n"), "each egress ipBlock must be a CIDR of the storage's addresses"},
		{"an egress peer that names nothing is refused",
			region("egress-empty-peer", "  region: EU\n"+goodPostgres+"  egress:\n    to:\n    - {}\n"), "each egress peer must name the storage"},
		{"an egress port entry without a port, every port of its protocol, is refused",
			region("egress-noport", "  region: EU\n"+goodPostgres+"  egress:\n    to:\n    - ipBlock: {cidr: 10.0.0.0/16}\n    ports:\n    - {protocol: TCP}\n"), "each egress port must name the storage's port: an entry without a port opens every port of its protocol"},
		{"an egress port range over every port is refused",
			region("egress-range", "  region: EU\n"+goodPostgres+"  egress:\n    to:\n    - ipBlock: {cidr: 10.0.0.0/16}\n    ports:\n    - {protocol: TCP, port: 1, endPort: 65535}\n"), "an egress port range (endPort) must start at a port number and span at most 100 ports"},
		{"a toleration of every taint (operator Exists without a key) is refused",
			region("tol-all", "  region: EU\n"+goodPostgres+"  placement:\n    tolerations:\n    - {operator: Exists}\n"), "each toleration must name the taint key it tolerates"},
		{"a toleration of every NoExecute taint is refused",
			region("tol-noexec", "  region: EU\n"+goodPostgres+"  placement:\n    tolerations:\n    - {operator: Exists, effect: NoExecute}\n"), "each toleration must name the taint key it tolerates"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := create(t, tt.manifest)
			if err == nil {
				t.Fatalf("the API server accepted:\n%s", tt.manifest)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Errorf("want an Invalid or BadRequest error, got %v", err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("the error does not say %q:\n%v", tt.want, err)
			}
		})
	}
}

// fullTenant is the design's example tenant, every field set.
const fullTenant = `  region: EU
  retentionDays: 90
  domains: [acme.com, "*.acme.com"]
  ingest:
    image: registry.example.com/ingest:1.4.2
    replicas: 2
    autoscaling: {minReplicas: 2, maxReplicas: 20, targetCPUUtilizationPercentage: 70}
    resources:
      requests: {cpu: 250m, memory: 256Mi}
      limits: {memory: 512Mi}
    rateLimit: {eventsPerMinutePerIP: 600}
  privacy:
    queryParamAllowlist: [utm_source, utm_medium, utm_campaign, utm_term, utm_content, ref, source]
    geoPrecision: City
  suspend: false
  deletionPolicy: Delete
`

func TestValidManifestsAreAcceptedAndReadBackExactlyAsApplied(t *testing.T) {
	tests := []struct {
		name     string
		manifest string
	}{
		{"a spec of only its domain is accepted and stays so", tenant("minimal", "  {}\n")},
		{"the highest rate limit is accepted", tenant("rate-top", "  ingest: {rateLimit: {eventsPerMinutePerIP: 100000}}\n")},
		{"campaign and click-id parameters, and names that only resemble personal ones, are accepted",
			tenant("qp-ok", "  privacy: {queryParamAllowlist: [utm_source, utm_id, gclid, fbclid, ref, source, page, lang, category, classname, keyword]}\n")},
		{"the design's example tenant is accepted", tenant("acme", fullTenant)},
		{"a US tenant on the 365-day plan is accepted", tenant("globex", "  region: US\n  retentionDays: 365\n")},
		{"a retained tenant with a 7-day hold is accepted", tenant("retain-7", "  deletionPolicy: Retain\n  retainDays: 7\n")},
		{"a tenant adopting a deleted tenant's retained data by its uid is accepted",
			tenant("adopting", "  storage: {adoptRetainedFrom: 4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f}\n")},
		{"a tenant name of exactly 40 characters is accepted", tenant(strings.Repeat("a", 40), "  retentionDays: 30\n")},
		{"wildcard, punycode and many-label domains are accepted",
			tenant("domains", "  domains: [\"*.shop.example.co.uk\", xn--80ak6aa92e.com, a-b.example.io]\n")},
		{"100 domains are accepted", tenant("hundred", domains(100))},
		{"the customer's own ingest hostnames are accepted", tenant("hosts", "  ingest: {hostnames: [stats.acme.com, collect.eu.acme-corp.co.uk, xn--bcher-kva.example]}\n")},
		{"zero replicas are accepted", tenant("zero", "  ingest: {replicas: 0}\n")},
		{"autoscaling with only a ceiling is accepted", tenant("hpa", "  ingest: {autoscaling: {maxReplicas: 3}}\n")},
		{"an empty query parameter allowlist is accepted and kept empty", tenant("noparams", "  privacy: {queryParamAllowlist: []}\n")},
		{"a suspended tenant that retains its data is accepted", tenant("paused", "  suspend: true\n  deletionPolicy: Retain\n")},
		{"ingest resources written as numbers and as strings of every form are accepted",
			tenant("res-forms", "  ingest:\n    resources:\n      requests: {cpu: \"0.25\", memory: 536870912}\n      limits: {cpu: 2, memory: 1.5Gi}\n")},
		{"requests equal to their limits in other units are accepted",
			tenant("res-equal", "  ingest:\n    resources:\n      requests: {cpu: 1100m, memory: 1.1G}\n      limits: {cpu: \"1.1\", memory: 1100M}\n")},
		{"ingest resources in millicores and binary suffixes are accepted",
			tenant("res-suffixes", "  ingest:\n    resources:\n      requests: {cpu: 500m, memory: 512Mi}\n      limits: {cpu: \"999999999999.123456\", memory: 999999999999Ki}\n")},
		{"a minimal storage region is accepted", region("eu-min", "  region: EU\n"+goodPostgres)},
		{"an IPv6 host, a database name with '_' and '-', and a dotted Secret name are accepted",
			region("eu-v6", "  region: EU\n  postgres: {host: \"fd00::10\", database: events_eu-1, adminSecretRef: {namespace: millimetric-system, name: pg.eu-admin}}\n")},
		{"a storage region with egress and placement is accepted", region("us-full", `  region: US
  postgres:
    host: pg.us-east-1.internal
    port: 6432
    database: events
    sslMode: verify-ca
    adminSecretRef: {namespace: millimetric-system, name: pg-us-admin}
  egress:
    to:
    - ipBlock: {cidr: 10.20.0.0/16}
    - namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: databases}}
    ports:
    - {protocol: TCP, port: 5432}
    - {protocol: TCP, port: postgres}
    - {protocol: TCP, port: 6432, endPort: 6440}
  placement:
    nodeSelector: {topology.kubernetes.io/region: us-east-1}
    tolerations:
    - {key: dedicated, operator: Equal, value: analytics, effect: NoSchedule}
    - {key: region, operator: Exists}
`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			applied := decode(t, tt.manifest)
			if _, err := create(t, tt.manifest); err != nil {
				t.Fatalf("the API server refused a valid manifest: %v\n%s", err, tt.manifest)
			}
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(applied.GroupVersionKind())
			if err := k8s.Get(context.Background(), client.ObjectKeyFromObject(applied), got); err != nil {
				t.Fatal(err)
			}
			want, _ := json.Marshal(applied.Object["spec"])
			have, _ := json.Marshal(got.Object["spec"])
			if string(want) != string(have) {
				t.Errorf("the spec read back differs from the one applied (a default was injected?):\napplied: %s\nread:    %s", want, have)
			}
		})
	}
}

func TestUpdates(t *testing.T) {
	tests := []struct {
		name    string
		before  string
		after   string
		refused string // empty when the update must be accepted
	}{
		{"a tenant cannot move from EU to US", tenant("move", "  region: EU\n"), tenant("move", "  region: US\n"),
			"region is immutable (unset means EU)"},
		{"a tenant with no region cannot be given US", tenant("unset-us", "  {}\n"), tenant("unset-us", "  region: US\n"),
			"region is immutable (unset means EU)"},
		{"a US tenant cannot drop its region to become EU", tenant("us-unset", "  region: US\n"), tenant("us-unset", "  {}\n"),
			"region is immutable (unset means EU)"},
		{"a tenant with no region may spell out EU", tenant("unset-eu", "  {}\n"), tenant("unset-eu", "  region: EU\n"), ""},
		{"a tenant may change plan, domains, replicas and suspend",
			tenant("change", "  region: US\n  retentionDays: 30\n"),
			tenant("change", "  region: US\n  retentionDays: 365\n  domains: [acme.com]\n  ingest: {replicas: 4}\n  suspend: true\n"), ""},
		{"a storage region cannot change its region", region("sr-move", "  region: EU\n"+goodPostgres), region("sr-move", "  region: US\n"+goodPostgres),
			"region is immutable: tenants' data lives where it was provisioned"},
		{"a storage region cannot be repointed at another host unasked", region("sr-host", "  region: EU\n"+goodPostgres),
			region("sr-host", "  region: EU\n  postgres: {host: pg2.internal, database: events, adminSecretRef: {namespace: ns, name: s}}\n"),
			"host and database say where every tenant's data of the region is, so they cannot change"},
		{"a storage region cannot be repointed at another database unasked", region("sr-db", "  region: EU\n"+goodPostgres),
			region("sr-db", "  region: EU\n  postgres: {host: pg.internal, database: events2, adminSecretRef: {namespace: ns, name: s}}\n"),
			"set postgres.movedFrom to the host and database it was moved from"},
		{"a storage region may move to another host and database when movedFrom names the old ones", region("sr-moved", "  region: EU\n"+goodPostgres),
			region("sr-moved", "  region: EU\n  postgres: {host: pg2.internal, database: events2, adminSecretRef: {namespace: ns, name: s}, movedFrom: {host: pg.internal, database: events}}\n"), ""},
		{"a storage region cannot move when movedFrom names another host", region("sr-moved-other", "  region: EU\n"+goodPostgres),
			region("sr-moved-other", "  region: EU\n  postgres: {host: pg2.internal, database: events, adminSecretRef: {namespace: ns, name: s}, movedFrom: {host: pg3.internal, database: events}}\n"),
			"host and database say where every tenant's data of the region is, so they cannot change"},
		{"a storage region cannot move when movedFrom names another database", region("sr-moved-otherdb", "  region: EU\n"+goodPostgres),
			region("sr-moved-otherdb", "  region: EU\n  postgres: {host: pg2.internal, database: events, adminSecretRef: {namespace: ns, name: s}, movedFrom: {host: pg.internal, database: other}}\n"),
			"host and database say where every tenant's data of the region is, so they cannot change"},
		{"a storage region may change its port, sslMode and admin Secret", region("sr-tls", "  region: EU\n"+goodPostgres),
			region("sr-tls", "  region: EU\n  postgres: {host: pg.internal, port: 6432, database: events, sslMode: verify-ca, adminSecretRef: {namespace: ns, name: s2}}\n"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			old, err := create(t, tt.before)
			if err != nil {
				t.Fatalf("creating: %v", err)
			}
			updated := decode(t, tt.after)
			updated.SetResourceVersion(old.GetResourceVersion())
			err = k8s.Update(context.Background(), updated, client.FieldValidation("Strict"))
			switch {
			case tt.refused == "" && err != nil:
				t.Errorf("the update was refused: %v", err)
			case tt.refused != "" && err == nil:
				t.Errorf("the update was accepted")
			case tt.refused != "" && !strings.Contains(err.Error(), tt.refused):
				t.Errorf("the error does not say %q:\n%v", tt.refused, err)
			}
		})
	}
}

// TestQuantitiesTheParserSpinsOnAreRefusedAtAdmission applies, in each
// quantity of the tenant's ingest resources, values apimachinery's
// quantity parser spends seconds to minutes and gigabytes on. The API
// server must refuse each at once, with a message that says what an
// amount looks like, so none is ever stored for the operator to decode.
func TestQuantitiesTheParserSpinsOnAreRefusedAtAdmission(t *testing.T) {
	for _, value := range []string{"1e-2147483648", "1e999999999999999999", "1E2147483647", "9.9e-999999999", "+1", "0x10"} {
		for _, field := range []string{"requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} {
			t.Run(value+" in "+field, func(t *testing.T) {
				part, name, _ := strings.Cut(field, ".")
				manifest := tenant("spin", fmt.Sprintf("  ingest:\n    resources:\n      %s:\n        %s: %q\n", part, name, value))
				start := time.Now()
				_, err := create(t, manifest)
				took := time.Since(start)
				if err == nil {
					t.Fatalf("the API server accepted %s: %q; the operator would parse it while decoding", field, value)
				}
				want := fmt.Sprintf("spec.ingest.resources.%s: Invalid value: %q: %s", field, value, v1alpha1.QuantityMessage)
				if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
					t.Errorf("want an Invalid error saying %q, got %v", want, err)
				}
				if took > 2*time.Second {
					t.Errorf("the refusal took %s: the API server parsed the value", took)
				}
			})
		}
	}
}

// TestEveryPersonalDataQueryParamIsRefused allowlists each name of
// v1alpha1.PersonalDataQueryParams, as written and in upper case, and each
// part of PersonalDataQueryParamParts inside a longer name: the API server
// must refuse each with the message that says why.
func TestEveryPersonalDataQueryParamIsRefused(t *testing.T) {
	var names []string
	for _, n := range v1alpha1.PersonalDataQueryParams {
		names = append(names, n, strings.ToUpper(n))
	}
	for _, p := range v1alpha1.PersonalDataQueryParamParts {
		names = append(names, "x-"+p+"_value")
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			_, err := create(t, tenant("qp-personal", fmt.Sprintf("  privacy: {queryParamAllowlist: [utm_source, %q]}\n", name)))
			if err == nil {
				t.Fatalf("the API server accepted the query parameter %q in the allowlist", name)
			}
			if want := "this query parameter name usually carries personal data"; !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), want) {
				t.Errorf("want an Invalid error saying %q, got %v", want, err)
			}
		})
	}
}

// TestRequestsAboveLimitsAreRefusedExactly sends the API server pairs of
// amounts as a memory and a CPU request and limit, edge cases (equal in
// other units, a millionth apart, at the largest amounts, where doubles
// round) and random ones of every form QuantityPattern allows: it must
// refuse exactly those whose request is more than its limit, compared as
// exact rationals (apimachinery's Cmp is not the reference: it caps an
// amount above 2^63-1 at that).
func TestRequestsAboveLimitsAreRefusedExactly(t *testing.T) {
	pairs := [][2]string{
		{"1.1G", "1100M"}, {"1100M", "1.1G"}, {"1Gi", "1073741824"}, {"1073741825", "1Gi"}, {"1024Mi", "1Gi"},
		{"1m", "0.001"}, {"0.001", "1m"}, {"0.000001", "0.000001m"}, {"0.000002", "0.000001"}, {"1", "1000m"}, {"1.000001", "1"},
		{"999999999999.999999Ti", "999999999999.999999Ti"}, {"999999999999.999999Ti", "999999999999.999998Ti"},
		{"999999999999.999998Ti", "999999999999.999999Ti"}, {"999999999999T", "999999999999Ti"}, {"999999999999Ti", "999999999999T"},
		{"0", "0m"}, {"0.5Ki", "512"}, {"513", "0.5Ki"}, {"1.000000Ti", "1099511627.776k"}, {"1099511627.777k", "1Ti"},
	}
	suffixes := []string{"", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"}
	rng := rand.New(rand.NewPCG(20, 15))
	amount := func() string {
		v := strconv.FormatUint(rng.Uint64N(1_000_000_000_000), 10)
		if len(v) > 1+rng.IntN(12) {
			v = v[:1+rng.IntN(len(v))]
		}
		if rng.IntN(2) == 0 {
			v += "." + strconv.FormatUint(rng.Uint64N(1_000_000), 10)
		}
		return v + suffixes[rng.IntN(len(suffixes))]
	}
	for range 150 {
		pairs = append(pairs, [2]string{amount(), amount()})
	}
	for i, p := range pairs {
		above := exactAmount(t, p[0]).Cmp(exactAmount(t, p[1])) > 0
		for _, r := range []string{"cpu", "memory"} {
			manifest := tenant(fmt.Sprintf("pair-%d", i), fmt.Sprintf("  ingest: {resources: {requests: {%s: %q}, limits: {%s: %q}}}\n", r, p[0], r, p[1]))
			err := k8s.Create(context.Background(), decode(t, manifest), client.DryRunAll, client.FieldValidation("Strict"))
			switch {
			case above && err == nil:
				t.Errorf("requests.%s %s above limits.%s %s was accepted", r, p[0], r, p[1])
			case above && !strings.Contains(err.Error(), "requests."+r+" must not be more than limits."+r):
				t.Errorf("requests.%s %s above limits.%s %s was refused without saying so: %v", r, p[0], r, p[1], err)
			case !above && err != nil:
				t.Errorf("requests.%s %s, not above limits.%s %s, was refused: %v", r, p[0], r, p[1], err)
			}
		}
	}
}

// exactAmount is an amount of QuantityPattern as an exact rational.
func exactAmount(t *testing.T, q string) *big.Rat {
	t.Helper()
	units := map[string]*big.Rat{"": big.NewRat(1, 1), "m": big.NewRat(1, 1000), "k": big.NewRat(1e3, 1), "M": big.NewRat(1e6, 1),
		"G": big.NewRat(1e9, 1), "T": big.NewRat(1e12, 1), "Ki": big.NewRat(1<<10, 1), "Mi": big.NewRat(1<<20, 1), "Gi": big.NewRat(1<<30, 1), "Ti": big.NewRat(1<<40, 1)}
	number := strings.TrimRight(q, "mkKMGTi")
	v, ok := new(big.Rat).SetString(number)
	unit, known := units[q[len(number):]]
	if !ok || !known || !regexp.MustCompile(v1alpha1.QuantityPattern).MatchString(q) {
		t.Fatalf("the test's amount %q is not of QuantityPattern", q)
	}
	return v.Mul(v, unit)
}
