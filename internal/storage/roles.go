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
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
)

// rolesTable is the registry of the tenant roles the operator made in this
// database: a role of a tenant's name that is not in it was made by someone
// else, and provisioning refuses to take it over (ReasonRoleConflict).
// PostgreSQL's roles are the server's, shared by all its databases, and
// anyone with CREATEROLE can make one named like a tenant's before the
// tenant is provisioned, with memberships that would reach the tenant's data
// once the operator adopted it. Like the locks and the holds, the registry is
// in OperatorSchema, which no tenant role can use.
const rolesTable = "tenant_roles"

// rolesTableDDL makes the registry. schema is the tenant's schema (the
// registry keeps no tenant name: namesTable does).
var rolesTableDDL = `CREATE TABLE IF NOT EXISTS ` + pgx.Identifier{OperatorSchema, rolesTable}.Sanitize() + ` (
	role          text PRIMARY KEY,
	schema        text NOT NULL,
	registered_at timestamptz NOT NULL DEFAULT pg_catalog.now()
)`

// rolesTableBackfill registers, once, when the registry is made (an
// operator from before it upgraded, or a new region), the roles that an
// operator provably made before there was a registry, so the tenants it
// made keep working:
//   - an owner role: it has a tenant schema's name, owns that schema, and
//     the schema has the operator's schema_version table. Making a schema
//     owned by a role needs membership in it (or superuser) and CREATE on
//     the database; the operator provisions the schema with its tables in
//     the same transaction as the role;
//   - an ingest role: the owner role above granted it a privilege on the
//     schema (grantIngest does, as the owner), which no one but the owner,
//     or a superuser acting as it, can.
//
// A role made by someone else later is never registered by this: the
// backfill runs only in the transaction that makes the registry.
var rolesTableBackfill = `
INSERT INTO ` + pgx.Identifier{OperatorSchema, rolesTable}.Sanitize() + ` (role, schema)
SELECT o.rolname, n.nspname
FROM pg_catalog.pg_namespace n
JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner AND o.rolname = n.nspname
WHERE pg_catalog.starts_with(n.nspname, '` + LegacySchemaPrefix + `')
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
              WHERE c.relnamespace = n.oid AND c.relname = 'schema_version' AND c.relkind = 'r')
UNION ALL
SELECT i.rolname, n.nspname
FROM pg_catalog.pg_namespace n
JOIN pg_catalog.pg_roles o ON o.oid = n.nspowner AND o.rolname = n.nspname
JOIN pg_catalog.pg_roles i ON i.rolname = '` + LegacyIngestRolePrefix + `' || substr(n.nspname, ` + fmt.Sprint(len(LegacySchemaPrefix)+1) + `)
WHERE pg_catalog.starts_with(n.nspname, '` + LegacySchemaPrefix + `')
  AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
              WHERE c.relnamespace = n.oid AND c.relname = 'schema_version' AND c.relkind = 'r')
  AND EXISTS (SELECT 1 FROM pg_catalog.aclexplode(n.nspacl) a WHERE a.grantee = i.oid AND a.grantor = n.nspowner)
ON CONFLICT (role) DO NOTHING`

// registered says whether role is in the registry.
func registered(ctx context.Context, tx pgx.Tx, role string) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM `+pgx.Identifier{OperatorSchema, rolesTable}.Sanitize()+` WHERE role = $1)`, role).Scan(&ok)
	return ok, err
}

// register records that the operator made role for schema.
func register(ctx context.Context, tx pgx.Tx, role, schema string) error {
	_, err := tx.Exec(ctx, `INSERT INTO `+pgx.Identifier{OperatorSchema, rolesTable}.Sanitize()+` (role, schema) VALUES ($1, $2)
		ON CONFLICT (role) DO UPDATE SET schema = EXCLUDED.schema, registered_at = pg_catalog.now()`, role, schema)
	return err
}

// registeredOf returns those of roles that are in the registry, in their
// order.
func registeredOf(ctx context.Context, db DB, roles []string) ([]string, error) {
	rows, err := db.Query(ctx, `SELECT role FROM `+pgx.Identifier{OperatorSchema, rolesTable}.Sanitize()+` WHERE role = ANY($1)`, roles)
	if err != nil {
		return nil, err
	}
	found, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var ours []string
	for _, role := range roles {
		if slices.Contains(found, role) {
			ours = append(ours, role)
		}
	}
	return ours, nil
}

// unregister removes roles from the registry, as they are dropped.
func unregister(ctx context.Context, tx pgx.Tx, roles []string) error {
	_, err := tx.Exec(ctx, `DELETE FROM `+pgx.Identifier{OperatorSchema, rolesTable}.Sanitize()+` WHERE role = ANY($1)`, roles)
	return err
}

// roleConflict is the error of a role of the tenant's name that the
// operator did not make.
func roleConflict(op, role, schema string) error {
	return newError(ReasonRoleConflict, op, fmt.Sprintf(
		"role %s exists but was not made by the operator (it is not in %s.%s): provisioning it would hand it, and every role that is a member of it, the tenant's data. "+
			"Drop or rename it; if it is this tenant's, made by an operator from before the registry, register it as the region's administrator: "+
			"INSERT INTO %s.%s (role, schema) VALUES ('%s', '%s')",
		role, OperatorSchema, rolesTable, OperatorSchema, rolesTable, role, schema), nil)
}

// revokeForeignMemberships takes back every membership of role that the
// operator did not grant: role being a member of any other role (the
// operator makes its tenant roles members of nothing), and any other role
// being a member of role, but the administrator's own membership, which
// Provision (in the owner role) and Retain and Purge (in both roles) grant
// it when it is not a superuser. A membership granted by hand would otherwise give its
// member the tenant's data, or the tenant the member's rights. It checks
// that none is left: a membership the administrator may not revoke (in a
// superuser role, for an administrator that is not one) is an error.
func revokeForeignMemberships(ctx context.Context, tx pgx.Tx, role string) error {
	query := `
		SELECT r.rolname, m.rolname
		FROM pg_catalog.pg_auth_members am
		JOIN pg_catalog.pg_roles r ON r.oid = am.roleid
		JOIN pg_catalog.pg_roles m ON m.oid = am.member
		WHERE (m.rolname = $1 OR r.rolname = $1)
		  AND NOT (r.rolname = $1 AND m.rolname = current_user)
		ORDER BY 1, 2`
	read := func() ([][2]string, error) {
		rows, err := tx.Query(ctx, query, role)
		if err != nil {
			return nil, err
		}
		return pgx.CollectRows(rows, func(row pgx.CollectableRow) ([2]string, error) {
			var pair [2]string
			err := row.Scan(&pair[0], &pair[1])
			return pair, err
		})
	}
	foreign, err := read()
	if err != nil || len(foreign) == 0 {
		return err
	}
	for _, pair := range foreign {
		if _, err := tx.Exec(ctx, `REVOKE `+pgx.Identifier{pair[0]}.Sanitize()+` FROM `+pgx.Identifier{pair[1]}.Sanitize()); err != nil {
			return err
		}
	}
	left, err := read()
	if err != nil || len(left) == 0 {
		return err
	}
	var names []string
	for _, pair := range left {
		names = append(names, pair[1]+" in "+pair[0])
	}
	return newError(ReasonPermissionDenied, "revoke memberships of "+role, fmt.Sprintf(
		"memberships the operator did not grant are left after REVOKE: %s; revoke them as a superuser", strings.Join(names, ", ")), nil)
}
