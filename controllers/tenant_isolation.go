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
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	ctrl "sigs.k8s.io/controller-runtime"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// reconcileIsolation applies what isolates the namespace before anything
// runs in it: the NetworkPolicies (deny by default, ingest reachable only
// from the edge, egress only to DNS and the region's storage) and the
// ResourceQuota. It owns NetworkIsolated. It needs nothing from the
// database, so a deleted policy is put back while storage is failing too.
func (r *TenantReconciler) reconcileIsolation(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	t := s.render()
	for _, np := range render.NetworkPolicies(t) {
		if err := r.apply.Apply(ctx, np); err != nil {
			return ctrl.Result{}, err
		}
	}
	if err := r.apply.Apply(ctx, render.ResourceQuota(t)); err != nil {
		return ctrl.Result{}, err
	}
	msg := "all traffic is denied except edge to ingest, and DNS and storage from the tenant's pods"
	switch {
	case s.region == nil:
		msg = fmt.Sprintf("all traffic is denied except edge to ingest and DNS; no StorageRegion is known for region %s, so tenant pods cannot reach storage", s.spec.Region)
	case s.region.Spec.Egress == nil || len(s.region.Spec.Egress.To) == 0:
		msg = fmt.Sprintf("all traffic is denied except edge to ingest and DNS; StorageRegion %s lists no egress peers, so tenant pods cannot reach storage", s.region.Name)
	}
	s.set(analyticsv1alpha1.ConditionNetworkIsolated, metav1.ConditionTrue, analyticsv1alpha1.ReasonReconciled, msg)
	return ctrl.Result{}, nil
}
