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
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/millimetric/tenant-operator/internal/render"
)

// What we applied to a child is read back from the child itself: server-side
// apply records, in its managed fields, exactly the fields each field
// manager owns. Extracted for render.FieldOwner, they are our last applied
// intent minus every field someone else has since changed or removed (an
// update of a field takes its ownership). So the child is converged exactly
// when that projection equals what we want now; see Applier.

// appliedHash is intentHash of what the operator applied to obj and still
// owns; "" when it cannot be told, which no intent hashes to.
func appliedHash(obj client.Object) string {
	applied, err := appliedBy(obj, render.FieldOwner)
	if err != nil {
		return ""
	}
	b, err := json.Marshal(applied)
	if err != nil {
		return ""
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return ""
	}
	h, err := intentHash(m)
	if err != nil {
		return ""
	}
	return h
}

// intentHash is the SHA-256, in hex, of an object's fields as JSON with
// its keys sorted, nulls, empty maps and empty lists left out: they state
// nothing an apply keeps, and the typed structs and the managed fields
// spell them differently.
func intentHash(obj map[string]any) (string, error) {
	b, err := json.Marshal(pruned(obj))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// pruned is v without nulls, empty maps and empty lists, at any depth.
func pruned(v any) any {
	switch v := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			if p := pruned(e); p != nil {
				out[k] = p
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	case []any:
		// An element stays even when empty: `ingress: [{}]` (allow all) is
		// not `ingress: []`.
		out := make([]any, 0, len(v))
		for _, e := range v {
			p := pruned(e)
			if _, isMap := e.(map[string]any); isMap && p == nil {
				p = map[string]any{}
			}
			if p != nil {
				out = append(out, p)
			}
		}
		if len(out) == 0 {
			return nil
		}
		return out
	}
	return v
}
