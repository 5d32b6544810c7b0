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
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// namespaceCreateFieldOwner is the field manager of the create that makes a
// tenant's namespace: what it sets (the owner reference and the labels that
// never change in the tenant's life) stays its own, so that dropping a
// field from render.FieldOwner's later applies still removes it.
const namespaceCreateFieldOwner = render.FieldOwner + "-create"

// earlierTenantWait is how often a tenant whose namespace name is still
// held by an earlier tenant of the same name looks again: the garbage
// collector deletes that namespace once it sees its tenant gone.
const earlierTenantWait = 5 * time.Second

// reconcileNamespace makes the tenant's namespace, which everything else
// lives in: created by the operator, never adopted. A namespace of that
// name is the tenant's only when its controller is this AnalyticsTenant,
// by UID: the owner reference the create set, which the garbage collector
// deletes the namespace by. Labels are not enough, anyone can copy them.
// A namespace that is someone else's refuses the tenant
// (ReasonNamespaceConflict): nothing is written into it, no Secret, and
// since it carries no owner reference to the tenant, deleting the tenant
// leaves it. One still controlled by an earlier AnalyticsTenant of the same
// name, or being deleted, is waited for. It owns no part condition: a
// namespace that is not the tenant's stops the reconcile and says so on
// Ready.
func (r *TenantReconciler) reconcileNamespace(ctx context.Context, s *tenantScope) (ctrl.Result, error) {
	desired := render.Namespace(s.render())
	live, created, cached, err := r.createNamespace(ctx, desired)
	if err != nil {
		return ctrl.Result{}, err
	}
	if cached && !controlledBy(live, s.tenant) && r.APIReader != nil {
		// The cache keeps a skeleton of a namespace, and may be behind:
		// what is not the tenant's is decided, and reported, on the
		// namespace as the API server has it.
		if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
			return ctrl.Result{}, fmt.Errorf("reading Namespace %s: %w", desired.Name, err)
		}
	}
	if !created && !controlledBy(live, s.tenant) {
		return r.namespaceNotTheTenants(s, live), nil
	}
	return ctrl.Result{}, r.apply.Apply(ctx, desired)
}

// controlledBy says whether ns is the tenant's own: its controller is
// this AnalyticsTenant, by UID.
func controlledBy(ns *corev1.Namespace, tenant *analyticsv1alpha1.AnalyticsTenant) bool {
	ref := metav1.GetControllerOfNoCopy(ns)
	return ref != nil && ref.UID == tenant.UID && ref.Kind == render.TenantKind &&
		groupOf(ref.APIVersion) == analyticsv1alpha1.GroupVersion.Group
}

// createNamespace creates the tenant's namespace unless one of its name
// exists. It returns the namespace that exists, whether this call created
// it, and whether it is the cache's skeleton of it (else it was read from
// the API server: the cache holds only namespaces with the operator's
// managed-by label).
func (r *TenantReconciler) createNamespace(ctx context.Context, desired *corev1.Namespace) (ns *corev1.Namespace, created, cached bool, err error) {
	live := &corev1.Namespace{}
	err = r.Get(ctx, client.ObjectKeyFromObject(desired), live)
	if err == nil {
		return live, false, true, nil
	}
	if !apierrors.IsNotFound(err) {
		return nil, false, false, fmt.Errorf("reading Namespace %s: %w", desired.Name, err)
	}
	// What makes it a tenant namespace, which never changes while the
	// tenant lives (and what the operator's admission policy asks of a
	// namespace it creates); the rest is left to the apply that follows.
	create := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:            desired.Name,
		Labels:          map[string]string{},
		OwnerReferences: desired.OwnerReferences,
	}}
	for _, k := range []string{render.LabelTenant, render.LabelManagedBy, render.LabelPodSecurityEnforce} {
		create.Labels[k] = desired.Labels[k]
	}
	err = r.Create(ctx, create, client.FieldOwner(namespaceCreateFieldOwner))
	switch {
	case err == nil:
		return create, true, false, nil
	case !apierrors.IsAlreadyExists(err):
		return nil, false, false, fmt.Errorf("creating Namespace %s: %w", desired.Name, err)
	}
	if r.APIReader == nil {
		return nil, false, false, fmt.Errorf("creating Namespace %s: it exists, and cannot be read uncached", desired.Name)
	}
	if err := r.APIReader.Get(ctx, client.ObjectKeyFromObject(desired), live); err != nil {
		// Gone again (NotFound) is retried as any failure is.
		return nil, false, false, fmt.Errorf("reading Namespace %s, which exists: %w", desired.Name, err)
	}
	return live, false, false, nil
}

// namespaceNotTheTenants stops the reconcile of a tenant whose namespace's
// name is taken by ns, which is not the tenant's: refused, or waiting for
// an earlier tenant's namespace to go. It returns when to look again.
func (r *TenantReconciler) namespaceNotTheTenants(s *tenantScope, ns *corev1.Namespace) ctrl.Result {
	ref := metav1.GetControllerOfNoCopy(ns)
	isTenant := ref != nil && ref.Kind == render.TenantKind && groupOf(ref.APIVersion) == analyticsv1alpha1.GroupVersion.Group
	s.namespaceNotOurs = true
	earlier := isTenant && ref.Name == s.tenant.Name
	if earlier || !ns.DeletionTimestamp.IsZero() {
		why := "is being deleted"
		if earlier {
			why = fmt.Sprintf("belongs to an earlier AnalyticsTenant %s (UID %s), which the garbage collector deletes it with", ref.Name, ref.UID)
		}
		s.wait(fmt.Sprintf("namespace %s %s; the tenant's own namespace is created once it is gone", ns.Name, why))
		return ctrl.Result{RequeueAfter: earlierTenantWait}
	}
	owner := "no AnalyticsTenant controls it"
	if isTenant {
		owner = fmt.Sprintf("AnalyticsTenant %s (UID %s) controls it", ref.Name, ref.UID)
	} else if ref != nil {
		owner = fmt.Sprintf("%s %s controls it", ref.Kind, ref.Name)
	}
	if ns.Labels[render.LabelTenant] == s.tenant.Name {
		owner += ", though it carries this tenant's label"
	}
	s.refuse(analyticsv1alpha1.ReasonNamespaceConflict, fmt.Sprintf(
		"namespace %s exists and is not this tenant's (%s): the operator writes nothing into it, no Secret, and deleting the tenant leaves it; "+
			"delete that namespace, or create the tenant under another name", ns.Name, owner))
	return ctrl.Result{RequeueAfter: failingBackoff(s.failingSince(analyticsv1alpha1.ConditionReady))}
}

// groupOf is the group of an apiVersion ("group/version", or "version"
// for the core group).
func groupOf(apiVersion string) string {
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return ""
	}
	return gv.Group
}
