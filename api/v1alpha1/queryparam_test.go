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
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestThePersonalDataRuleHoldsTheListsOfTheCode reads the generated CRD:
// QueryParam's CEL rule must hold PersonalDataQueryParams and
// PersonalDataQueryParamParts as they are, so the lists the README and the
// validation tests read are the ones the API server enforces.
func TestThePersonalDataRuleHoldsTheListsOfTheCode(t *testing.T) {
	crd, err := os.ReadFile(filepath.Join("..", "..", "config", "crd", "bases", "analytics.millimetric.ai_analyticstenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	flat := strings.Join(strings.Fields(string(crd)), " ")
	quoted := func(list []string) string {
		q := make([]string, len(list))
		for i, n := range list {
			q[i] = "''" + n + "''"
		}
		return "[" + strings.Join(q, ", ") + "]"
	}
	for _, want := range []string{" in " + quoted(PersonalDataQueryParams) + " || ", quoted(PersonalDataQueryParamParts) + ".exists(w,"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the CRD's query parameter rule does not hold %s: QueryParam's marker and the lists differ, or make manifests was not run", want)
		}
	}
}
