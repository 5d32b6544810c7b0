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
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
)

// The tests of this file hold Ready to the truth: what the tenant says is
// what runs, in every state, not only the happy one.

// updateTenant changes a tenant's spec, retrying on conflicts with the
// operator's status writes.
func updateTenant(t testing.TB, name string, change func(*analyticsv1alpha1.AnalyticsTenantSpec)) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		tenant := getTenant(name)
		change(&tenant.Spec)
		return k8s.Update(context.Background(), tenant)
	}, wait, tick).Should(Succeed())
}

// updateRegion changes a StorageRegion's spec, retrying on conflicts.
func updateRegion(t testing.TB, name string, change func(*analyticsv1alpha1.StorageRegionSpec)) {
	t.Helper()
	NewWithT(t).Eventually(func() error {
		sr := &analyticsv1alpha1.StorageRegion{}
		if err := k8s.Get(context.Background(), client.ObjectKey{Name: name}, sr); err != nil {
			return err
		}
		change(&sr.Spec)
		return k8s.Update(context.Background(), sr)
	}, wait, tick).Should(Succeed())
}

func ingestDeployment(ns string) func() *appsv1.Deployment {
	return get(&appsv1.Deployment{}, ns, render.IngestName)
}

// replicasOf is the ingest Deployment's spec.replicas, -1 while it does not
// exist.
func replicasOf(ns string) func() int32 {
	return func() int32 {
		d := ingestDeployment(ns)()
		if d == nil {
			return -1
		}
		return ptr.Deref(d.Spec.Replicas, -1)
	}
}

func TestFieldsNoLongerWantedAreGivenUp(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	toleration := corev1.Toleration{Key: "millimetric.ai/dedicated", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}
	updateRegion(t, "eu", func(s *analyticsv1alpha1.StorageRegionSpec) {
		s.Placement = &analyticsv1alpha1.PlacementSpec{
			NodeSelector: map[string]string{"millimetric.ai/region": "eu"},
			Tolerations:  []corev1.Toleration{toleration},
		}
	})
	resources := analyticsv1alpha1.IngestResources{
		Requests: &analyticsv1alpha1.ComputeResources{CPU: "100m", Memory: "64Mi"},
		Limits:   &analyticsv1alpha1.ComputeResources{CPU: "1", Memory: "256Mi"},
	}
	newTenant(t, "give-up", analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Resources: resources.DeepCopy()}})
	ns := "tenant-give-up"
	pod := func() corev1.PodSpec {
		d := ingestDeployment(ns)()
		if d == nil {
			return corev1.PodSpec{}
		}
		return d.Spec.Template.Spec
	}
	g.Eventually(pod, wait, tick).Should(And(
		HaveField("NodeSelector", HaveKeyWithValue("millimetric.ai/region", "eu")),
		HaveField("Tolerations", ContainElement(toleration)),
		HaveField("Containers", ContainElement(HaveField("Resources.Limits", HaveKey(corev1.ResourceCPU)))),
	))

	updateRegion(t, "eu", func(s *analyticsv1alpha1.StorageRegionSpec) { s.Placement = nil })
	updateTenant(t, "give-up", func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Ingest.Resources.Limits.CPU = "" })
	g.Eventually(pod, wait, tick).Should(And(
		HaveField("NodeSelector", BeEmpty()),
		HaveField("Tolerations", BeEmpty()),
		HaveField("Containers", ContainElement(HaveField("Resources.Limits", And(Not(HaveKey(corev1.ResourceCPU)), HaveKey(corev1.ResourceMemory))))),
	), "a nodeSelector, a toleration and a limit no longer wanted are removed from the Deployment")
	// The retention CronJob's pods give up the placement too.
	g.Eventually(func() map[string]string {
		return get(&batchv1.CronJob{}, ns, render.RetentionName)().Spec.JobTemplate.Spec.Template.Spec.NodeSelector
	}, wait, tick).Should(BeEmpty())
}

func TestAnAutoscaledTenantHandsItsReplicasToTheAutoscalerWithoutADip(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	autoscaling := func(lo, hi int32) *analyticsv1alpha1.IngestSpec {
		return &analyticsv1alpha1.IngestSpec{Autoscaling: &analyticsv1alpha1.AutoscalingSpec{MinReplicas: ptr.To(lo), MaxReplicas: hi}}
	}
	newTenant(t, "handover", analyticsv1alpha1.AnalyticsTenantSpec{Ingest: autoscaling(3, 6)})
	ns := "tenant-handover"
	replicas := replicasOf(ns)
	hpa := get(&autoscalingv2.HorizontalPodAutoscaler{}, ns, render.IngestName)
	ready := conditionOf("handover", analyticsv1alpha1.ConditionReady)

	// envtest runs no autoscaler: every count below is the operator's.
	g.Eventually(replicas, wait, tick).Should(BeEquivalentTo(3), "created at the autoscaler's minimum, not the default of 1")
	makeIngestAvailable(t, ns)
	g.Eventually(ready, wait, tick).Should(haveStatus(metav1.ConditionTrue))

	t.Run("suspended, it is scaled to zero and Ready by design", func(t *testing.T) {
		g := NewWithT(t)
		updateTenant(t, "handover", func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Suspend = true })
		g.Eventually(replicas, wait, tick).Should(BeZero())
		g.Eventually(hpa, wait, tick).Should(BeNil())
		makeIngestAvailable(t, ns)
		g.Eventually(conditionOf("handover", analyticsv1alpha1.ConditionIngestAvailable), wait, tick).Should(And(
			haveStatus(metav1.ConditionTrue), HaveField("Reason", analyticsv1alpha1.ReasonSuspended),
			HaveField("Message", ContainSubstring("by design"))))
		g.Eventually(ready, wait, tick).Should(haveStatus(metav1.ConditionTrue))
	})

	t.Run("resumed, it is back at the autoscaler's minimum at once and stays there", func(t *testing.T) {
		g := NewWithT(t)
		updateTenant(t, "handover", func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Suspend = false })
		g.Eventually(replicas, wait, tick).Should(BeEquivalentTo(3))
		g.Eventually(hpa, wait, tick).ShouldNot(BeNil())
		g.Consistently(replicas, 2*time.Second, tick).Should(BeEquivalentTo(3), "neither 0 nor 1 while the autoscaler takes over")
		makeIngestAvailable(t, ns)
		g.Eventually(ready, wait, tick).Should(haveStatus(metav1.ConditionTrue))
	})

	t.Run("what the autoscaler chose survives a change of the template", func(t *testing.T) {
		g := NewWithT(t)
		// As the autoscaler does: an update of the scale, under its own
		// field manager.
		g.Eventually(func() error {
			d := ingestDeployment(ns)()
			d.Spec.Replicas = ptr.To[int32](5)
			return k8s.Update(context.Background(), d, client.FieldOwner("horizontal-pod-autoscaler"))
		}, wait, tick).Should(Succeed())
		updateTenant(t, "handover", func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Ingest.Image = "ghcr.io/millimetric/ingest:next" })
		g.Eventually(func() string { return ingestDeployment(ns)().Spec.Template.Spec.Containers[0].Image }, wait, tick).
			Should(Equal("ghcr.io/millimetric/ingest:next"))
		g.Consistently(replicas, time.Second, tick).Should(BeEquivalentTo(5))
	})

	t.Run("fixed replicas take the count back, and autoscaling again keeps it within its bounds", func(t *testing.T) {
		g := NewWithT(t)
		updateTenant(t, "handover", func(s *analyticsv1alpha1.AnalyticsTenantSpec) {
			s.Ingest = &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](2)}
		})
		g.Eventually(replicas, wait, tick).Should(BeEquivalentTo(2))
		g.Eventually(hpa, wait, tick).Should(BeNil())
		updateTenant(t, "handover", func(s *analyticsv1alpha1.AnalyticsTenantSpec) { s.Ingest = autoscaling(3, 6) })
		g.Eventually(hpa, wait, tick).ShouldNot(BeNil())
		g.Eventually(replicas, wait, tick).Should(BeEquivalentTo(3))
		g.Consistently(replicas, time.Second, tick).Should(BeEquivalentTo(3))
	})
}

func TestATenantIsNotReadyUntilItsNewTemplateIsAvailable(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	newTenant(t, "rollout", analyticsv1alpha1.AnalyticsTenantSpec{})
	ns := "tenant-rollout"
	makeIngestAvailable(t, ns)
	ready := conditionOf("rollout", analyticsv1alpha1.ConditionReady)
	g.Eventually(ready, wait, tick).Should(haveStatus(metav1.ConditionTrue))

	updateTenant(t, "rollout", func(s *analyticsv1alpha1.AnalyticsTenantSpec) {
		s.Ingest = &analyticsv1alpha1.IngestSpec{Image: "ghcr.io/millimetric/ingest:next"}
	})
	generation := getTenant("rollout").Generation
	g.Eventually(ready, wait, tick).Should(And(haveStatus(metav1.ConditionFalse), HaveField("ObservedGeneration", generation)))

	// The Deployment controller has seen the change and made both new
	// pods (of the default 2); one old pod is still there.
	g.Eventually(func() error {
		d := ingestDeployment(ns)()
		d.Status = appsv1.DeploymentStatus{ObservedGeneration: d.Generation, Replicas: 3, UpdatedReplicas: 2, ReadyReplicas: 3, AvailableReplicas: 3}
		return k8s.Status().Update(ctx, d)
	}, wait, tick).Should(Succeed())
	g.Eventually(ready, wait, tick).Should(HaveField("Message", ContainSubstring("old pods are still to be replaced")))
	g.Consistently(ready, 2*time.Second, tick).Should(haveStatus(metav1.ConditionFalse),
		"a rollout is not done while a pod of the old template is still there")

	makeIngestAvailable(t, ns)
	g.Eventually(ready, wait, tick).Should(And(haveStatus(metav1.ConditionTrue), HaveField("ObservedGeneration", generation)))
}

func TestWithItsDatabaseDownATenantsNamespaceIsStillKeptAndIsolated(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	proxy := pg.NewProxy(t)
	adminSecret(t, "down-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	storageRegion(t, "down", analyticsv1alpha1.RegionUS, proxy.Port, "down-admin")
	g.Eventually(readyOf("down"), wait, tick).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
	newTenant(t, "db-down", analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	// Before the tenant's deletion at cleanup, which purges.
	t.Cleanup(proxy.Restore)
	ns := "tenant-db-down"
	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("db-down", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	// A converged tenant at rest does not dial its database: the region's
	// next check finds it gone (asked for now rather than in five minutes).
	proxy.Cut()
	recheck(t, "down")
	g.Eventually(readyOf("down"), wait, tick).Should(haveReady(metav1.ConditionFalse, analyticsv1alpha1.ReasonConnectionFailed))
	for _, obj := range []client.Object{
		&networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.NetworkPolicyDefaultDeny}},
		&corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.ResourceQuotaName}},
		&batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: render.RetentionName}},
	} {
		g.Expect(k8s.Get(ctx, client.ObjectKeyFromObject(obj), obj)).To(Succeed())
		uid := obj.GetUID()
		g.Expect(k8s.Delete(ctx, obj)).To(Succeed())
		g.Eventually(func() bool {
			fresh := obj.DeepCopyObject().(client.Object)
			return k8s.Get(ctx, client.ObjectKeyFromObject(obj), fresh) == nil && fresh.GetUID() != uid
		}, wait, tick).Should(BeTrue(), "%T %s is put back while the database is down", obj, obj.GetName())
	}

	g.Eventually(conditionOf("db-down", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionFalse))
	// The other parts say what they observe: all is well with them (the
	// CronJob just put back is seen by the next reconcile).
	for _, part := range []string{analyticsv1alpha1.ConditionNetworkIsolated, analyticsv1alpha1.ConditionIngestAvailable, analyticsv1alpha1.ConditionRetentionScheduled} {
		g.Eventually(conditionOf("db-down", part), wait, tick).Should(haveStatus(metav1.ConditionTrue), part)
	}
	g.Expect(conditionOf("db-down", analyticsv1alpha1.ConditionReady)()).To(And(haveStatus(metav1.ConditionFalse),
		HaveField("Reason", Not(Equal(analyticsv1alpha1.ReasonApplyFailed))),
		HaveField("Message", HavePrefix(analyticsv1alpha1.ConditionStorageReady+":"))),
		"Ready names the part that fails")

	proxy.Restore()
	g.Eventually(conditionOf("db-down", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
}

func TestNewCredentialsRollThePodsThatUseThem(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	newTenant(t, "rotate", analyticsv1alpha1.AnalyticsTenantSpec{})
	ns := "tenant-rotate"
	ingestHash := func() string {
		d := ingestDeployment(ns)()
		if d == nil {
			return ""
		}
		return d.Spec.Template.Annotations[render.AnnotationCredentialsHash]
	}
	retentionHash := func() string {
		cj := get(&batchv1.CronJob{}, ns, render.RetentionName)()
		if cj == nil {
			return ""
		}
		return cj.Spec.JobTemplate.Spec.Template.Annotations[render.AnnotationCredentialsHash]
	}
	secretHash := func(name string) func() string {
		return func() string { return render.CredentialsHash(get(&corev1.Secret{}, ns, name)()) }
	}
	g.Eventually(ingestHash, wait, tick).ShouldNot(BeEmpty())
	g.Eventually(retentionHash, wait, tick).ShouldNot(BeEmpty())
	g.Expect(ingestHash()).To(Equal(secretHash(render.IngestSecretName)()))
	g.Expect(retentionHash()).To(Equal(secretHash(render.StorageSecretName)()))
	for _, d := range []string{ingestHash(), retentionHash()} {
		for _, name := range []string{render.IngestSecretName, render.StorageSecretName} {
			g.Expect(d).NotTo(ContainSubstring(string(get(&corev1.Secret{}, ns, name)().Data[render.SecretKeyPassword])))
		}
	}
	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("rotate", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))

	for _, tt := range []struct {
		secret string
		hash   func() string
	}{
		{render.IngestSecretName, ingestHash},
		{render.StorageSecretName, retentionHash},
	} {
		before := tt.hash()
		g.Expect(k8s.Delete(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: tt.secret}})).To(Succeed())
		g.Eventually(tt.hash, wait, tick).ShouldNot(Equal(before), "a new password in %s changes its pods' template", tt.secret)
		g.Eventually(tt.hash, wait, tick).Should(Equal(secretHash(tt.secret)()))
	}
	makeIngestAvailable(t, ns)
	g.Eventually(conditionOf("rotate", analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
}

func TestADeletedStorageRegionLeavesNoPoolOpen(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	proxy := pg.NewProxy(t)
	adminSecret(t, "gone-admin", map[string]string{"username": pg.AdminUser, "password": pg.AdminPassword})
	sr := &analyticsv1alpha1.StorageRegion{
		ObjectMeta: objectMeta("gone"),
		Spec: analyticsv1alpha1.StorageRegionSpec{Region: analyticsv1alpha1.RegionUS, Postgres: analyticsv1alpha1.PostgresSpec{
			Host: "127.0.0.1", Port: ptr.To(int32(proxy.Port)), Database: pg.Databases["US"], SSLMode: analyticsv1alpha1.SSLModeDisable,
			AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: systemNamespace, Name: "gone-admin"},
		}},
	}
	g.Expect(k8s.Create(ctx, sr)).To(Succeed())
	g.Eventually(readyOf("gone"), wait, tick).Should(haveReady(metav1.ConditionTrue, analyticsv1alpha1.ReasonConnected))
	tenant := newTenant(t, "orphan", analyticsv1alpha1.AnalyticsTenantSpec{Region: analyticsv1alpha1.RegionUS})
	g.Eventually(conditionOf("orphan", analyticsv1alpha1.ConditionStorageReady), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	g.Expect(proxy.Open()).To(BeNumerically(">", 0), "the tenant reconciler's pool holds connections to the region")

	// The region is held while it serves the tenant (RegionFinalizer); the
	// tenant, purged through it, lets it go.
	g.Expect(k8s.Delete(ctx, sr)).To(Succeed())
	g.Eventually(deletionAllowedOf("gone"), wait, tick).Should(HaveField("Reason", analyticsv1alpha1.ReasonRegionInUse))
	deleteTenant(t, tenant)
	g.Eventually(regionGone("gone"), wait, tick).Should(BeTrue())
	g.Eventually(proxy.Open, wait, tick).Should(BeZero(), "the deleted StorageRegion's pool is closed")
}

func TestFinalizersAreChangedOnlyOnTheVersionTheyWereReadAt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	// No operator instance of the suite reconciles this tenant.
	tenant := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "locked", Labels: map[string]string{shardLabel: "nobody"}},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{"locked.example.com"}}}
	g.Expect(k8s.Create(ctx, tenant)).To(Succeed())
	t.Cleanup(func() {
		fresh := getTenant("locked")
		fresh.Finalizers = nil
		_ = k8s.Update(ctx, fresh)
		_ = k8s.Delete(ctx, fresh)
	})
	stale := tenant.DeepCopy()
	// Another controller adds its finalizer after our read.
	other := getTenant("locked")
	other.Finalizers = append(other.Finalizers, "example.com/hold")
	g.Expect(k8s.Update(ctx, other)).To(Succeed())

	r := &controllers.TenantReconciler{Client: k8s}
	err := controllers.PatchFinalizers(r, ctx, stale, controllerutil.AddFinalizer)
	g.Expect(apierrors.IsConflict(err)).To(BeTrue(), "a patch from a stale read must conflict, got %v", err)
	g.Expect(getTenant("locked").Finalizers).To(ConsistOf("example.com/hold"), "the other controller's finalizer is kept")

	g.Expect(controllers.PatchFinalizers(r, ctx, getTenant("locked"), controllerutil.AddFinalizer)).To(Succeed())
	g.Expect(getTenant("locked").Finalizers).To(ConsistOf("example.com/hold", analyticsv1alpha1.TenantFinalizer))
}

func TestThePurgeDecisionConfirmsACacheMissWithTheAPIServer(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	ns := &corev1.Namespace{ObjectMeta: objectMeta("tenant-cache-miss")}
	g.Expect(k8s.Create(ctx, ns)).To(Succeed())
	// Finalized, not only deleted: envtest runs no namespace controller,
	// and a namespace left Terminating would refuse the next run's.
	t.Cleanup(func() { removeNamespace(t, ns.Name) })
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: render.StorageSecretName},
		StringData: map[string]string{render.SecretKeyPassword: "not-a-real-one"}}
	g.Expect(k8s.Create(ctx, secret)).To(Succeed())

	// A cache that has not seen the Secret (not synced yet, or behind);
	// the API server has it.
	behind := fake.NewClientBuilder().WithScheme(scheme).Build()
	r := &controllers.TenantReconciler{Client: behind, APIReader: k8s, Settings: render.DefaultSettings()}
	never := func(name string) *analyticsv1alpha1.AnalyticsTenant {
		return &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	g.Expect(controllers.WasProvisioned(r, ctx, never("cache-miss"))).To(BeTrue(),
		"a credentials Secret the API server has means there may be data to purge")
	g.Expect(controllers.WasProvisioned(r, ctx, never("cache-miss-nothing"))).To(BeFalse(),
		"with no Secret anywhere and no schema in its status, the tenant was never provisioned")
}
