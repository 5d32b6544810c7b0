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

// Package health_test tests the Argo CD health checks the chart ships
// (dist/chart/files/health/*.lua): each script runs as Argo CD runs it,
// against objects the operator wrote on the local cluster (captured by
// internal/e2e with E2E_CAPTURE_HEALTH=1) or, for states the e2e suite
// cannot produce, written by hand in the same shape; its verdict is set
// beside kstatus' (Flux, cli-utils) for the same object. The table of both
// is testdata/health-table.md, which the README includes; regenerate it
// with UPDATE_GOLDEN=1 go test ./internal/health/.
package health_test

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"
	"sigs.k8s.io/yaml"
)

// scriptsDir holds the health checks, where the chart packages them.
const scriptsDir = "../../dist/chart/files/health"

const goldenTable = "testdata/health-table.md"

// healthCase is one object and what both health readers must say of it.
type healthCase struct {
	name    string
	fixture string // under testdata/
	argo    string // hs.status of the Lua script
	kstatus status.Status
	// message is a part of hs.message a person acts on.
	message string
}

// tenantCases are AnalyticsTenants in every state the operator reports.
var tenantCases = []healthCase{
	{
		name:    "a tenant the operator has not reconciled yet is Progressing, and InProgress by its default observedGeneration -1",
		fixture: "analyticstenant/new.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Waiting for the operator to apply generation 1",
	},
	{
		name:    "a tenant waiting for its region's first check is Progressing",
		fixture: "analyticstenant/region-pending.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Ready is False (Progressing): StorageReady: waiting for StorageRegion eu serving region EU to be checked",
	},
	{
		name:    "a tenant whose ingest pods are starting is Progressing",
		fixture: "analyticstenant/ingest-starting.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Ready is False (DeploymentUnavailable): IngestAvailable: 0 of 1 ingest pods are available",
	},
	{
		name:    "a tenant whose ingest rollout waits its turn after an operator upgrade is Progressing",
		fixture: "analyticstenant/rollout-queued.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Ready is False (RolloutQueued): IngestAvailable: ingest's pod template is to change and its rollout waits its turn",
	},
	{
		name:    "a tenant whose database is busy is Progressing: the operator retries",
		fixture: "analyticstenant/storage-busy.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Ready is False (StorageBusy)",
	},
	{
		name:    "a tenant edited since the operator last reconciled it is Progressing though it was Ready",
		fixture: "analyticstenant/spec-not-observed.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Waiting for the operator to apply generation 2; Ready is True (Reconciled)",
	},
	{
		name:    "a tenant whose edit the API server refused is Progressing while that generation is not applied",
		fixture: "analyticstenant/apply-failed.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Waiting for the operator to apply generation 2; Ready is False (ApplyFailed): applying Deployment tenant-stark/ingest",
	},
	{
		name:    "a tenant being deleted is Progressing while its purge waits for its region's database",
		fixture: "analyticstenant/deleting.yaml",
		argo:    "Progressing", kstatus: status.TerminatingStatus,
		message: "Being deleted",
	},
	{
		name:    "a Ready tenant is Healthy",
		fixture: "analyticstenant/ready.yaml",
		argo:    "Healthy", kstatus: status.CurrentStatus,
		message: "storage is provisioned, ingest is available",
	},
	{
		name:    "a suspended tenant is Healthy, not Suspended, and says it is suspended",
		fixture: "analyticstenant/suspended.yaml",
		argo:    "Healthy", kstatus: status.CurrentStatus,
		message: "Suspended (spec.suspend): ingest is scaled to zero; data is kept and retention keeps running",
	},
	{
		name:    "a tenant whose region's database is down is Degraded",
		fixture: "analyticstenant/region-unavailable.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (RegionUnavailable): StorageReady: StorageRegion eu serving region EU is not Ready (ConnectionFailed",
	},
	{
		name:    "a tenant its region's database refuses to provision is Degraded",
		fixture: "analyticstenant/storage-permission-denied.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (PermissionDenied)",
	},
	{
		name:    "a tenant whose last retention run failed is Degraded",
		fixture: "analyticstenant/retention-failing.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (RetentionFailing): RetentionScheduled: the retention run started 2026-11-29T04:41:00Z did not succeed",
	},
	{
		name:    "a tenant storing raw events past its window is Degraded",
		fixture: "analyticstenant/retention-overdue.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (RetentionOverdue): RetentionCompliant: the oldest raw event is from 2026-10-20, 10 days past the 30-day window",
	},
	{
		name:    "a tenant whose ingest image never pulls is Stalled: Degraded, and kstatus Failed",
		fixture: "analyticstenant/image-pull-failed.yaml",
		argo:    "Degraded", kstatus: status.FailedStatus,
		message: "Stalled (ImagePullFailed): IngestAvailable: ingest pod ingest-6f9c8d7b5-x2k4q has not pulled image",
	},
	{
		name:    "a tenant whose ingest pods no node takes is Stalled: Degraded, and kstatus Failed",
		fixture: "analyticstenant/unschedulable.yaml",
		argo:    "Degraded", kstatus: status.FailedStatus,
		message: "Stalled (Unschedulable): IngestAvailable: ingest pod ingest-6f9c8d7b5-x2k4q has found no node",
	},
	{
		name:    "a tenant whose ingest rollout is past its progress deadline is Stalled: Degraded, and kstatus Failed",
		fixture: "analyticstenant/progress-deadline-exceeded.yaml",
		argo:    "Degraded", kstatus: status.FailedStatus,
		message: "Stalled (ProgressDeadlineExceeded): IngestAvailable: the ingest rollout is stuck",
	},
	{
		name:    "a tenant whose spec the operator refuses is Stalled: Degraded, and kstatus Failed",
		fixture: "analyticstenant/invalid-spec.yaml",
		argo:    "Degraded", kstatus: status.FailedStatus,
		message: "Stalled (InvalidSpec): the spec holds a value the API server refuses today",
	},
	{
		name:    "a tenant the operator stopped reconciling is Degraded even for a transient reason",
		fixture: "analyticstenant/ingest-stopped-reconciling.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (DeploymentUnavailable)",
	},
}

// regionCases are StorageRegions in every state the operator reports.
var regionCases = []healthCase{
	{
		name:    "a region the operator has not checked yet is Progressing, and InProgress by its default observedGeneration -1",
		fixture: "storageregion/new.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Waiting for the operator's first check",
	},
	{
		name:    "a region edited since its last check is Progressing though it was Ready",
		fixture: "storageregion/spec-not-observed.yaml",
		argo:    "Progressing", kstatus: status.InProgressStatus,
		message: "Waiting for the operator to check generation 2",
	},
	{
		name:    "a region whose administrator can log in is Healthy",
		fixture: "storageregion/connected.yaml",
		argo:    "Healthy", kstatus: status.CurrentStatus,
		message: `the administrator can log in to database "events_eu" at 127.0.0.1:55432`,
	},
	{
		name:    "a region whose database refuses connections is Degraded",
		fixture: "storageregion/connection-failed.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (ConnectionFailed): database \"events_eu\" at 127.0.0.1:55432",
	},
	{
		name:    "a region whose admin password is refused is Degraded",
		fixture: "storageregion/authentication-failed.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (AuthenticationFailed)",
	},
	{
		name:    "a region another StorageRegion also claims is Degraded",
		fixture: "storageregion/duplicate.yaml",
		argo:    "Degraded", kstatus: status.InProgressStatus,
		message: "Ready is False (DuplicateRegion): StorageRegions eu also claim region EU",
	},
}

func TestArgoCDHealthChecksAndKstatusAgreeOnEveryStateTheOperatorReports(t *testing.T) {
	rows := []string{
		"| kind | case | object | Ready | Argo CD health (Lua) | kstatus |",
		"| --- | --- | --- | --- | --- | --- |",
	}
	for _, kind := range []struct {
		name   string
		script string
		cases  []healthCase
	}{
		{"AnalyticsTenant", "analyticstenant.lua", tenantCases},
		{"StorageRegion", "storageregion.lua", regionCases},
	} {
		script := readScript(t, kind.script)
		for _, c := range kind.cases {
			obj := readObject(t, c.fixture)
			if obj.GetKind() != kind.name {
				t.Fatalf("%s is a %s, not a %s", c.fixture, obj.GetKind(), kind.name)
			}
			got := runHealthScript(t, script, obj)
			kres, err := status.Compute(obj)
			if err != nil {
				t.Fatalf("%s: kstatus: %v", c.fixture, err)
			}
			t.Run(kind.name+": "+c.name, func(t *testing.T) {
				if got.status != c.argo {
					t.Errorf("Argo CD health = %s (%q), want %s", got.status, got.message, c.argo)
				}
				if !strings.Contains(got.message, c.message) {
					t.Errorf("Argo CD message = %q, want it to contain %q", got.message, c.message)
				}
				if kres.Status != c.kstatus {
					t.Errorf("kstatus = %s (%q), want %s", kres.Status, kres.Message, c.kstatus)
				}
			})
			rows = append(rows, "| "+strings.Join([]string{
				kind.name, c.name, fixtureSource(t, c.fixture), readySummary(obj), got.status, kres.Status.String(),
			}, " | ")+" |")
		}
	}
	checkGolden(t, goldenTable, strings.Join(rows, "\n")+"\n")
}

func TestEveryFixtureIsACase(t *testing.T) {
	used := map[string]bool{}
	for _, c := range append(append([]healthCase{}, tenantCases...), regionCases...) {
		if used[c.fixture] {
			t.Errorf("%s is the fixture of two cases", c.fixture)
		}
		used[c.fixture] = true
	}
	files, err := filepath.Glob("testdata/*/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	for _, f := range files {
		if rel := strings.TrimPrefix(f, "testdata/"); !used[rel] {
			t.Errorf("%s is in testdata but no case uses it", f)
		}
	}
}

// fixtureSource says where a fixture came from, by its first line:
// "captured" from the local cluster by internal/e2e, or "hand-written".
func fixtureSource(t *testing.T, fixture string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	switch {
	case bytes.HasPrefix(data, []byte("# Captured from the local cluster")):
		return "captured"
	case bytes.HasPrefix(data, []byte("# Hand-written")):
		return "hand-written"
	}
	t.Fatalf("%s says neither that it was captured nor that it was written by hand", fixture)
	return ""
}

// TestTheREADMEShowsTheHealthTable keeps the README's table of the health
// checks' verdicts the one this package computes.
func TestTheREADMEShowsTheHealthTable(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	table, err := os.ReadFile(goldenTable)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(readme, table) {
		t.Errorf("README.md does not show %s as it is; copy it into the README's health check section", goldenTable)
	}
}

// readObject reads a YAML fixture into the unstructured object Argo CD and
// kstatus both read: integers are int64, as the API machinery decodes them.
func readObject(t *testing.T, fixture string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		t.Fatalf("%s: %v", fixture, err)
	}
	obj := &unstructured.Unstructured{}
	if err := obj.UnmarshalJSON(js); err != nil {
		t.Fatalf("%s: %v", fixture, err)
	}
	return obj
}

func readScript(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(scriptsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// readySummary is the object's Ready condition as status/reason, or "none".
func readySummary(obj *unstructured.Unstructured) string {
	conditions, _, _ := unstructured.NestedSlice(obj.Object, "status", "conditions")
	for _, c := range conditions {
		m, _ := c.(map[string]any)
		if m["type"] == "Ready" {
			return m["status"].(string) + "/" + m["reason"].(string)
		}
	}
	return "none"
}

// checkGolden compares got with the golden file at path, or rewrites the
// file with got when UPDATE_GOLDEN is set.
func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (UPDATE_GOLDEN=1 writes it)", err)
	}
	if string(want) != got {
		t.Errorf("%s is not what the checks say now (UPDATE_GOLDEN=1 rewrites it):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
