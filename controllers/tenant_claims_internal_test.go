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
	"context"
	"reflect"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

const testShardKey = "analytics.millimetric.ai/shard"

func claimant(name, shard string, hostnames ...analyticsv1alpha1.Hostname) *analyticsv1alpha1.AnalyticsTenant {
	t := &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID(name + "-uid")}}
	if shard != "" {
		t.Labels = map[string]string{testShardKey: shard}
	}
	if len(hostnames) > 0 {
		t.Spec.Ingest = &analyticsv1alpha1.IngestSpec{Hostnames: hostnames}
	}
	return t
}

func TestAClaimKeepsWhatDecidesItAndTheShardsLabelsOnly(t *testing.T) {
	g := NewWithT(t)
	created := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	full := &analyticsv1alpha1.AnalyticsTenant{
		ObjectMeta: metav1.ObjectMeta{
			Name: "acme", UID: "acme-uid", ResourceVersion: "42", Generation: 3, CreationTimestamp: created,
			Labels:        map[string]string{testShardKey: "a", "team": "web"},
			Annotations:   map[string]string{lastApplied: "{}"},
			Finalizers:    []string{analyticsv1alpha1.TenantFinalizer},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}},
		},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{
			Region: analyticsv1alpha1.RegionUS, Domains: []analyticsv1alpha1.Domain{"acme.com"},
			Ingest: &analyticsv1alpha1.IngestSpec{Image: "ingest:1", Hostnames: []analyticsv1alpha1.Hostname{"stats.acme.com"}},
		},
		Status: analyticsv1alpha1.AnalyticsTenantStatus{Namespace: "tenant-acme", ObservedGeneration: 3},
	}
	transform := claimOnly([]string{testShardKey})
	got, err := transform(full)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(got).To(Equal(&analyticsv1alpha1.AnalyticsTenant{
		ObjectMeta: metav1.ObjectMeta{
			Name: "acme", UID: "acme-uid", ResourceVersion: "42", CreationTimestamp: created,
			Labels: map[string]string{testShardKey: "a"},
		},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{Ingest: &analyticsv1alpha1.IngestSpec{Hostnames: []analyticsv1alpha1.Hostname{"stats.acme.com"}}},
	}))

	t.Run("the tenants of one shard share one map of labels", func(t *testing.T) {
		g := NewWithT(t)
		other, err := transform(claimant("other", "a"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(reflect.ValueOf(other.(*analyticsv1alpha1.AnalyticsTenant).Labels).Pointer()).To(Equal(reflect.ValueOf(got.(*analyticsv1alpha1.AnalyticsTenant).Labels).Pointer()))
		elsewhere, err := transform(claimant("elsewhere", "b"))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(elsewhere.(*analyticsv1alpha1.AnalyticsTenant).Labels).To(Equal(map[string]string{testShardKey: "b"}))
		unlabelled, err := transform(claimant("unlabelled", ""))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(unlabelled.(*analyticsv1alpha1.AnalyticsTenant).Labels).To(BeNil())
	})
}

func TestAChangedClaimWakesTheOtherClaimantsOfThisShardOnly(t *testing.T) {
	g := NewWithT(t)
	scheme := runtime.NewScheme()
	g.Expect(analyticsv1alpha1.AddToScheme(scheme)).To(Succeed())
	shared := analyticsv1alpha1.Hostname("stats.shared.example")
	before := claimant("changed", "b", shared)
	after := claimant("changed", "b")
	after.ResourceVersion = "2"
	view := fake.NewClientBuilder().WithScheme(scheme).
		WithIndex(&analyticsv1alpha1.AnalyticsTenant{}, hostnameIndex, tenantHostnames).
		WithObjects(after, claimant("same-shard", "a", shared), claimant("other-shard", "b", shared), claimant("unrelated", "a", "stats.other.example")).
		Build()
	shard, err := labels.Parse(testShardKey + "=a")
	g.Expect(err).NotTo(HaveOccurred())

	q := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[reconcile.Request]())
	defer q.ShutDown()
	tenantsSharingHostnames(view, shard).Update(context.Background(), event.UpdateEvent{ObjectOld: before, ObjectNew: after}, q)
	var woken []string
	for q.Len() > 0 {
		req, _ := q.Get()
		woken = append(woken, req.Name)
		q.Done(req)
	}
	g.Expect(woken).To(ConsistOf("same-shard"), "a tenant of another shard is not this instance's to reconcile")
}
