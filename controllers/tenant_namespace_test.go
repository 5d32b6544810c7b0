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

package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// squat makes a namespace as someone other than the operator would, with a
// Secret of its own in it, and removes it after the test as the namespace
// controller would.
func squat(t *testing.T, ns *corev1.Namespace) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Expect(k8s.Create(ctx, ns)).To(Succeed())
	g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "theirs"},
		StringData: map[string]string{"token": "not the operator's"}})).To(Succeed())
	t.Cleanup(func() { removeNamespace(t, ns.Name) })
}

// operatorWroteNothingInto checks that no object of the kinds the operator
// makes carries its managed-by label in the namespace, and that the
// namespace itself holds no field of the operator's field managers nor an
// owner reference to the tenant.
func operatorWroteNothingInto(g Gomega, name string, tenant types.UID) {
	ctx := context.Background()
	ns := &corev1.Namespace{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, ns)).To(Succeed())
	g.Expect(ns.OwnerReferences).NotTo(ContainElement(HaveField("UID", tenant)), "the operator put an owner reference to the tenant on namespace %s", name)
	for _, f := range ns.ManagedFields {
		g.Expect(f.Manager).NotTo(HavePrefix(render.FieldOwner), "the operator wrote fields of namespace %s", name)
	}
	for _, kind := range controllers.OwnedObjects() {
		if _, isNamespace := kind.(*corev1.Namespace); isNamespace {
			continue
		}
		gvk, err := apiutil.GVKForObject(kind, scheme)
		g.Expect(err).NotTo(HaveOccurred())
		list := &unstructured.UnstructuredList{}
		list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
		g.Expect(k8s.List(ctx, list, client.InNamespace(name), client.MatchingLabels{render.LabelManagedBy: render.ManagedBy})).To(Succeed())
		g.Expect(list.Items).To(BeEmpty(), "the operator wrote %s into namespace %s", gvk.Kind, name)
	}
	g.Expect(get(&corev1.Secret{}, name, render.StorageSecretName)()).To(BeNil(), "credentials were written into namespace %s", name)
	g.Expect(get(&corev1.Secret{}, name, "theirs")()).To(HaveField("Data", HaveKeyWithValue("token", []byte("not the operator's"))))
}

func TestANamespaceThatExistsAndIsNotTheTenantsIsNeverTakenOver(t *testing.T) {
	withRegions(t)
	ctx := context.Background()
	other := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "other-owner", Labels: map[string]string{shardLabel: "nobody"}},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{"other-owner.example.com"}}}
	NewWithT(t).Expect(k8s.Create(ctx, other)).To(Succeed())
	t.Cleanup(func() { _ = k8s.Delete(ctx, other) })

	tests := []struct {
		name, tenant string
		labels       map[string]string
		owner        *metav1.OwnerReference
		says         string
	}{
		{"someone else's namespace of the tenant's name", "squatted", nil, nil,
			"namespace tenant-squatted exists and is not this tenant's (no AnalyticsTenant controls it)"},
		{"a namespace with the operator's labels for the tenant copied onto it", "copied",
			map[string]string{render.LabelTenant: "copied", render.LabelManagedBy: render.ManagedBy, render.LabelRegion: "EU"}, nil,
			"(no AnalyticsTenant controls it, though it carries this tenant's label)"},
		{"a namespace another AnalyticsTenant controls", "claimed", nil,
			&metav1.OwnerReference{APIVersion: analyticsv1alpha1.GroupVersion.String(), Kind: render.TenantKind, Name: other.Name, UID: other.UID, Controller: ptr.To(true)},
			"(AnalyticsTenant other-owner (UID " + string(other.UID) + ") controls it)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := NewWithT(t)
			ns := "tenant-" + tt.tenant
			namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: tt.labels}}
			if tt.owner != nil {
				namespace.OwnerReferences = []metav1.OwnerReference{*tt.owner}
			}
			squat(t, namespace)
			tenant := newTenant(t, tt.tenant, analyticsv1alpha1.AnalyticsTenantSpec{})

			g.Eventually(conditionOf(tt.tenant, analyticsv1alpha1.ConditionReady), wait, tick).Should(And(
				haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonNamespaceConflict),
				HaveField("Message", And(ContainSubstring(tt.says),
					ContainSubstring("the operator writes nothing into it, no Secret, and deleting the tenant leaves it")))))
			g.Eventually(eventsAbout(tt.tenant), wait, tick).Should(ContainElement(And(
				HaveField("Reason", analyticsv1alpha1.ReasonNamespaceConflict), HaveField("Type", corev1.EventTypeWarning))))
			got := getTenant(tt.tenant)
			g.Expect(got.Status.Namespace).To(BeEmpty(), "status names someone else's namespace as the tenant's")
			for _, c := range []string{analyticsv1alpha1.ConditionNetworkIsolated, analyticsv1alpha1.ConditionIngestAvailable} {
				g.Expect(conditionOf(tt.tenant, c)()).To(haveReady(metav1.ConditionUnknown, analyticsv1alpha1.ReasonNamespaceConflict))
			}
			g.Consistently(func(g Gomega) { operatorWroteNothingInto(g, ns, tenant.UID) }, 2*time.Second, tick).Should(Succeed())

			// Nothing was provisioned for it either: no credentials to write.
			store, err := storage.Open(ctx, pg.AdminConfig("EU"))
			g.Expect(err).NotTo(HaveOccurred())
			defer store.Close()
			left, err := store.Verify(ctx, tt.tenant)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(left.Empty()).To(BeTrue(), "provisioned for a tenant whose namespace is someone else's: %s", left)

			// Deleting the tenant leaves the namespace: no owner reference of
			// the tenant's for the garbage collector (played by deleteTenant).
			deleteTenant(t, tenant)
			live := get(&corev1.Namespace{}, "", ns)()
			g.Expect(live).NotTo(BeNil(), "deleting the tenant deleted namespace %s", ns)
			g.Expect(live.DeletionTimestamp).To(BeNil(), "deleting the tenant deleted namespace %s", ns)
			operatorWroteNothingInto(g, ns, tenant.UID)
		})
	}
}

func TestATenantGetsItsOwnNamespaceOnceSomeoneElsesIsGone(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	const name, ns = "vacated", "tenant-vacated"
	squat(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})
	newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionReady), wait, tick).Should(
		haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonNamespaceConflict))

	removeNamespace(t, ns)
	// Looked at again after the backoff, not at once: nothing tells the
	// operator that someone else's namespace went.
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	live := get(&corev1.Namespace{}, "", ns)()
	g.Expect(live).NotTo(BeNil())
	ref := metav1.GetControllerOf(live)
	g.Expect(ref).NotTo(BeNil())
	g.Expect(ref.UID).To(Equal(getTenant(name).UID), "the namespace is not controlled by the tenant")
	g.Expect(getTenant(name).Status.Namespace).To(Equal(ns))
}

func TestANamespaceOfAnEarlierTenantOfTheSameNameIsWaitedFor(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	const name, ns = "successor", "tenant-successor"
	earlier := types.UID("00000000-0000-0000-0000-0000000000e1")
	squat(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, OwnerReferences: []metav1.OwnerReference{{
		APIVersion: analyticsv1alpha1.GroupVersion.String(), Kind: render.TenantKind, Name: name, UID: earlier, Controller: ptr.To(true),
	}}}})
	tenant := newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionReady), wait, tick).Should(And(
		haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonProgressing),
		HaveField("Message", ContainSubstring("namespace tenant-successor belongs to an earlier AnalyticsTenant successor (UID "+string(earlier)+")"))))
	g.Consistently(func(g Gomega) { operatorWroteNothingInto(g, ns, tenant.UID) }, 2*time.Second, tick).Should(Succeed())
	g.Expect(eventsAbout(name)()).NotTo(ContainElement(HaveField("Reason", analyticsv1alpha1.ReasonNamespaceConflict)),
		"waiting for the garbage collector is no conflict to warn of")

	// The garbage collector deletes it, its owner being gone.
	removeNamespace(t, ns)
	g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
}
