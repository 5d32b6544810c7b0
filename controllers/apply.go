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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
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
// apply of the whole intent with render.FieldOwner and forced ownership,
// sent only when needed, so a converged tenant costs no write request.
//
// When a write is needed. The intent (the desired object, without status)
// is hashed, and the hash goes with it as render.AnnotationAppliedIntent.
// A write is sent when the cached object does not hold every field of the
// intent, that annotation included: when the object is missing, when a
// field of ours was changed or removed by someone else (drift), and when
// the intent changed since the last apply (the hash did), even if every
// field now wanted is already there. The write is always the whole intent,
// so server-side apply gives up what we set before and no longer send: a
// nodeSelector, a toleration or a limit removed from the spec, replicas
// left to the autoscaler. A subset check alone, without the hash, sends
// nothing when fields are only removed, and they then stay for good.
//
// Why a hash and not the alternatives: the managed fields of our field
// manager would say the same, but the cache strips them (they are much of
// an object's size, at 10,000 tenants); a server-side dry run would cost a
// request per object per reconcile, the very cost at rest this avoids. The
// hash costs one annotation per object. An object applied before the
// annotation existed is written once more, with it.
type applier struct {
	client client.Client
	scheme *runtime.Scheme
}

// beforeWrite runs when apply has decided to write, before it does, with
// the object as cached (nil when it does not exist yet).
type beforeWrite func(ctx context.Context, live client.Object) error

// apply makes the cluster hold desired, writing only when it does not yet
// or when the intent changed. When it writes, desired is updated from the
// API server's answer (its generation among the rest), and before, if
// given, runs first.
func (a applier) apply(ctx context.Context, desired client.Object, before ...beforeWrite) error {
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
	intent, err := intentHash(want)
	if err != nil {
		return fmt.Errorf("hashing %s %s: %w", gvk.Kind, desired.GetName(), err)
	}
	if err := unstructured.SetNestedField(want, intent, "metadata", "annotations", render.AnnotationAppliedIntent); err != nil {
		return err
	}

	live, err := a.scheme.New(gvk)
	if err != nil {
		return err
	}
	liveObj := live.(client.Object)
	switch err := a.client.Get(ctx, client.ObjectKeyFromObject(desired), liveObj); {
	case apierrors.IsNotFound(err):
		liveObj = nil
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

	for _, b := range before {
		if err := b(ctx, liveObj); err != nil {
			return err
		}
	}
	u := &unstructured.Unstructured{Object: want}
	if err := a.client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(render.FieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s: %w", gvk.Kind, objectName(desired), err)
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, desired); err != nil {
		return fmt.Errorf("reading the applied %s %s: %w", gvk.Kind, objectName(desired), err)
	}
	return nil
}

// intentHash is the SHA-256 of an object's intent, in hex: JSON encodes map
// keys sorted, so equal intents hash equal.
func intentHash(want map[string]any) (string, error) {
	b, err := json.Marshal(want)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
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
