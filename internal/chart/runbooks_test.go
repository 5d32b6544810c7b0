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

package chart

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// runbookBase is where the alerts' runbook_url point: docs/runbooks of
// this repository, on its default branch.
const runbookBase = "https://github.com/millimetric/tenant-operator/blob/main/docs/runbooks/"

// runbooksDir is docs/runbooks, from this package's directory.
const runbooksDir = "../../docs/runbooks"

// alertRule is what this test reads of a Prometheus alerting rule.
type alertRule struct {
	Alert       string            `json:"alert"`
	Annotations map[string]string `json:"annotations"`
}

func TestEveryAlertLinksItsRunbookInTheRepository(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(chartDir, "files", "alerts", "rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct {
		Groups []struct {
			Rules []alertRule `json:"rules"`
		} `json:"groups"`
	}
	if err := yaml.Unmarshal(b, &file); err != nil {
		t.Fatal(err)
	}
	alerts := map[string]bool{}
	for _, g := range file.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			want := runbookBase + r.Alert + ".md"
			if got := r.Annotations["runbook_url"]; got != want {
				t.Errorf("alert %s: runbook_url %q, want %q", r.Alert, got, want)
			}
			if _, ok := r.Annotations["runbook"]; ok {
				t.Errorf("alert %s carries its runbook inline; it belongs in docs/runbooks/%s.md", r.Alert, r.Alert)
			}
			doc, err := os.ReadFile(filepath.Join(runbooksDir, r.Alert+".md"))
			if err != nil {
				t.Errorf("alert %s: %v", r.Alert, err)
				continue
			}
			if !strings.HasPrefix(string(doc), "# "+r.Alert+"\n") || !strings.Contains(string(doc), "## What to do") {
				t.Errorf("docs/runbooks/%s.md does not start with its alert's name as title, or says nothing to do", r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("rules.yaml has no alerts")
	}
	files, err := filepath.Glob(filepath.Join(runbooksDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if name := strings.TrimSuffix(filepath.Base(f), ".md"); !alerts[name] {
			t.Errorf("docs/runbooks/%s.md is the runbook of no alert", name)
		}
	}
}
