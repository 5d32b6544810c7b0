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

// Package render builds the Kubernetes objects one AnalyticsTenant becomes:
// its namespace, the ingest service and everything around it, the retention
// CronJob, the two credentials Secrets, the NetworkPolicies and the
// ResourceQuota.
//
// Every builder is a pure function of a Tenant (the tenant object, its
// effective spec, the StorageRegion serving it and the operator's Settings):
// it talks to no API server and reads no clock, so the same inputs always
// give the same objects. The objects are meant to be applied with
// server-side apply under FieldOwner, so each one carries its TypeMeta, the
// tenant's labels and a controller owner reference to the tenant, and
// nothing the API server owns: no status, no creation timestamp, no
// resource version. Builders read the effective spec (Tenant.Spec), never
// the raw spec, so a default is decided only in the API package.
//
// No builder other than StorageSecret and IngestSecret ever sees a
// credential: workloads read theirs from a Secret by reference, each only
// its own: ingest the ingest role's (IngestSecretName), retention the
// schema owner's (StorageSecretName).
package render
