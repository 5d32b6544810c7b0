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
	"bytes"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// The predicates here keep a tenant at rest from being reconciled by events
// that cannot change the outcome of its reconcile: a StorageRegion's
// re-checks that leave its readiness as it was (its children's status churn
// is children.Changed's).

// regionReadinessChanged passes the StorageRegion events that can change
// what its tenants do: creation, deletion, a change of its spec, and its
// Ready condition changing status or reason. A re-check that leaves the
// region as Ready as it was (its tenant count moved, say) re-enqueues no
// tenant.
func regionReadinessChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*analyticsv1alpha1.StorageRegion)
			n, ok2 := e.ObjectNew.(*analyticsv1alpha1.StorageRegion)
			if !ok1 || !ok2 {
				return true
			}
			return o.Generation != n.Generation || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero() ||
				readiness(o) != readiness(n)
		},
	}
}

// readiness is a StorageRegion's Ready status and reason.
func readiness(sr *analyticsv1alpha1.StorageRegion) string {
	c := meta.FindStatusCondition(sr.Status.Conditions, analyticsv1alpha1.ConditionReady)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// reconcileRequested passes a tenant's update that sets a new value of its
// ReconcileRequestedAnnotation.
func reconcileRequested() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			key := analyticsv1alpha1.ReconcileRequestedAnnotation
			return e.ObjectOld.GetAnnotations()[key] != e.ObjectNew.GetAnnotations()[key]
		},
	}
}

// adminCAChanged passes a Secret's update that changes its CA bundle
// (AdminSecretCAKey), which an admin Secret's regions' tenants carry in
// their own Secrets. A tenant's own Secret passes too and maps to no
// region. An admin Secret's creation or deletion changes its regions'
// readiness instead, which regionReadinessChanged passes.
func adminCAChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.Secret)
			n, ok2 := e.ObjectNew.(*corev1.Secret)
			return ok1 && ok2 && !bytes.Equal(o.Data[AdminSecretCAKey], n.Data[AdminSecretCAKey])
		},
	}
}
