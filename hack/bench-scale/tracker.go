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

package main

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// tracker watches the tenants, their namespaces and ingest Deployments (the
// operator's and the floor's) and stamps each change with the time the
// bench heard of it, so a figure is the time of the watch event, not of the
// poll that looked at it.
type tracker struct {
	mu         sync.Mutex
	tenants    map[string]*tenantState // by name
	deploys    map[string]*deployState // by namespace
	namespaces map[string]bool
	// tenantGoneAt and namespaceGoneAt are when the last tenant and the
	// last namespace deleted went.
	tenantGoneAt, namespaceGoneAt time.Time
}

type tenantState struct {
	generation int64
	ready      bool
	// readyGen is the generation Ready was last True for, and readyAt when
	// it first was, for that generation.
	readyGen        int64
	readyAt         time.Time
	reason, message string
}

type deployState struct {
	available   bool
	availableAt time.Time
	// configHash is the ingest pod template's config hash, and hashAt when
	// it last changed.
	configHash string
	hashAt     time.Time
}

func startTracker(ctx context.Context, cfg *rest.Config) (*tracker, error) {
	hasTenant, err := labels.NewRequirement(render.LabelTenant, selection.Exists, nil)
	if err != nil {
		return nil, err
	}
	c, err := cache.New(cfg, cache.Options{
		Scheme: scheme,
		ByObject: map[client.Object]cache.ByObject{
			&appsv1.Deployment{}: {Label: labels.SelectorFromSet(labels.Set{render.LabelComponent: render.ComponentIngest})},
			&corev1.Namespace{}:  {Label: labels.NewSelector().Add(*hasTenant)},
		},
		DefaultTransform: cache.TransformStripManagedFields(),
	})
	if err != nil {
		return nil, err
	}
	t := &tracker{tenants: map[string]*tenantState{}, deploys: map[string]*deployState{}, namespaces: map[string]bool{}}
	for _, h := range []struct {
		obj client.Object
		on  func(obj client.Object, deleted bool, now time.Time)
	}{
		{&analyticsv1alpha1.AnalyticsTenant{}, t.onTenant},
		{&appsv1.Deployment{}, t.onDeployment},
		{&corev1.Namespace{}, t.onNamespace},
	} {
		inf, err := c.GetInformer(ctx, h.obj)
		if err != nil {
			return nil, err
		}
		// Each event is stamped when heard, and handled with t.mu held.
		on := func(obj any, deleted bool) {
			if d, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
				obj = d.Obj
			}
			o, ok := obj.(client.Object)
			if !ok {
				return
			}
			now := time.Now()
			t.mu.Lock()
			defer t.mu.Unlock()
			h.on(o, deleted, now)
		}
		if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { on(obj, false) },
			UpdateFunc: func(_, obj any) { on(obj, false) },
			DeleteFunc: func(obj any) { on(obj, true) },
		}); err != nil {
			return nil, err
		}
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the bench's own watches did not sync")
	}
	return t, nil
}

func (t *tracker) onTenant(obj client.Object, deleted bool, now time.Time) {
	at, ok := obj.(*analyticsv1alpha1.AnalyticsTenant)
	if !ok {
		return
	}
	if deleted {
		delete(t.tenants, at.Name)
		t.tenantGoneAt = now
		return
	}
	st := t.tenants[at.Name]
	if st == nil {
		st = &tenantState{}
		t.tenants[at.Name] = st
	}
	st.generation = at.Generation
	c := meta.FindStatusCondition(at.Status.Conditions, analyticsv1alpha1.ConditionReady)
	st.ready = c != nil && c.Status == "True" && c.ObservedGeneration >= at.Generation
	if c != nil {
		st.reason, st.message = c.Reason, c.Message
	}
	if st.ready && st.readyGen != at.Generation {
		st.readyGen, st.readyAt = at.Generation, now
	}
}

func (t *tracker) onDeployment(obj client.Object, deleted bool, now time.Time) {
	d, ok := obj.(*appsv1.Deployment)
	if !ok {
		return
	}
	if deleted {
		delete(t.deploys, d.Namespace)
		return
	}
	st := t.deploys[d.Namespace]
	if st == nil {
		st = &deployState{}
		t.deploys[d.Namespace] = st
	}
	if h := d.Spec.Template.Annotations[render.AnnotationConfigHash]; h != st.configHash {
		st.configHash, st.hashAt = h, now
	}
	available := deploymentAvailable(d)
	if available && !st.available {
		st.availableAt = now
	}
	st.available = available
}

// deploymentAvailable is the operator's IngestAvailable True: the latest
// template observed, rolled out to every pod, and every pod available.
func deploymentAvailable(d *appsv1.Deployment) bool {
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas >= want &&
		s.Replicas <= s.UpdatedReplicas && s.AvailableReplicas >= want
}

func (t *tracker) onNamespace(obj client.Object, deleted bool, now time.Time) {
	if deleted {
		delete(t.namespaces, obj.GetName())
		t.namespaceGoneAt = now
		return
	}
	t.namespaces[obj.GetName()] = true
}

// readyTenants counts the Ready tenants among names and says when the last
// of them turned Ready; notReady describes a few of the others.
func (t *tracker) readyTenants(names []string) (ready int, last time.Time, notReady string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return countDone(names, func(n string) (bool, time.Time, string) {
		switch st := t.tenants[n]; {
		case st == nil:
			return false, time.Time{}, n + ": not seen"
		case st.ready:
			return true, st.readyAt, ""
		default:
			return false, time.Time{}, fmt.Sprintf("%s: %s (%s)", n, st.reason, st.message)
		}
	})
}

// availableDeployments is readyTenants for the Deployments in namespaces.
func (t *tracker) availableDeployments(namespaces []string) (available int, last time.Time, notAvailable string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return countDone(namespaces, func(ns string) (bool, time.Time, string) {
		if st := t.deploys[ns]; st != nil && st.available {
			return true, st.availableAt, ""
		}
		return false, time.Time{}, ns
	})
}

// countDone counts the keys that state says are done, with the latest
// time one became so, and describes the first three that are not.
func countDone(keys []string, state func(key string) (done bool, at time.Time, why string)) (count int, last time.Time, waiting string) {
	var notYet []string
	for _, k := range keys {
		done, at, why := state(k)
		if done {
			count++
			if at.After(last) {
				last = at
			}
		} else if len(notYet) < 3 {
			notYet = append(notYet, why)
		}
	}
	return count, last, strings.Join(notYet, "; ")
}

// remaining counts the tenants (or namespaces) among names that still
// exist, names a few, and says when the last deleted went.
func (t *tracker) remaining(names []string, namespaces bool) (left int, some string, goneAt time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	goneAt = t.tenantGoneAt
	if namespaces {
		goneAt = t.namespaceGoneAt
	}
	var existing []string
	for _, n := range names {
		exists := t.tenants[n] != nil
		if namespaces {
			exists = t.namespaces[n]
		}
		if exists {
			existing = append(existing, n)
		}
	}
	sort.Strings(existing)
	return len(existing), strings.Join(existing[:min(3, len(existing))], ", "), goneAt
}

func (t *tracker) tenant(name string) tenantState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.tenants[name]; st != nil {
		return *st
	}
	return tenantState{}
}

func (t *tracker) deployment(namespace string) deployState {
	t.mu.Lock()
	defer t.mu.Unlock()
	if st := t.deploys[namespace]; st != nil {
		return *st
	}
	return deployState{}
}
