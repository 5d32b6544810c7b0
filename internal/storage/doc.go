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

// Package storage keeps the tenants of one region's PostgreSQL database:
// each tenant gets an owner role and a schema of the same name, owned by
// that role and closed to every other, holding its raw events partitioned
// by UTC day, its daily aggregates and a roll-up ledger. Beside it, an
// ingest role may only insert events: it cannot read events back or change
// a table. The names (TenantNames) are opaque, t_<id> and i_<id>, as every
// tenant role can list the schemas and roles of the server; which are whose
// is recorded in OperatorSchema (namesTable), and everything that finds a
// tenant's data goes by that record.
//
// The operator uses a Store (Postgres, opened with the region's
// administrator) to Provision, Purge and Verify tenants. The retention job
// uses RunRetention with the owner's credentials (ConnectTenant) to roll
// expired days into aggregates and drop them; the ingest service writes
// with the ingest role's. OldestRawEventDay tells the operator whether raw
// events outlive the window, from partition bounds.
//
// A tenant deleted under deletionPolicy Retain is held (Retain): its roles
// lose LOGIN and the hold is recorded in the region's database, in
// OperatorSchema, so it outlives the tenant object. SweepRetained purges the
// holds that have ended, and drops the raw events of those still held that
// their plan's window no longer keeps; Adopt gives a held tenant's data to a
// tenant re-created under its name within the hold, only when that tenant
// names the deleted tenant's uid.
//
// The administrator never runs a tenant's objects with its own rights: it
// reads a tenant's tables, migrates them and expires a held tenant's days as
// the schema's owner (SET LOCAL ROLE), and its sessions look up unqualified
// names in pg_catalog only. Every call of a Postgres has a deadline (DefaultCallTimeout), every connection a TCP user
// timeout, and no connection answers a server's request for the password in
// clear text or as MD5. Which day it is comes from the database's clock.
//
// Failures are *Error values whose Reason (see ReasonFor) a controller can
// show as a condition reason. No error message, String or log line of this
// package contains a password: connection strings given to the driver carry
// none, passwords are sent to the server only as SCRAM verifiers, and error
// messages are scrubbed of the passwords the call knew.
//
// The package takes plain values, not the operator's API types, so it can be
// used and tested on its own.
package storage
