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

// Package children is how the operator writes, caches and watches the
// objects it makes for a tenant, its children. Kinds is the one list of
// their kinds: a row per kind says what the operator applied to such an
// object (its extraction from the managed fields), what the cache keeps of
// it, and the part of its status a reconcile reads. A row is made by kind,
// whose type parameter ties the three to the object's type, so a kind
// cannot be added without all of them, and no other list of kinds exists:
// the cache (controllers.CacheOptions), the watches, the apply and the
// predicates all read this one.
package children

import (
	"fmt"
	"reflect"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"
)

// Kind is a row of Kinds: one kind of child object.
type Kind struct {
	object client.Object
	// gatewayAPI: served only where the Gateway API is installed.
	gatewayAPI bool
	extract    func(client.Object, string) (any, error)
	slim       func(client.Object, metav1.ObjectMeta) client.Object
	status     func(client.Object) any
}

// Object is an empty object of the kind.
func (k Kind) Object() client.Object { return k.object.DeepCopyObject().(client.Object) }

// kind makes a row. extract is client-go's Extract<Kind> for the kind (what
// a field manager applied to the object and still owns); slim is what the
// cache keeps of an object, given the metadata Slim keeps of every
// child; status is the part of its status a reconcile reads, which
// Changed compares (nil for none).
func kind[T client.Object, AC any](object T, extract func(T, string) (AC, error), slim func(T, metav1.ObjectMeta) T, status func(T) any) Kind {
	k := Kind{
		object:  object,
		extract: func(o client.Object, manager string) (any, error) { return extract(o.(T), manager) },
		slim:    func(o client.Object, m metav1.ObjectMeta) client.Object { return slim(o.(T), m) },
	}
	if status != nil {
		k.status = func(o client.Object) any { return status(o.(T)) }
	}
	return k
}

// Kinds are the kinds of the operator's children, a row each. HTTPRoute is
// last: it is served only where the Gateway API is installed (Served).
var Kinds = []Kind{
	kind(&corev1.Namespace{}, corev1ac.ExtractNamespace, slimNamespace, nil),
	kind(&corev1.ServiceAccount{}, corev1ac.ExtractServiceAccount,
		func(_ *corev1.ServiceAccount, m metav1.ObjectMeta) *corev1.ServiceAccount {
			return &corev1.ServiceAccount{ObjectMeta: m}
		}, nil),
	kind(&corev1.ConfigMap{}, corev1ac.ExtractConfigMap,
		func(_ *corev1.ConfigMap, m metav1.ObjectMeta) *corev1.ConfigMap {
			return &corev1.ConfigMap{ObjectMeta: m}
		}, nil),
	kind(&corev1.Secret{}, corev1ac.ExtractSecret, slimSecret, nil),
	kind(&corev1.Service{}, corev1ac.ExtractService,
		func(_ *corev1.Service, m metav1.ObjectMeta) *corev1.Service { return &corev1.Service{ObjectMeta: m} }, nil),
	kind(&corev1.ResourceQuota{}, corev1ac.ExtractResourceQuota,
		func(_ *corev1.ResourceQuota, m metav1.ObjectMeta) *corev1.ResourceQuota {
			return &corev1.ResourceQuota{ObjectMeta: m}
		}, nil),
	kind(&appsv1.Deployment{}, appsv1ac.ExtractDeployment, slimDeployment, deploymentStatusRead),
	kind(&autoscalingv2.HorizontalPodAutoscaler{}, autoscalingv2ac.ExtractHorizontalPodAutoscaler,
		func(_ *autoscalingv2.HorizontalPodAutoscaler, m metav1.ObjectMeta) *autoscalingv2.HorizontalPodAutoscaler {
			return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: m}
		}, nil),
	kind(&policyv1.PodDisruptionBudget{}, policyv1ac.ExtractPodDisruptionBudget,
		func(_ *policyv1.PodDisruptionBudget, m metav1.ObjectMeta) *policyv1.PodDisruptionBudget {
			return &policyv1.PodDisruptionBudget{ObjectMeta: m}
		}, nil),
	kind(&networkingv1.NetworkPolicy{}, networkingv1ac.ExtractNetworkPolicy,
		func(_ *networkingv1.NetworkPolicy, m metav1.ObjectMeta) *networkingv1.NetworkPolicy {
			return &networkingv1.NetworkPolicy{ObjectMeta: m}
		}, nil),
	kind(&batchv1.CronJob{}, batchv1ac.ExtractCronJob, slimCronJob, cronJobStatusRead),
	gatewayKind(kind(&gatewayv1.HTTPRoute{}, gatewayv1ac.ExtractHTTPRoute, slimRoute, routeStatusRead)),
}

func gatewayKind(k Kind) Kind {
	k.gatewayAPI = true
	return k
}

// byType finds the row of obj's kind. It is made in init: Kinds' rows
// reach it (a Deployment's slim reads its applied template through Of).
var byType map[reflect.Type]Kind

func init() {
	byType = make(map[reflect.Type]Kind, len(Kinds))
	for _, k := range Kinds {
		byType[reflect.TypeOf(k.object)] = k
	}
}

// Of is the row of obj's kind, and whether it is a child's kind.
func Of(obj client.Object) (Kind, bool) {
	k, ok := byType[reflect.TypeOf(obj)]
	return k, ok
}

// All are empty objects of every kind of Kinds.
func All() []client.Object {
	out := make([]client.Object, 0, len(Kinds))
	for _, k := range Kinds {
		out = append(out, k.Object())
	}
	return out
}

// Served are empty objects of the kinds the API server serves: all of
// them, but HTTPRoute only with the Gateway API (gatewayAPI, as
// controllers.GatewayAPIServed found).
func Served(gatewayAPI bool) []client.Object {
	out := make([]client.Object, 0, len(Kinds))
	for _, k := range Kinds {
		if !k.gatewayAPI || gatewayAPI {
			out = append(out, k.Object())
		}
	}
	return out
}

// appliedBy is what fieldManager applied to obj and still owns, as an
// apply configuration.
func appliedBy(obj client.Object, fieldManager string) (any, error) {
	k, ok := Of(obj)
	if !ok {
		return nil, fmt.Errorf("no extraction of the applied configuration of a %T", obj)
	}
	return k.extract(obj, fieldManager)
}
