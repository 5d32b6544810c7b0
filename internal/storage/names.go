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

package storage

import (
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MaxTenantNameLength is the longest tenant name: "tenant-" + name must be a
// namespace name and "tenant_" + name a PostgreSQL identifier (63 bytes), and
// the API limits names to 40 characters.
const MaxTenantNameLength = 40

// SchemaPrefix starts every tenant schema and owner role name.
const SchemaPrefix = "tenant_"

// IngestRolePrefix starts every tenant's ingest role name. It is a prefix of
// its own, not a suffix on the schema name: "tenant_acme_ingest" could be
// the schema of a tenant named "acme-ingest".
const IngestRolePrefix = "ingest_"

var (
	tenantNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	schemaNameRE = regexp.MustCompile(`^tenant_[a-z0-9_]{1,56}$`)
)

// SchemaName is the schema, and the role, of tenant: "tenant_" + the name
// with '-' turned into '_' (PostgreSQL identifiers may hold '-' only when
// quoted, and people type them unquoted in psql). Tenant names are DNS
// labels, which have no '_', so two tenants never share a schema.
func SchemaName(tenant string) string {
	return SchemaPrefix + strings.ReplaceAll(tenant, "-", "_")
}

// IngestRoleName is the role the tenant's ingest service logs in as:
// "ingest_" + the name with '-' turned into '_', as in SchemaName. It may
// only insert events; it owns nothing.
func IngestRoleName(tenant string) string {
	return IngestRolePrefix + strings.ReplaceAll(tenant, "-", "_")
}

// ValidateTenantName reports whether tenant is a DNS label of at most
// MaxTenantNameLength characters. The error's reason is
// ReasonInvalidTenantName.
func ValidateTenantName(tenant string) error {
	if len(tenant) == 0 || len(tenant) > MaxTenantNameLength || !tenantNameRE.MatchString(tenant) {
		return newError(ReasonInvalidTenantName, "validate",
			fmt.Sprintf("tenant name %q must be a DNS label (lower-case letters, digits, '-') of at most %d characters",
				tenant, MaxTenantNameLength), nil)
	}
	return nil
}

func validateSchema(schema string) error {
	if !schemaNameRE.MatchString(schema) {
		return newError(ReasonInvalidConfig, "validate",
			fmt.Sprintf("schema %q is not a tenant schema (tenant_<name>)", schema), nil)
	}
	return nil
}

// PartitionName is the name of the events partition for the UTC day of t:
// events_YYYYMMDD.
func PartitionName(t time.Time) string {
	return "events_" + t.UTC().Format("20060102")
}

// parsePartitionName is PartitionName's inverse; ok is false for a name that
// is not a day partition.
func parsePartitionName(name string) (day time.Time, ok bool) {
	digits, found := strings.CutPrefix(name, "events_")
	if !found || len(digits) != 8 {
		return time.Time{}, false
	}
	day, err := time.Parse("20060102", digits)
	if err != nil {
		return time.Time{}, false
	}
	return day, true
}

// utcDay is midnight UTC of t's UTC day.
func utcDay(t time.Time) time.Time {
	y, m, d := t.UTC().Date()
	return time.Date(y, m, d, 0, 0, 0, 0, time.UTC)
}
