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

package sdk

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// esbuild is the pinned esbuild `make tools` installs, from this package's
// directory.
const esbuild = "../../../bin/esbuild"

// build is one line of builds.txt.
type build struct {
	name  string
	flags []string
}

// readBuilds parses builds.txt, the list the Makefile builds from.
func readBuilds(t *testing.T) []build {
	t.Helper()
	f, err := os.Open("builds.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var builds []build
	lines := bufio.NewScanner(f)
	for lines.Scan() {
		fields := strings.Fields(lines.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		builds = append(builds, build{name: fields[0], flags: fields[1:]})
	}
	if err := lines.Err(); err != nil {
		t.Fatal(err)
	}
	return builds
}

// TestServedBytesAreBuiltFromSource runs the pinned esbuild on src/mm.js
// with each build's flags in builds.txt and compares the output with the
// bytes the server serves. It fails when src/mm.js changed without `make
// sdk`, when dist/ was edited by hand, and when builds.txt and sdk.go do
// not list the same builds.
func TestServedBytesAreBuiltFromSource(t *testing.T) {
	if _, err := os.Stat(esbuild); errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: run `make tools` (make test installs it first)", esbuild)
	}
	// Reading the source here, rather than only in esbuild, makes go
	// test's cache see a change to it.
	if _, err := os.ReadFile("src/mm.js"); err != nil {
		t.Fatal(err)
	}
	builds := readBuilds(t)
	served := map[string][]byte{}
	for _, s := range All() {
		served[s.Name] = s.Body
	}
	var listed []string
	for _, b := range builds {
		listed = append(listed, b.name)
	}
	if names := slices.Sorted(maps.Keys(served)); !slices.Equal(names, slices.Sorted(slices.Values(listed))) {
		t.Fatalf("builds.txt lists %v, sdk.go serves %v: they must agree", listed, names)
	}
	dir := t.TempDir()
	for _, b := range builds {
		out := filepath.Join(dir, b.name)
		args := append([]string{"src/mm.js"}, b.flags...)
		args = append(args, "--log-level=warning", "--outfile="+out)
		if output, err := exec.Command(esbuild, args...).CombinedOutput(); err != nil {
			t.Fatalf("esbuild %s: %v\n%s", strings.Join(args, " "), err, output)
		}
		built, err := os.ReadFile(out)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(built, served[b.name]) {
			t.Errorf("%s: the served build (%d bytes) is not what esbuild builds from src/mm.js (%d bytes): run `make sdk` and commit dist/",
				b.name, len(served[b.name]), len(built))
		}
	}
}

func TestScripts(t *testing.T) {
	all := All()
	if len(all) != 2 || all[0].Name != "mm.js" || all[1].Name != "mm.gpc.js" {
		t.Fatalf("All() = %v, want mm.js and mm.gpc.js", names(all))
	}
	if got := For(false).Name; got != "mm.js" {
		t.Errorf("For(false) is %s, want mm.js", got)
	}
	if got := For(true).Name; got != "mm.gpc.js" {
		t.Errorf("For(true) is %s, want mm.gpc.js", got)
	}
	versioned := regexp.MustCompile(`^(mm|mm\.gpc)\.([0-9a-f]{10})\.js$`)
	for _, s := range all {
		sum := sha256.Sum256(s.Body)
		digest := hex.EncodeToString(sum[:])
		m := versioned.FindStringSubmatch(s.Versioned)
		if m == nil || m[1]+".js" != s.Name || m[2] != digest[:10] {
			t.Errorf("%s: versioned name %q, want %s.%s.js", s.Name, s.Versioned, strings.TrimSuffix(s.Name, ".js"), digest[:10])
		}
		if want := `"` + digest[:32] + `"`; s.ETag != want {
			t.Errorf("%s: ETag %s, want %s", s.Name, s.ETag, want)
		}
	}
	if all[0].ETag == all[1].ETag || all[0].Versioned == all[1].Versioned {
		t.Errorf("the two builds share an ETag or a versioned name: %+v %+v", all[0].ETag, all[1].ETag)
	}
}

// TestOnlyTheGPCBuildReadsGPC checks that the define in builds.txt took
// effect: the default build has no trace of Global Privacy Control, and
// both builds keep the opt-out and the id.
func TestOnlyTheGPCBuildReadsGPC(t *testing.T) {
	for _, tc := range []struct {
		script  Script
		readGPC bool
	}{{For(false), false}, {For(true), true}} {
		body := string(tc.script.Body)
		if got := strings.Contains(body, "globalPrivacyControl"); got != tc.readGPC {
			t.Errorf("%s reads navigator.globalPrivacyControl: %v, want %v", tc.script.Name, got, tc.readGPC)
		}
		for _, want := range []string{`"mm_ignore"`, `"mm_aid"`, `credentials:"omit"`} {
			if !strings.Contains(body, want) {
				t.Errorf("%s does not contain %s", tc.script.Name, want)
			}
		}
	}
}

// TestSize holds the SDK to its goal: at most 1.5 KB gzipped. Go's gzip at
// its best compression is within a few bytes of gzip -9 (`make sdk-size`
// prints the latter).
func TestSize(t *testing.T) {
	for _, s := range All() {
		var buf bytes.Buffer
		zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := zw.Write(s.Body); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		if buf.Len() > 1536 {
			t.Errorf("%s is %d bytes gzipped, more than the 1536 the README promises", s.Name, buf.Len())
		}
		t.Logf("%s: %d bytes minified, %d gzipped", s.Name, len(s.Body), buf.Len())
	}
}

func names(scripts []Script) []string {
	var n []string
	for _, s := range scripts {
		n = append(n, s.Name)
	}
	return n
}
