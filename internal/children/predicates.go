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

package children

import (
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
)

// Changed passes the events of a tenant's child that a reconcile can act
// on, so a tenant at rest is not reconciled by the status churn of its
// children (an autoscaler's metrics, a quota's usage): creation, deletion,
// and updates of anything but status (a field of ours edited or removed,
// labels, annotations, owner references), or of the status its row of
// Kinds says a reconcile reads (the Deployment's rollout, the CronJob's
// runs, the HTTPRoute's verdicts of its gateways).
func Changed() predicate.Funcs {
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
	if k, ok := Of(o); ok && k.status != nil {
		return k.status(o)
	}
	return nil
}

func deploymentStatusRead(d *appsv1.Deployment) any {
	s := d.Status
	progress := ""
	if c := DeploymentCondition(d, appsv1.DeploymentProgressing); c != nil {
		progress = c.Reason
	}
	return []any{s.ObservedGeneration, s.Replicas, s.UpdatedReplicas, s.ReadyReplicas, s.AvailableReplicas, progress}
}

func cronJobStatusRead(cj *batchv1.CronJob) any {
	return []any{cj.Status.LastScheduleTime, cj.Status.LastSuccessfulTime, len(cj.Status.Active)}
}

func routeStatusRead(r *gatewayv1.HTTPRoute) any { return routeVerdicts(r.Status.Parents) }

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
