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

package v1alpha1

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// dangerous are values apimachinery's quantity parser spends seconds to
// minutes (and up to gigabytes) on, which one manifest used to make the
// operator parse.
var dangerous = []string{"1e-2147483648", "1e999999999999999999", "1E2147483647", "9.9e-999999999"}

// fast fails the test when f takes longer than a parse of a bounded value
// could: the dangerous values take seconds at the least.
func fast(t *testing.T, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { f(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		t.Fatalf("%s still runs after 2s: a quantity is being parsed unbounded", what)
	}
}

func TestTheAPIHasNoFieldDecodedByTheQuantityParser(t *testing.T) {
	quantity := reflect.TypeFor[resource.Quantity]()
	var walk func(path string, typ reflect.Type, seen map[reflect.Type]bool)
	walk = func(path string, typ reflect.Type, seen map[reflect.Type]bool) {
		if typ == quantity {
			t.Errorf("%s is a resource.Quantity: decoding an object parses it, unbounded; use v1alpha1.Quantity", path)
			return
		}
		if seen[typ] {
			return
		}
		seen[typ] = true
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array:
			walk(path+"[]", typ.Elem(), seen)
		case reflect.Map:
			walk(path+"{}", typ.Elem(), seen)
		case reflect.Struct:
			for i := range typ.NumField() {
				f := typ.Field(i)
				walk(path+"."+f.Name, f.Type, seen)
			}
		}
	}
	for _, obj := range []any{AnalyticsTenant{}, StorageRegion{}} {
		typ := reflect.TypeOf(obj)
		walk(typ.Name(), typ, map[reflect.Type]bool{})
	}
}

func TestQuantityDecodesWithoutParsing(t *testing.T) {
	for _, v := range append([]string{"2", "536870912", `"500m"`, `"512Mi"`}, dangerous...) {
		raw := v
		if !strings.HasPrefix(raw, `"`) && strings.ContainsAny(raw, "eE") {
			raw = `"` + raw + `"`
		}
		doc := `{"apiVersion":"analytics.millimetric.ai/v1alpha1","kind":"AnalyticsTenant","metadata":{"name":"a"},` +
			`"spec":{"ingest":{"resources":{"requests":{"cpu":` + raw + `},"limits":{"memory":` + raw + `}}}}}`
		var tenant AnalyticsTenant
		fast(t, "decoding "+v, func() {
			if err := json.Unmarshal([]byte(doc), &tenant); err != nil {
				t.Errorf("decoding %s: %v", v, err)
			}
		})
		if got, want := string(tenant.Spec.Ingest.Resources.Limits.Memory), strings.Trim(v, `"`); got != want {
			t.Errorf("decoded %s as %q, want the text %q", v, got, want)
		}
	}
}

func TestAStoredValueTheSchemaRefusesIsReportedAndNeverParsed(t *testing.T) {
	for _, v := range append([]string{"-1", "+1", "1.", ".5", "1e3", "0x10", "1Pi", "512 Mi", "", strings.Repeat("9", 13)}, dangerous...) {
		t.Run(v, func(t *testing.T) {
			spec := AnalyticsTenantSpec{Ingest: &IngestSpec{Resources: &IngestResources{
				Requests: &ComputeResources{CPU: "100m"},
				Limits:   &ComputeResources{Memory: Quantity(v), CPU: "1"},
			}}}
			if v == "" {
				// Empty is unset: nothing to refuse.
				return
			}
			var err error
			fast(t, "CheckQuantities", func() { err = spec.CheckQuantities() })
			if err == nil || !strings.Contains(err.Error(), "spec.ingest.resources.limits.memory: ") || !strings.Contains(err.Error(), QuantityMessage) {
				t.Errorf("CheckQuantities() = %v, want it to name spec.ingest.resources.limits.memory and say %q", err, QuantityMessage)
			}
			var e EffectiveTenantSpec
			fast(t, "Effective", func() { e = spec.Effective() })
			if _, ok := e.Resources.Limits[corev1.ResourceMemory]; ok {
				t.Errorf("the refused memory limit %q is in force: %v", v, e.Resources.Limits)
			}
			if got := e.Resources.Limits[corev1.ResourceCPU]; got.String() != "1" {
				t.Errorf("the valid CPU limit beside it is %s, want 1", got.String())
			}
		})
	}
}

func TestEveryValueOfThePatternIsAQuantity(t *testing.T) {
	valid := []string{"0", "2", "0.5", "500m", "1.5Gi", "512Mi", "999999999999Ti", "123456789012.123456k", "536870912"}
	rng := rand.New(rand.NewPCG(1, 2))
	suffixes := []string{"", "m", "k", "M", "G", "T", "Ki", "Mi", "Gi", "Ti"}
	digits := func(n int) string {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte('0' + rng.IntN(10))
		}
		return string(b)
	}
	for range 2000 {
		v := digits(1 + rng.IntN(12))
		if rng.IntN(2) == 0 {
			v += "." + digits(1+rng.IntN(6))
		}
		valid = append(valid, v+suffixes[rng.IntN(len(suffixes))])
	}
	for _, v := range valid {
		if len(v) > QuantityMaxLength {
			t.Errorf("%q is longer than QuantityMaxLength %d", v, QuantityMaxLength)
		}
		want, err := resource.ParseQuantity(v)
		if err != nil {
			t.Errorf("%q matches QuantityPattern but is not a quantity: %v", v, err)
			continue
		}
		got, err := Quantity(v).Parse()
		if err != nil || got.Cmp(want) != 0 {
			t.Errorf("Quantity(%q).Parse() = %v, %v; want %v", v, got.String(), err, want.String())
		}
	}
}

// TestTheSchemaRefusesWhatTheOperatorWillNotParse keeps the CEL rule of
// the generated CRD (from Quantity's marker) and QuantityPattern, which
// the operator checks, the same.
func TestTheSchemaRefusesWhatTheOperatorWillNotParse(t *testing.T) {
	crd, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "analytics.millimetric.ai_analyticstenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(crd)), " ")
	rule := "self.matches(''" + QuantityPattern + "'')"
	if n := strings.Count(flat, rule); n != 4 {
		t.Errorf("the CRD holds the rule %s %d times, want 4 (cpu and memory of requests and limits): "+
			"Quantity's marker and QuantityPattern differ, or make manifests was not run", rule, n)
	}
	if n := strings.Count(string(crd), "maxLength: 21"); n != 4 || QuantityMaxLength != 21 {
		t.Errorf("the CRD bounds a quantity's length %d times at 21, want 4; QuantityMaxLength is %d", n, QuantityMaxLength)
	}
	if n := strings.Count(flat, "message: '"+QuantityMessage+"'"); n != 4 {
		t.Errorf("the CRD says QuantityMessage %d times, want 4: Quantity's marker and QuantityMessage differ", n)
	}
}
