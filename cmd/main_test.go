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

package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// runAsManager, set in the environment, makes the test binary run the
// manager's run() with the arguments after "--": the tests start the
// manager as a process of its own, as a pod would.
const runAsManager = "MILLIMETRIC_TEST_RUN_MANAGER"

func TestMain(m *testing.M) {
	if os.Getenv(runAsManager) == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// startManager runs the manager with args and returns its exit code and
// its log. No kubeconfig is reachable: what is refused must be refused
// before the manager ever talks to an API server.
func startManager(t *testing.T, args ...string) (int, string) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runAsManager+"=1", "KUBECONFIG=/nonexistent", "KUBERNETES_SERVICE_HOST=")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		return exit.ExitCode(), string(out)
	}
	if err != nil {
		t.Fatal(err)
	}
	return 0, string(out)
}

func TestTheManagerRefusesToStartWhenItsSettingsWouldHideVisitorsOrBreakPods(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"a gateway without trusted proxies", []string{"--ingest-gateway=edge/public", "--ingest-domain=ingest.example.com"},
			"--ingest-trusted-proxies is empty"},
		{"a gateway without a domain", []string{"--ingest-gateway=edge/public", "--ingest-trusted-proxies=10.0.0.0/8"},
			"--ingest-domain is empty"},
		{"a gateway that is not namespace/name", []string{"--ingest-gateway=public", "--ingest-domain=ingest.example.com", "--ingest-trusted-proxies=10.0.0.0/8"},
			"is not <namespace>/<name>[/<sectionName>]"},
		{"a domain that is not a DNS name", []string{"--ingest-domain=Ingest_Example"}, "is not a DNS name"},
		{"a GeoIP image without its file", []string{"--ingest-geoip-image=registry.example.com/geoip:1"}, "without --ingest-geoip-file"},
		{"an unknown GeoIP mount", []string{"--ingest-geoip-image=registry.example.com/geoip:1", "--ingest-geoip-file=/city.mmdb", "--ingest-geoip-mount=hostPath"},
			"must be image or copy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out := startManager(t, tt.args...)
			if code != 2 {
				t.Errorf("exit code %d, want 2; log:\n%s", code, out)
			}
			if !strings.Contains(out, tt.want) {
				t.Errorf("the log does not say %q:\n%s", tt.want, out)
			}
		})
	}
}
