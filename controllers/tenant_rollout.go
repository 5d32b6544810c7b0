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
	"errors"
	"fmt"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/millimetric/tenant-operator/internal/children"
)

// An operator upgrade that changes what every tenant's ingest pod template
// renders (a new default image, a new argument) would roll every tenant's
// pods at once: a cluster-wide surge of new pods, image pulls and cold
// caches, and, with a bad image, every tenant broken before anyone can
// react. rolloutGate spreads such a change as CloudNativePG spreads its
// upgrades: at most max tenants' ingest Deployments roll at once; the
// others keep serving on their previous template and wait their turn
// (IngestAvailable and Ready False, reason RolloutQueued).
//
// A tenant takes a slot when its reconcile is about to change the pod
// template of its existing ingest Deployment (a Deployment being created
// rolls nothing and never waits), and gives it back when a reconcile sees
// the Deployment rolled out on the latest template, or the tenant gone. A
// rollout that never completes (an image that does not pull) keeps its
// slot: with a bad image the wave stops at max tenants. The gate is
// consulted only when children.Applier has decided to write the Deployment, so
// a tenant at rest costs it nothing.
//
// Slots are this process's memory. A new leader (an operator upgrade is a
// restart) first counts the Deployments its cache shows mid-rollout, so
// rollouts started by its predecessor keep their slots.
type rolloutGate struct {
	// max is the number of tenants that may roll at once; 0 means no limit.
	max int
	// wake receives a queued tenant when a slot frees, so it does not wait
	// for its requeue; nil in tests that read no events.
	wake chan event.GenericEvent

	mu sync.Mutex
	// rolling are the tenants holding a slot, queued those waiting for one
	// in the order they first asked.
	rolling map[string]struct{}
	queued  []string
	seeded  bool
}

// DefaultMaxConcurrentRollouts is --max-concurrent-tenant-rollouts' default:
// a new default image reaches ten tenants at a time, so a bad one is seen
// on ten before it reaches the rest.
const DefaultMaxConcurrentRollouts = 10

// rolloutRetry is how soon a queued tenant asks again if no freed slot
// wakes it first.
const rolloutRetry = 30 * time.Second

// errRolloutQueued stops the apply of an ingest Deployment whose template
// change must wait for a slot.
var errRolloutQueued = errors.New("the ingest rollout waits for a slot")

func newRolloutGate(maxRolling int) *rolloutGate {
	return &rolloutGate{max: maxRolling, rolling: map[string]struct{}{}, wake: make(chan event.GenericEvent, 1024)}
}

// seed counts, once, the tenants whose ingest Deployment the cache shows
// mid-rollout as holding a slot.
func (g *rolloutGate) seed(ctx context.Context, c client.Reader) error {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seeded || g.max <= 0 {
		return nil
	}
	var list appsv1.DeploymentList
	if err := c.List(ctx, &list); err != nil {
		return fmt.Errorf("listing the ingest Deployments mid-rollout: %w", err)
	}
	for i := range list.Items {
		d := &list.Items[i]
		if ref := metav1.GetControllerOfNoCopy(d); ref != nil && rollingOut(d) {
			g.rolling[ref.Name] = struct{}{}
		}
	}
	g.seeded = true
	return nil
}

// admit says whether tenant may change its ingest pod template now: it
// holds a slot already, or takes a free one. Otherwise it is queued.
func (g *rolloutGate) admit(tenant string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if _, ok := g.rolling[tenant]; ok || g.max <= 0 {
		return true
	}
	if len(g.rolling) < g.max {
		g.rolling[tenant] = struct{}{}
		g.dequeue(tenant)
		return true
	}
	for _, q := range g.queued {
		if q == tenant {
			return false
		}
	}
	g.queued = append(g.queued, tenant)
	return false
}

// done gives tenant's slot back, if it held one, and wakes as many queued
// tenants as there are free slots.
func (g *rolloutGate) done(tenant string) {
	if g == nil {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.dequeue(tenant)
	if _, ok := g.rolling[tenant]; !ok {
		return
	}
	delete(g.rolling, tenant)
	for free := g.max - len(g.rolling); free > 0 && len(g.queued) > 0 && g.wake != nil; free-- {
		next := g.queued[0]
		select {
		case g.wake <- event.GenericEvent{Object: &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Name: next}}}:
			// It stays queued until it takes the slot; woken first, it
			// finds it free.
			g.queued = append(g.queued[1:], next)
		default:
			// The requeue brings it.
			return
		}
	}
}

// counts are the tenants rolling and queued, for tests and messages.
func (g *rolloutGate) counts() (rolling, queued int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.rolling), len(g.queued)
}

func (g *rolloutGate) dequeue(tenant string) {
	for i, q := range g.queued {
		if q == tenant {
			g.queued = append(g.queued[:i], g.queued[i+1:]...)
			return
		}
	}
}

// rollingOut says whether a Deployment is between templates: its latest
// change not observed yet, or pods of an older template not all replaced.
func rollingOut(d *appsv1.Deployment) bool {
	want := int32(1)
	if d.Spec.Replicas != nil {
		want = *d.Spec.Replicas
	}
	return d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < want || d.Status.Replicas > d.Status.UpdatedReplicas
}

// beforeTemplateChange is the children.BeforeWrite of the ingest Deployment's apply
// that takes a slot when the write would change the pod template of an
// existing Deployment, and stops the write with errRolloutQueued when no
// slot is free.
func (r *TenantReconciler) beforeTemplateChange(tenant string, desired *appsv1.Deployment) children.BeforeWrite {
	return func(ctx context.Context, live client.Object) error {
		if live == nil || r.rollouts == nil || r.rollouts.max <= 0 {
			return nil
		}
		want, err := children.TemplateHash(desired)
		if err != nil {
			return err
		}
		if children.AppliedTemplateHash(live.(*appsv1.Deployment)) == want {
			return nil
		}
		if err := r.rollouts.seed(ctx, r.Client); err != nil {
			return err
		}
		if !r.rollouts.admit(tenant) {
			return errRolloutQueued
		}
		return nil
	}
}
