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
	"reflect"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/millimetric/tenant-operator/internal/render"
)

// applier is the one way the operator writes a child object: server-side
// apply with render.FieldOwner and forced ownership. It sends nothing when the
// cached object already holds every field the desired object sets, so a
// reconcile with nothing to change makes no write request, while a field of
// ours that someone changed or removed is put back.
type applier struct {
	client client.Client
	scheme *runtime.Scheme
}

// apply makes the cluster hold desired, writing only if it does not yet.
func (a applier) apply(ctx context.Context, desired client.Object) error {
	gvk, err := apiutil.GVKForObject(desired, a.scheme)
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

	live, err := a.scheme.New(gvk)
	if err != nil {
		return err
	}
	liveObj := live.(client.Object)
	switch err := a.client.Get(ctx, client.ObjectKeyFromObject(desired), liveObj); {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("reading %s %s: %w", gvk.Kind, objectName(desired), err)
	default:
		have, err := runtime.DefaultUnstructuredConverter.ToUnstructured(liveObj)
		if err != nil {
			return err
		}
		if subset(want, have) {
			return nil
		}
	}

	u := &unstructured.Unstructured{Object: want}
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, objectName(desired), err)
	}
	return nil
}

// remove deletes obj if the cache still has it, so that an object no longer
// wanted costs no request once it is gone.
func (a applier) remove(ctx context.Context, obj client.Object) error {
	if err := a.client.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !obj.GetDeletionTimestamp().IsZero() {
		return nil
	}
	return client.IgnoreNotFound(a.client.Delete(ctx, obj, client.PropagationPolicy("Background")))
}

func objectName(o client.Object) string {
	if o.GetNamespace() == "" {
		return o.GetName()
	}
	return o.GetNamespace() + "/" + o.GetName()
}

// subset reports whether have holds every value want sets. Empty maps,
// empty lists and nulls in want express no opinion; lists must have the
// same length and match element by element (the API server keeps their
// order); numbers compare by value.
func subset(want, have any) bool {
	switch w := want.(type) {
	case nil:
		return true
	case map[string]any:
		if len(w) == 0 {
			return true
		}
		h, ok := have.(map[string]any)
		if !ok {
			return false
		}
		for k, wv := range w {
			if !subset(wv, h[k]) {
				return false
			}
		}
		return true
	case []any:
		if len(w) == 0 {
			return true
		}
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], h[i]) {
				return false
			}
		}
		return true
	default:
		if wn, ok := number(want); ok {
			hn, ok := number(have)
			return ok && wn == hn
		}
		return reflect.DeepEqual(want, have)
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case int:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}
