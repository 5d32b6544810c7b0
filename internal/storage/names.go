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
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"regexp"
	"strings"
	"time"
)

// MaxTenantNameLength is the longest tenant name: "tenant-" + name must be a
// namespace name, and the API limits names to 40 characters.
const MaxTenantNameLength = 40

// A tenant's names in its region's database say nothing about the customer:
// every tenant role can list every schema (pg_namespace) and every role
// (pg_roles) of the server, and a name derived from the tenant's would tell
// each customer who the others are. A tenant provisioned by this operator
// gets OpaqueSchemaPrefix + id for its schema and owner role and
// OpaqueIngestRolePrefix + the same id for its ingest role, id being 16
// random bytes (crypto/rand) in lower-case base32: not derived from the
// tenant's name or uid, so nothing the catalog shows leads back to the
// customer or its Kubernetes object, and a name is never reused after a
// purge. The id is the same in both names so that an administrator sees
// which two roles go together; which tenant they are is recorded only in
// OperatorSchema (namesTable), which no tenant role can read.
//
// Tenants provisioned before opaque names keep theirs, LegacySchemaPrefix
// and LegacyIngestRolePrefix + their name (legacyNames): their data stays
// where it is, and the mapping records those names.
const (
	// OpaqueSchemaPrefix starts the schema and owner role name of every
	// tenant provisioned with opaque names.
	OpaqueSchemaPrefix = "t_"
	// OpaqueIngestRolePrefix starts the ingest role name of every tenant
	// provisioned with opaque names.
	OpaqueIngestRolePrefix = "i_"
	// LegacySchemaPrefix started the schema and owner role name of the
	// tenants provisioned before opaque names: "tenant_" + the name with
	// '-' turned into '_'.
	LegacySchemaPrefix = "tenant_"
	// LegacyIngestRolePrefix started their ingest role name.
	LegacyIngestRolePrefix = "ingest_"
)

var (
	tenantNameRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?$`)
	// A legacy name is "tenant_" + a DNS label with '-' turned into '_': it
	// never has '_' right after the prefix. An opaque one starts "t_", which
	// no legacy name does, so the two kinds never collide.
	legacySchemaRE = regexp.MustCompile(`^tenant_[a-z0-9][a-z0-9_]{0,55}$`)
	opaqueSchemaRE = regexp.MustCompile(`^t_[a-z2-7]{26}$`)
	opaqueIngestRE = regexp.MustCompile(`^i_[a-z2-7]{26}$`)
)

// tenantSchemaPattern is a POSIX regular expression (for PostgreSQL's ~)
// matching the schema names a tenant can have, of either kind.
const tenantSchemaPattern = `^(tenant_[a-z0-9][a-z0-9_]*|t_[a-z2-7]{26})$`

// TenantNames are a tenant's names in its region's database, as Provision
// records them (namesTable) and the tenant's status shows them.
type TenantNames struct {
	// Schema is the tenant's schema and the name of its owner role.
	Schema string
	// IngestRole is the role the tenant's ingest service logs in as: it
	// may only insert events; it owns nothing.
	IngestRole string
}

// newOpaqueNames draws a new pair of opaque names.
func newOpaqueNames() (TenantNames, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return TenantNames{}, err
	}
	id := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
	return TenantNames{Schema: OpaqueSchemaPrefix + id, IngestRole: OpaqueIngestRolePrefix + id}, nil
}

// legacyNames are the names an operator from before opaque names gave
// tenant: "tenant_" and "ingest_" + the name with '-' turned into '_'.
// Tenant names are DNS labels, which have no '_', so two tenants never
// shared them.
func legacyNames(tenant string) TenantNames {
	id := strings.ReplaceAll(tenant, "-", "_")
	return TenantNames{Schema: LegacySchemaPrefix + id, IngestRole: LegacyIngestRolePrefix + id}
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

// validateSchema reports whether schema is a tenant schema's name: opaque
// (t_<id>) or legacy (tenant_<name>).
func validateSchema(schema string) error {
	if !opaqueSchemaRE.MatchString(schema) && !legacySchemaRE.MatchString(schema) {
		return newError(ReasonInvalidConfig, "validate",
			fmt.Sprintf("schema %q is not a tenant schema (%s<id>, or %s<name> for a tenant provisioned before opaque names)",
				schema, OpaqueSchemaPrefix, LegacySchemaPrefix), nil)
	}
	return nil
}

// validate reports whether n are a tenant's names of one kind: both opaque
// with the same id, or both legacy for the same name. What is read back
// from namesTable is checked before it is put into a statement.
func (n TenantNames) validate() error {
	opaque := opaqueSchemaRE.MatchString(n.Schema) && opaqueIngestRE.MatchString(n.IngestRole) &&
		n.Schema[len(OpaqueSchemaPrefix):] == n.IngestRole[len(OpaqueIngestRolePrefix):]
	legacy := legacySchemaRE.MatchString(n.Schema) &&
		n.IngestRole == LegacyIngestRolePrefix+n.Schema[len(LegacySchemaPrefix):]
	if !opaque && !legacy {
		return newError(ReasonStorageError, "validate", fmt.Sprintf(
			"%s.%s records schema %q and ingest role %q, which are not a tenant's names; correct the row by hand",
			OperatorSchema, namesTable, n.Schema, n.IngestRole), nil)
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
