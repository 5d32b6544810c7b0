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

// Package controllers holds the reconcilers, one file per concern.
//
// The tenant reconciler (tenant_controller.go: its fields, Reconcile, its
// watches) runs its phases in the order of tenantPhases, each in the file
// named after it: tenant_region.go, tenant_namespace.go,
// tenant_isolation.go, tenant_storage.go, tenant_workloads.go (and
// tenant_rollout.go, the gate its pod template changes pass),
// tenant_route.go, tenant_retention.go, tenant_compliance.go. Deletion is
// in tenant_deletion.go, the status written once at the end in
// tenant_status.go (and tenant_stall.go), what a run observes in
// tenant_scope.go, its events in tenant_events.go. The StorageRegion
// reconciler is storageregion_controller.go; region_*.go hold a region's
// admin Secret, the region policy and the pool of open stores, which both
// reconcilers use. How a child is written, cached and watched, for every
// kind of child, is internal/children's; cache.go says what the manager
// caches, and predicates.go which events of tenants and regions pass.
package controllers
