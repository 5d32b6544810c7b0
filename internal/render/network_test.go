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
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

func policiesByName(t *testing.T, tenant Tenant) map[string]*networkingv1.NetworkPolicy {
	t.Helper()
	out := map[string]*networkingv1.NetworkPolicy{}
	for _, np := range NetworkPolicies(tenant) {
		if _, dup := out[np.Name]; dup {
			t.Fatalf("two NetworkPolicies named %s", np.Name)
		}
		out[np.Name] = np
	}
	for _, name := range []string{"default-deny", "ingest", "retention"} {
		if out[name] == nil {
			t.Fatalf("no NetworkPolicy %s among %v", name, out)
		}
	}
	return out
}

var bothDirections = []networkingv1.PolicyType{networkingv1.PolicyTypeIngress, networkingv1.PolicyTypeEgress}

func tcp(port int32) networkingv1.NetworkPolicyPort {
	return networkingv1.NetworkPolicyPort{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(port))}
}

func dnsRule() networkingv1.NetworkPolicyEgressRule {
	s := DefaultSettings()
	return networkingv1.NetworkPolicyEgressRule{
		To: []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &s.DNSNamespaceSelector, PodSelector: &s.DNSPodSelector}},
		Ports: []networkingv1.NetworkPolicyPort{
			{Protocol: ptr.To(corev1.ProtocolUDP), Port: ptr.To(intstr.FromInt32(53))},
			tcp(53),
		},
	}
}

func TestDefaultDenyCoversEveryPod(t *testing.T) {
	np := policiesByName(t, tenantWith())["default-deny"]
	if len(np.Spec.PodSelector.MatchLabels) > 0 || len(np.Spec.PodSelector.MatchExpressions) > 0 {
		t.Errorf("default-deny selects %v, want every pod", np.Spec.PodSelector)
	}
	if diff := cmp.Diff(bothDirections, np.Spec.PolicyTypes); diff != "" {
		t.Errorf("policy types (-want +got):\n%s", diff)
	}
	if len(np.Spec.Ingress) > 0 || len(np.Spec.Egress) > 0 {
		t.Errorf("default-deny allows something: %+v", np.Spec)
	}
}

func TestIngestAcceptsOnlyTheEdgeAndItsMetricsOnlyMonitoring(t *testing.T) {
	edgeRule := networkingv1.NetworkPolicyIngressRule{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "millimetric-edge"}}}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(IngestPort)},
	}
	monitoringRule := networkingv1.NetworkPolicyIngressRule{
		From:  []networkingv1.NetworkPolicyPeer{{NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}}}},
		Ports: []networkingv1.NetworkPolicyPort{tcp(IngestMetricsPort)},
	}
	tests := []struct {
		name             string
		edge, monitoring metav1.LabelSelector
		want             []networkingv1.NetworkPolicyIngressRule
	}{
		{
			name: "the edge namespaces may reach ingest's public port, the monitoring ones its metrics port, and nothing else may",
			edge: DefaultSettings().EdgeNamespaceSelector, monitoring: DefaultSettings().MonitoringNamespaceSelector,
			want: []networkingv1.NetworkPolicyIngressRule{edgeRule, monitoringRule},
		},
		{
			name: "an empty edge selector, which would match every namespace, lets no visitor in",
			edge: metav1.LabelSelector{}, monitoring: DefaultSettings().MonitoringNamespaceSelector,
			want: []networkingv1.NetworkPolicyIngressRule{monitoringRule},
		},
		{
			name: "an empty monitoring selector lets no scraper in",
			edge: DefaultSettings().EdgeNamespaceSelector, monitoring: metav1.LabelSelector{},
			want: []networkingv1.NetworkPolicyIngressRule{edgeRule},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith()
			tenant.Settings.EdgeNamespaceSelector = tt.edge
			tenant.Settings.MonitoringNamespaceSelector = tt.monitoring
			np := policiesByName(t, tenant)["ingest"]
			if diff := cmp.Diff(IngestDeployment(tenant).Spec.Selector.MatchLabels, np.Spec.PodSelector.MatchLabels); diff != "" {
				t.Errorf("the policy selects other pods than ingest's (-deployment +policy):\n%s", diff)
			}
			if diff := cmp.Diff(bothDirections, np.Spec.PolicyTypes); diff != "" {
				t.Errorf("policy types (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, np.Spec.Ingress); diff != "" {
				t.Errorf("ingress (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEgressReachesOnlyDNSAndTheRegionsStorage(t *testing.T) {
	regionPeers := []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}}}
	tests := []struct {
		name   string
		tenant Tenant
		want   []networkingv1.NetworkPolicyEgressRule
	}{
		{
			name:   "a region without ports is reached on its database port",
			tenant: tenantWith(),
			want: []networkingv1.NetworkPolicyEgressRule{dnsRule(), {
				To: regionPeers, Ports: []networkingv1.NetworkPolicyPort{tcp(6432)},
			}},
		},
		{
			name:   "a region with ports is reached on them",
			tenant: tenantVariants()["a tenant whose region lists its storage ports"],
			want: []networkingv1.NetworkPolicyEgressRule{dnsRule(), {
				To: regionPeers, Ports: []networkingv1.NetworkPolicyPort{tcp(5433)},
			}},
		},
		{
			name:   "a region without egress peers gives no storage rule at all",
			tenant: tenantVariants()["a tenant whose region has no egress or placement"],
			want:   []networkingv1.NetworkPolicyEgressRule{dnsRule()},
		},
		{
			name: "a region with ports but no peers gives no storage rule at all",
			tenant: func() Tenant {
				t := tenantWith()
				t.Region.Spec.Egress.To = nil
				t.Region.Spec.Egress.Ports = []networkingv1.NetworkPolicyPort{tcp(5432)}
				return t
			}(),
			want: []networkingv1.NetworkPolicyEgressRule{dnsRule()},
		},
		{
			name:   "an unknown region gives no storage rule at all",
			tenant: tenantVariants()["a tenant whose region is not known yet"],
			want:   []networkingv1.NetworkPolicyEgressRule{dnsRule()},
		},
	}
	for _, tt := range tests {
		for _, component := range []string{"ingest", "retention"} {
			t.Run(tt.name+" by "+component, func(t *testing.T) {
				np := policiesByName(t, tt.tenant)[component]
				if diff := cmp.Diff(tt.want, np.Spec.Egress); diff != "" {
					t.Errorf("egress (-want +got):\n%s", diff)
				}
				if diff := cmp.Diff(bothDirections, np.Spec.PolicyTypes); diff != "" {
					t.Errorf("policy types (-want +got):\n%s", diff)
				}
				if component == "retention" && len(np.Spec.Ingress) > 0 {
					t.Errorf("something may reach the retention pods: %+v", np.Spec.Ingress)
				}
			})
		}
	}
}

func TestNoPolicyAllowsEverything(t *testing.T) {
	for name, tenant := range tenantVariants() {
		t.Run(name, func(t *testing.T) {
			for _, np := range NetworkPolicies(tenant) {
				for _, r := range np.Spec.Egress {
					if len(r.To) == 0 || len(r.Ports) == 0 {
						t.Errorf("%s has an egress rule open to any peer or any port: %+v", np.Name, r)
					}
					for _, p := range r.To {
						if p.IPBlock == nil && p.NamespaceSelector == nil && p.PodSelector == nil {
							t.Errorf("%s has an empty egress peer", np.Name)
						}
					}
				}
				for _, r := range np.Spec.Ingress {
					if len(r.From) == 0 || len(r.Ports) == 0 {
						t.Errorf("%s has an ingress rule open to any peer or any port: %+v", np.Name, r)
					}
				}
			}
		})
	}
}

func TestRetentionPolicySelectsTheRetentionPods(t *testing.T) {
	tenant := tenantWith()
	np := policiesByName(t, tenant)["retention"]
	podLabels := RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Labels
	selector, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
	if err != nil {
		t.Fatal(err)
	}
	if selector.Empty() {
		t.Fatal("the retention policy selects every pod")
	}
	if !selector.Matches(labels.Set(podLabels)) {
		t.Errorf("the retention policy %v does not select the retention pods %v", selector, podLabels)
	}
	if selector.Matches(labels.Set(IngestDeployment(tenant).Spec.Template.Labels)) {
		t.Error("the retention policy selects the ingest pods")
	}
}
