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
	"fmt"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/priorityqueue"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// A burst of tenant events comes to one check of their region, after the
// delay, in the queue controller-runtime gives the controller.
func TestTenantEventsOfARegionComeToOneRecount(t *testing.T) {
	const delay = 300 * time.Millisecond
	q := priorityqueue.New[reconcile.Request]("recount-test")
	defer q.ShutDown()
	eu := reconcile.Request{NamespacedName: types.NamespacedName{Name: "eu"}}
	h := recountAfter(delay, func(context.Context, client.Object) []reconcile.Request { return []reconcile.Request{eu} })
	tenant := func(i int) *analyticsv1alpha1.AnalyticsTenant {
		return &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("t-%d", i)}}
	}

	ctx := context.Background()
	start := time.Now()
	for i := range 50 {
		h.Update(ctx, event.UpdateEvent{ObjectOld: tenant(i), ObjectNew: tenant(i)}, q)
	}
	h.Delete(ctx, event.DeleteEvent{Object: tenant(50)}, q)
	if n := q.Len(); n != 0 {
		t.Fatalf("%d requests ready at once, want none before the delay", n)
	}
	got, _ := q.Get()
	if got != eu {
		t.Fatalf("got %v, want %v", got, eu)
	}
	if waited := time.Since(start); waited < delay {
		t.Errorf("the recount came after %s, before the delay of %s", waited, delay)
	}
	q.Done(got)
	time.Sleep(2 * delay)
	if n := q.Len(); n != 0 {
		t.Errorf("%d more requests after the first: 51 events should come to one", n)
	}
}
