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

package children

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/millimetric/tenant-operator/internal/render"
)

// Applier is the one way the operator writes a child object: server-side
// apply of the whole intent with render.FieldOwner and forced ownership,
// sent only when needed, so a converged tenant costs no write request.
//
// When a write is needed: when what we applied last, and still own, is not
// what we want now. Server-side apply records in the child's managed fields
// exactly which fields each manager owns; extracted for our manager
// (appliedBy) they are our last intent minus whatever someone else changed
// or removed since, as an update of a field takes it over. So a write goes
// out when the child is missing, when a field of ours was changed or
// removed by someone else (drift), and when our intent changed, fields we
// no longer want included. The write is always the whole intent, so the
// server gives up what we set before and no longer send: a nodeSelector, a
// toleration or a limit removed from the spec, replicas left to the
// autoscaler.
//
// The comparison is of hashes (intentHash): the cache's transform
// (Slim) hashes each child's applied projection when the child enters
// the cache, keeps the hash (cachedAppliedHash) and drops the rest of
// the spec, so the cache holds a few hundred bytes per child instead of the
// whole object. A child read some other way (with no such hash) is hashed
// here from its own managed fields. A server-side dry run would have told
// the same at the cost of a request per child per reconcile, the cost at
// rest this avoids.
type Applier struct {
	// Client reads through the cache and writes.
	Client client.Client
	// Scheme knows every kind of Kinds.
	Scheme *runtime.Scheme
}

// BeforeWrite runs when Apply has decided to write, before it does, with
// the object as cached (nil when it does not exist yet).
type BeforeWrite func(ctx context.Context, live client.Object) error

// Apply makes the cluster hold desired, writing only when it does not yet
// or when the intent changed. When it writes, desired is updated from the
// API server's answer (its generation among the rest), and before, if
// given, runs first.
func (a Applier) Apply(ctx context.Context, desired client.Object, before ...BeforeWrite) error {
	gvk, err := apiutil.GVKForObject(desired, a.Scheme)
	if err != nil {
		return err
	}
	want, err := runtime.DefaultUnstructuredConverter.ToUnstructured(desired)
	if err != nil {
		return fmt.Errorf("converting %s %s: %w", gvk.Kind, desired.GetName(), err)
	}
	// Neither is ours to set: status has its own subresource, and a null
	// creation timestamp is an artefact of the typed struct.
	delete(want, "status")
	unstructured.RemoveNestedField(want, "metadata", "creationTimestamp")
	want["apiVersion"], want["kind"] = gvk.GroupVersion().String(), gvk.Kind
	intent, err := intentHash(want)
	if err != nil {
		return fmt.Errorf("hashing %s %s: %w", gvk.Kind, desired.GetName(), err)
	}

	live, err := a.Scheme.New(gvk)
	if err != nil {
		return err
	}
	liveObj := live.(client.Object)
	switch err := a.Client.Get(ctx, client.ObjectKeyFromObject(desired), liveObj); {
	case apierrors.IsNotFound(err):
		liveObj = nil
	case err != nil:
		return fmt.Errorf("reading %s %s: %w", gvk.Kind, objectName(desired), err)
	default:
		applied, cached := cachedAppliedHash(liveObj)
		if !cached {
			applied = appliedHash(liveObj)
		}
		if applied == intent {
			return nil
		}
	}

	for _, b := range before {
		if err := b(ctx, liveObj); err != nil {
			return err
		}
	}
	u := &unstructured.Unstructured{Object: want}
	if err := a.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, objectName(desired), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, desired); err != nil {
		return fmt.Errorf("reading the applied %s %s: %w", gvk.Kind, objectName(desired), err)
	}
	return nil
}

// Remove deletes obj if the cache still has it, so that an object no longer
// wanted costs no request once it is gone.
func (a Applier) Remove(ctx context.Context, obj client.Object) error {
	if err := a.Client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return nil
	}
	return client.IgnoreNotFound(a.Client.Delete(ctx, obj, client.PropagationPolicy("Background")))
}

func objectName(o client.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}
