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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	appsv1ac "k8s.io/client-go/applyconfigurations/apps/v1"
	autoscalingv2ac "k8s.io/client-go/applyconfigurations/autoscaling/v2"
	batchv1ac "k8s.io/client-go/applyconfigurations/batch/v1"
	corev1ac "k8s.io/client-go/applyconfigurations/core/v1"
	networkingv1ac "k8s.io/client-go/applyconfigurations/networking/v1"
	policyv1ac "k8s.io/client-go/applyconfigurations/policy/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"
	gatewayv1ac "sigs.k8s.io/gateway-api/applyconfiguration/apis/v1"

	"github.com/millimetric/tenant-operator/internal/render"
)

// What we applied to a child is read back from the child itself: server-side
// apply records, in its managed fields, exactly the fields each field
// manager owns. Extracted for render.FieldOwner, they are our last applied
// intent minus every field someone else has since changed or removed (an
// update of a field takes its ownership). So the child is converged exactly
// when that projection equals what we want now; see applier.

// appliedBy is what fieldManager applied to obj and still owns, as an
// apply configuration.
func appliedBy(obj client.Object, fieldManager string) (any, error) {
	switch o := obj.(type) {
	case *corev1.Namespace:
		return corev1ac.ExtractNamespace(o, fieldManager)
	case *corev1.ServiceAccount:
		return corev1ac.ExtractServiceAccount(o, fieldManager)
	case *corev1.ConfigMap:
		return corev1ac.ExtractConfigMap(o, fieldManager)
	case *corev1.Secret:
		return corev1ac.ExtractSecret(o, fieldManager)
	case *corev1.Service:
		return corev1ac.ExtractService(o, fieldManager)
	case *corev1.ResourceQuota:
		return corev1ac.ExtractResourceQuota(o, fieldManager)
	case *appsv1.Deployment:
		return appsv1ac.ExtractDeployment(o, fieldManager)
	case *autoscalingv2.HorizontalPodAutoscaler:
		return autoscalingv2ac.ExtractHorizontalPodAutoscaler(o, fieldManager)
	case *policyv1.PodDisruptionBudget:
		return policyv1ac.ExtractPodDisruptionBudget(o, fieldManager)
	case *networkingv1.NetworkPolicy:
		return networkingv1ac.ExtractNetworkPolicy(o, fieldManager)
	case *batchv1.CronJob:
		return batchv1ac.ExtractCronJob(o, fieldManager)
	case *gatewayv1.HTTPRoute:
		return gatewayv1ac.ExtractHTTPRoute(o, fieldManager)
	}
	return nil, fmt.Errorf("no extraction of the applied configuration of a %T", obj)
}

// appliedHash is intentHash of what the operator applied to obj and still
// owns; "" when it cannot be told, which no intent hashes to.
func appliedHash(obj client.Object) string {
	applied, err := appliedBy(obj, render.FieldOwner)
	if err != nil {
		return ""
	}
	b, err := json.Marshal(applied)
	if err != nil {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return ""
	}
	h, err := intentHash(m)
	if err != nil {
		return ""
	}
	return h
}

// intentHash is the SHA-256, in hex, of an object's fields as JSON with
// its keys sorted, nulls, empty maps and empty lists left out: they state
// nothing an apply keeps, and the typed structs and the managed fields
// spell them differently.
func intentHash(obj map[string]any) (string, error) {
	b, err := json.Marshal(pruned(obj))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// pruned is v without nulls, empty maps and empty lists, at any depth.
func pruned(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if p := pruned(e); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		// An element stays even when empty: `ingress: [{}]` (allow all) is
		// not `ingress: []`.
		out := make([]any, 0, len(v))
		for _, e := range v {
			p := pruned(e)
			if _, isMap := e.(map[string]any); isMap && p == nil {
				p = map[string]any{}
			}
			if p != nil {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}
