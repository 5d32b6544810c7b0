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

package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// Exported for the tests of package controllers_test, which run against the
// suite's API server.

// PatchFinalizers is (*TenantReconciler).patchFinalizers.
func PatchFinalizers(r *TenantReconciler, ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant, change func(client.Object, string) bool) error {
	return r.patchFinalizers(ctx, tenant, change)
}

// WasProvisioned is (*TenantReconciler).wasProvisioned for a tenant as read.
func WasProvisioned(r *TenantReconciler, ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant) bool {
	return r.wasProvisioned(ctx, newTenantScope(tenant, r.Settings))
}

// ClaimsOf is where r finds the claimants of a hostname (r.claims).
func ClaimsOf(r *TenantReconciler) client.Reader { return r.claims }
