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
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// reasonConstants are the string constants named Reason* declared in the
// package in dir, by name.
func reasonConstants(t *testing.T, dir string) map[string]string {
	t.Helper()
	fset := token.NewFileSet()
	paths, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, path := range paths {
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gen, ok := decl.(*ast.GenDecl)
			if !ok || gen.Tok != token.CONST {
				continue
			}
			for _, spec := range gen.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if i >= len(vs.Values) || len(name.Name) <= len("Reason") || name.Name[:len("Reason")] != "Reason" {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						out[name.Name] = v
					}
				}
			}
		}
	}
	return out
}

// The conditions show a storage failure's storage.Reason as it is
// (storageReason), so the API, where a reader looks up what a reason means,
// must declare each of them: a reason added to storage alone fails here.
func TestEveryStorageReasonIsDeclaredByTheAPI(t *testing.T) {
	declared := map[string]bool{}
	for _, v := range reasonConstants(t, "../api/v1alpha1") {
		declared[v] = true
	}
	stored := reasonConstants(t, "../internal/storage")
	if len(stored) < 10 {
		t.Fatalf("found only %d storage reasons: %v", len(stored), stored)
	}
	for name, v := range stored {
		if !declared[v] {
			t.Errorf("storage.%s (%q) is shown in conditions but api/v1alpha1 declares no reason %q", name, v, v)
		}
	}
}
