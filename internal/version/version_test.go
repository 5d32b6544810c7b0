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

package version_test

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/millimetric/tenant-operator/internal/version"
)

func TestRequested(t *testing.T) {
	for _, tt := range []struct {
		name string
		args []string
		want bool
	}{
		{"no arguments ask for nothing", nil, false},
		{"--version asks", []string{"--version"}, true},
		{"-version asks, as Go's flag package reads it", []string{"-version"}, true},
		{"--version after other flags and their values asks", []string{"--config", "/etc/ingest.json", "--version"}, true},
		{"--version after -- is an argument, not a flag", []string{"--", "--version"}, false},
		{"a flag merely starting with version does not ask", []string{"--version-file=x"}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := version.Requested(tt.args); got != tt.want {
				t.Errorf("Requested(%q) = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

// TestTheBinariesPrintTheVersionTheyAreStampedWith builds the manager and the
// ingest service as the Makefile and the Dockerfile do, with the version
// given to the linker, and runs each with --version: it must print that
// version and exit 0, with no cluster, configuration or credentials.
func TestTheBinariesPrintTheVersionTheyAreStampedWith(t *testing.T) {
	if testing.Short() {
		t.Skip("builds two binaries")
	}
	const stamp = "v9.8.7-test+abc123"
	ldflags := "-X github.com/millimetric/tenant-operator/internal/version.Version=" + stamp
	for _, bin := range []struct{ name, pkg string }{
		{"manager", "../../cmd"},
		{"ingest", "../../cmd/ingest"},
	} {
		t.Run(bin.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), bin.name)
			if out, err := exec.Command("go", "build", "-ldflags", ldflags, "-o", path, bin.pkg).CombinedOutput(); err != nil {
				t.Fatalf("go build %s: %v\n%s", bin.pkg, err, out)
			}
			out, err := exec.Command(path, "--version").Output()
			if err != nil {
				t.Fatalf("%s --version: %v", bin.name, err)
			}
			if want := bin.name + " " + stamp + "\n"; string(out) != want {
				t.Errorf("%s --version printed %q, want %q", bin.name, out, want)
			}
		})
	}
}

func TestAnUnstampedBuildSaysDev(t *testing.T) {
	if got := version.Line("manager"); got != "manager dev\n" {
		t.Errorf("Line = %q, want %q", got, "manager dev\n")
	}
}
