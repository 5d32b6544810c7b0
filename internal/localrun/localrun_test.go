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

package localrun

import "testing"

func TestMountPathsAreRewrittenOnceAndOnlyAsWholePaths(t *testing.T) {
	mounts := map[string]string{
		"/etc/millimetric":            "/tmp/run/config",
		"/etc/millimetric-storage-ca": "/tmp/run/storage-ca",
		"/tmp":                        "/tmp/run/tmp",
	}
	paths := []string{"/etc/millimetric-storage-ca", "/etc/millimetric", "/tmp"}
	for in, want := range map[string]string{
		"--config=/etc/millimetric/ingest.json": "--config=/tmp/run/config/ingest.json",
		"/etc/millimetric-storage-ca/ca.crt":    "/tmp/run/storage-ca/ca.crt",
		"/tmp":                                  "/tmp/run/tmp",
		"--dirs=/tmp/a,/etc/millimetric":        "--dirs=/tmp/run/tmp/a,/tmp/run/config",
		"/etc/millimetricx/file":                "/etc/millimetricx/file",
		"/var/tmp/file":                         "/var/tmp/file",
		"no path here":                          "no path here",
	} {
		if got := rewritePaths(in, paths, mounts); got != want {
			t.Errorf("rewritePaths(%q) = %q, want %q", in, got, want)
		}
	}
}
