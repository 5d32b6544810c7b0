//go:build e2e

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

package e2e

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// TestTheOperatorsServiceAccountWritesOnlyIntoItsOwnNamespaces makes, as
// the chart's ServiceAccount (what a stolen token of the operator could
// do), writes its ClusterRole grants but the chart's admission policy
// refuses: a service-account-token Secret in a tenant namespace the
// operator made, and writes into namespaces that are neither a tenant's
// nor its own. The same writes into the tenant's namespace are allowed, as
// the running operator's are.
func TestTheOperatorsServiceAccountWritesOnlyIntoItsOwnNamespaces(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-admission", "tenant-e2e-admission"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(func() error {
		return k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.StorageSecretName}, &corev1.Secret{})
	}, wait, tick).Should(Succeed(), "the operator, as the chart's ServiceAccount under its policy, did not write the tenant's Secret")

	denied := func(g Gomega, err error, says string) {
		g.Expect(err).To(HaveOccurred(), "allowed; the policy must deny it")
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "want Forbidden, got %v", err)
		g.Expect(err.Error()).To(And(ContainSubstring("ValidatingAdmissionPolicy"), ContainSubstring(says)))
	}
	token := func(namespace string) *corev1.Secret {
		return &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "e2e-stolen-token",
				Annotations: map[string]string{corev1.ServiceAccountNameKey: render.IngestName}},
			Type: corev1.SecretTypeServiceAccountToken,
		}
	}
	configMap := func(namespace string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "e2e-written"}}
	}

	t.Run("a service-account-token Secret is denied, in the tenant's own namespace too", func(t *testing.T) {
		g := NewWithT(t)
		denied(g, operatorClient.Create(ctx, token(ns)), "makes no Secret of type kubernetes.io/service-account-token")
		err := k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: "e2e-stolen-token"}, &corev1.Secret{})
		g.Expect(apierrors.IsNotFound(err)).To(BeTrue(), "the Secret exists: %v", err)
	})
	t.Run("writes into namespaces that are neither a tenant's nor the operator's own are denied", func(t *testing.T) {
		g := NewWithT(t)
		for _, other := range []string{metav1.NamespaceDefault, metav1.NamespaceSystem, "millimetric-edge"} {
			denied(g, operatorClient.Create(ctx, configMap(other)), "the tenant operator writes only into tenant namespaces")
			denied(g, operatorClient.Create(ctx, token(other)), "the tenant operator writes only into tenant namespaces")
		}
		// In its own namespace, only its Lease.
		denied(g, operatorClient.Create(ctx, configMap(systemNamespace)), "its leader election Lease into "+systemNamespace)
	})
	t.Run("kube-system cannot be relabelled as a tenant namespace to write into it", func(t *testing.T) {
		patch := client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"`+render.LabelManagedBy+`":"`+render.ManagedBy+
			`","`+render.LabelTenant+`":"system"}}}`))
		denied(NewWithT(t), operatorClient.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: metav1.NamespaceSystem}}, patch),
			"creates and changes only tenant namespaces")
	})
	t.Run("the same writes into the tenant's namespace are allowed", func(t *testing.T) {
		g := NewWithT(t)
		err := operatorClient.Create(ctx, configMap(ns), client.DryRunAll)
		g.Expect(err).NotTo(HaveOccurred())
		opaque := token(ns)
		opaque.Name, opaque.Type = "e2e-opaque", corev1.SecretTypeOpaque
		err = operatorClient.Create(ctx, opaque, client.DryRunAll)
		g.Expect(err).NotTo(HaveOccurred())
	})
}
