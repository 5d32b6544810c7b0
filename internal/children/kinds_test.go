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
	"fmt"
	"testing"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/millimetric/tenant-operator/internal/render"
)

// Every row of Kinds works on an object of its kind: its extraction, its
// slimming (which keeps the applied hash) and its status read run, and no
// two rows are of one kind.
func TestEveryKindOfTheTableIsExtractedAndSlimmed(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds {
		obj := k.Object()
		kind := fmt.Sprintf("%T", obj)
		if seen[kind] {
			t.Errorf("%s has two rows", kind)
		}
		seen[kind] = true
		if _, err := appliedBy(obj, render.FieldOwner); err != nil {
			t.Errorf("%s: %v", kind, err)
		}
		slim, err := Slim(obj)
		if err != nil {
			t.Fatalf("%s: %v", kind, err)
		}
		slimmed, ok := slim.(client.Object)
		if !ok || fmt.Sprintf("%T", slim) != kind {
			t.Fatalf("%s is slimmed into a %T", kind, slim)
		}
		if _, ok := cachedAppliedHash(slimmed); !ok {
			t.Errorf("%s: the slimmed object keeps no applied hash", kind)
		}
		_ = statusRead(obj)
	}
}
