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
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// The predicates here keep a tenant at rest from being reconciled by events
// that cannot change the outcome of its reconcile: the status churn of its
// children (an autoscaler's metrics, a quota's usage), and a StorageRegion's
// re-checks that leave its readiness as it was.

// childChanged passes the events of a tenant's child that a reconcile can
// act on: creation, deletion, and updates of anything but status (a field
// of ours edited or removed, labels, annotations, owner references), or of
// the status fields the reconcile reads (the Deployment's rollout, the
// CronJob's runs, the HTTPRoute's verdicts of its gateways).
func childChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			if e.ObjectOld == nil || e.ObjectNew == nil {
				return true
			}
			return !reflect.DeepEqual(statusRead(e.ObjectOld), statusRead(e.ObjectNew)) ||
				!reflect.DeepEqual(withoutStatus(e.ObjectOld), withoutStatus(e.ObjectNew))
		},
	}
}

// statusRead is the part of a child's status a reconcile reads.
func statusRead(o client.Object) any {
	switch o := o.(type) {
	case *appsv1.Deployment:
		s := o.Status
		return []any{s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, deploymentProgress(o)}
	case *batchv1.CronJob:
		return []any{o.Status.LastScheduleTime, o.Status.LastSuccessfulTime, len(o.Status.Active)}
	case *gatewayv1.HTTPRoute:
		return routeVerdicts(o.Status.Parents)
	}
	return nil
}

func deploymentProgress(d *appsv1.Deployment) string {
	if c := deploymentCondition(d, appsv1.DeploymentProgressing); c != nil {
		return c.Reason
	}
	return ""
}

// withoutStatus is the object without its status and the metadata every
// write changes.
func withoutStatus(o client.Object) map[string]any {
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(o)
	if err != nil {
		return nil
	}
	delete(u, "status")
	if md, ok := u["metadata"].(map[string]any); ok {
		delete(md, "resourceVersion")
		delete(md, "managedFields")
	}
	return u
}

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
