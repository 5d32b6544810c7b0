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

package render

import (
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
)

// NetworkPolicies isolate the tenant's namespace:
//
//   - NetworkPolicyDefaultDeny denies all traffic to and from every pod, so
//     whatever the other policies do not allow is refused;
//   - NetworkPolicyIngest lets the edge (pods in namespaces matching
//     Settings.EdgeNamespaceSelector) and the Gateway's pods (in namespaces
//     matching Settings.GatewayNamespaceSelector) reach ingest on
//     IngestPort, the
//     monitoring namespaces (Settings.MonitoringNamespaceSelector) scrape it
//     on IngestMetricsPort, and ingest reach only the cluster DNS and its
//     region's storage;
//   - NetworkPolicyRetention lets nothing reach the retention pods, and them
//     reach only the cluster DNS and the region's storage.
//
// Storage is the region's egress peers on its egress ports (or, when it
// lists none, the database's port over TCP). A region without egress peers
// (or an unknown region) gives no storage rule at all rather than one that
// allows everything; an empty edge, gateway or monitoring selector, which would
// match every namespace, gives no ingress rule.
func NetworkPolicies(t Tenant) []*networkingv1.NetworkPolicy {
	both := []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}
	egress := append(dnsEgress(t), storageEgress(t)...)

	var ingestIngress []networkingv1.NetworkPolicyIngressRule
	for _, from := range []struct {
		namespaces metav1.LabelSelector
		port       int32
	}{
		{t.Settings.EdgeNamespaceSelector, IngestPort},
		{t.Settings.GatewayNamespaceSelector, IngestPort},
		{t.Settings.MonitoringNamespaceSelector, IngestMetricsPort},
	} {
		if !selectorIsEmpty(from.namespaces) {
			ingestIngress = append(ingestIngress, networkingv1.NetworkPolicyIngressRule{
				From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: from.namespaces.DeepCopy()}},
				Ports: []networkingv1.NetworkPolicyPort{tcpPort(from.port)},
			})
		}
	}

	policy := func(name string, labels map[string]string, spec networkingv1.NetworkPolicySpec) *networkingv1.NetworkPolicy {
		return &networkingv1.NetworkPolicy{
			TypeMeta:   metav1.TypeMeta{APIVersion: "networking.k8s.io/v1", Kind: "NetworkPolicy"},
			ObjectMeta: objectMeta(t, name, labels),
			Spec:       spec,
		}
	}
	return []*networkingv1.NetworkPolicy{
		policy(NetworkPolicyDefaultDeny, Labels(t), networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{},
			PolicyTypes: both,
		}),
		policy(NetworkPolicyIngest, componentLabels(t, ComponentIngest), networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(t, ComponentIngest)},
			PolicyTypes: both,
			Ingress:     ingestIngress,
			Egress:      deepCopyEgress(egress),
		}),
		policy(NetworkPolicyRetention, componentLabels(t, ComponentRetention), networkingv1.NetworkPolicySpec{
			PodSelector: metav1.LabelSelector{MatchLabels: selectorLabels(t, ComponentRetention)},
			PolicyTypes: both,
			Egress:      deepCopyEgress(egress),
		}),
	}
}

// dnsEgress allows name lookups at the cluster DNS, over UDP and TCP.
func dnsEgress(t Tenant) []networkingv1.NetworkPolicyEgressRule {
	return []networkingv1.NetworkPolicyEgressRule{{
		To: []networkingv1.NetworkPolicyPeer{{
			NamespaceSelector: t.Settings.DNSNamespaceSelector.DeepCopy(),
			PodSelector:       t.Settings.DNSPodSelector.DeepCopy(),
		}},
		Ports: []networkingv1.NetworkPolicyPort{
			{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))},
			{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(53))},
		},
	}}
}

// storageEgress allows connections to the region's storage, or nothing when
// the region does not say where it is.
func storageEgress(t Tenant) []networkingv1.NetworkPolicyEgressRule {
	if t.Region == nil || t.Region.Spec.Egress == nil || len(t.Region.Spec.Egress.To) == 0 {
		return nil
	}
	e := t.Region.Spec.Egress.DeepCopy()
	ports := e.Ports
	if len(ports) == 0 {
		ports = []networkingv1.NetworkPolicyPort{tcpPort(storagePort(t.Region))}
	}
	return []networkingv1.NetworkPolicyEgressRule{{To: e.To, Ports: ports}}
}

func storagePort(r *v1alpha1.StorageRegion) int32 {
	return r.Spec.Postgres.Effective().Port
}

func tcpPort(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(port))}
}

func selectorIsEmpty(s metav1.LabelSelector) bool {
	return len(s.MatchLabels) == 0 && len(s.MatchExpressions) == 0
}

func deepCopyEgress(rules []networkingv1.NetworkPolicyEgressRule) []networkingv1.NetworkPolicyEgressRule {
	out := make([]networkingv1.NetworkPolicyEgressRule, len(rules))
	for i := range rules {
		rules[i].DeepCopyInto(&out[i])
	}
	return out
}
