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

package memlimit

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"
)

func TestContainerLimit(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tt := range []struct {
		name  string
		files []string
		want  int64
	}{
		{"cgroup v2 with a limit", []string{write("v2", "268435456\n")}, 268435456},
		{"cgroup v2 without one", []string{write("v2max", "max\n")}, 0},
		{"cgroup v1's no limit", []string{write("v1", "9223372036854771712\n")}, 0},
		{"v1 when there is no v2 file", []string{filepath.Join(dir, "missing"), write("v1limit", "536870912")}, 536870912},
		{"neither", []string{filepath.Join(dir, "missing")}, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := containerLimit(tt.files); got != tt.want {
				t.Errorf("containerLimit = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestSetGCPercent(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	t.Setenv("GOGC", "")
	if !SetGCPercent() {
		t.Fatal("GOGC unset: SetGCPercent should set it")
	}
	if got := debug.SetGCPercent(100); got != GCPercent {
		t.Errorf("GC percent %d, want %d", got, GCPercent)
	}
	t.Setenv("GOGC", "200")
	if SetGCPercent() {
		t.Error("GOGC set: SetGCPercent should leave it")
	}
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GC percent %d with GOGC set, want it unchanged (100)", got)
	}
}
