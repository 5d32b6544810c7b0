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

package v1alpha1_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/testenv"
)

// The plans' windows are said once in Go (PlanRetentionDays) and once in
// the CEL rule the API server enforces, which a marker spells out: the
// generated CRD must hold exactly the Go list.
func TestThePlansWindowsAreTheSchemas(t *testing.T) {
	crd, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "crd", "bases", "analytics.millimetric.ai_analyticstenants.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	days := make([]string, 0, len(v1alpha1.PlanRetentionDays))
	for _, d := range v1alpha1.PlanRetentionDays {
		days = append(days, fmt.Sprint(d))
	}
	// The YAML folds long strings; compare with its whitespace collapsed.
	flat := strings.Join(strings.Fields(string(crd)), " ")
	for _, want := range []string{
		"rule: self in [" + strings.Join(days, ", ") + "]",
		"retentionDays must be one of the plans'' windows: " + v1alpha1.PlanWindows() + "'",
	} {
		if !strings.Contains(flat, want) {
			t.Errorf("the AnalyticsTenant CRD does not hold %q: the retentionDays marker and v1alpha1.PlanRetentionDays differ", want)
		}
	}
	if !slices.IsSorted(v1alpha1.PlanRetentionDays) || v1alpha1.PlanRetentionDays[0] != v1alpha1.DefaultRetentionDays {
		t.Errorf("the default window %d is not the smallest of %v", v1alpha1.DefaultRetentionDays, v1alpha1.PlanRetentionDays)
	}
}
