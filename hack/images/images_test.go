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
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var epoch = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)

// binDir lays out stand-ins for the cross-compiled binaries: this test's
// own executable, which has Go build info like the real ones, under both
// architectures.
func binDir(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, arch := range []string{"amd64", "arm64"} {
		for _, spec := range images {
			p := filepath.Join(dir, "linux_"+arch, spec.Name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, data, 0o755); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

func buildInto(t *testing.T, bins, out string, at time.Time) []built {
	t.Helper()
	b, err := loadBase()
	if err != nil {
		t.Fatal(err)
	}
	res, err := build(buildOptions{
		BinDir: bins, Out: out, Arches: []string{"amd64", "arm64"},
		Version: "v0.0.0-test", Revision: "0123abc", Epoch: at,
	}, b)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestBuildingTwiceGivesTheSameDigests(t *testing.T) {
	bins := binDir(t)
	first := buildInto(t, bins, t.TempDir(), epoch)
	second := buildInto(t, bins, t.TempDir(), epoch)
	if len(first) != len(images) {
		t.Fatalf("built %d images, want %d", len(first), len(images))
	}
	for i := range first {
		if first[i].Index != second[i].Index {
			t.Errorf("%s: index %s, then %s", first[i].Name, first[i].Index, second[i].Index)
		}
		for j := range first[i].Platforms {
			if first[i].Platforms[j].Digest != second[i].Platforms[j].Digest {
				t.Errorf("%s/%s: %s, then %s", first[i].Name, first[i].Platforms[j].Arch,
					first[i].Platforms[j].Digest, second[i].Platforms[j].Digest)
			}
		}
	}
	// The timestamps are the epoch given, not the time of the build: a
	// build at another epoch differs.
	later := buildInto(t, bins, t.TempDir(), epoch.Add(time.Hour))
	if later[0].Index == first[0].Index {
		t.Errorf("another epoch gives the same index %s: the epoch is not in the image", later[0].Index)
	}
}

// files is an image's flattened file system: headers and contents by path.
func files(t *testing.T, img v1.Image) (map[string]*tar.Header, map[string][]byte) {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	hdrs, data := map[string]*tar.Header{}, map[string][]byte{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p := strings.TrimSuffix(h.Name, "/")
		hdrs[p] = h
		if data[p], err = io.ReadAll(tr); err != nil {
			t.Fatal(err)
		}
	}
	return hdrs, data
}

func TestTheImagesAreMultiArchNonRootOnTheAssembledBaseWithAnSBOM(t *testing.T) {
	out := t.TempDir()
	buildInto(t, binDir(t), out, epoch)
	caVersion, err := dpkgQuery("-W", "-f=${Version}", caPackage)
	if err != nil {
		t.Fatal(err)
	}
	for _, spec := range images {
		t.Run(spec.Name, func(t *testing.T) {
			idx, err := layoutIndex(filepath.Join(out, spec.Name))
			if err != nil {
				t.Fatal(err)
			}
			m, err := idx.IndexManifest()
			if err != nil {
				t.Fatal(err)
			}
			var platforms []string
			for _, d := range m.Manifests {
				platforms = append(platforms, d.Platform.String())
			}
			if strings.Join(platforms, " ") != "linux/amd64 linux/arm64" {
				t.Fatalf("platforms %v, want linux/amd64 and linux/arm64", platforms)
			}
			for _, d := range m.Manifests {
				img, err := idx.Image(d.Digest)
				if err != nil {
					t.Fatal(err)
				}
				cfg, err := img.ConfigFile()
				if err != nil {
					t.Fatal(err)
				}
				if cfg.Architecture != d.Platform.Architecture || cfg.OS != "linux" {
					t.Errorf("%s: config says %s/%s", d.Platform, cfg.OS, cfg.Architecture)
				}
				if cfg.Config.User != "65532:65532" || strings.Join(cfg.Config.Entrypoint, " ") != "/"+spec.Name {
					t.Errorf("%s: user %q, entrypoint %q", d.Platform, cfg.Config.User, cfg.Config.Entrypoint)
				}
				if !cfg.Created.Equal(epoch) {
					t.Errorf("%s: created %s, want the epoch %s", d.Platform, cfg.Created.Time, epoch)
				}

				hdrs, data := files(t, img)
				for p, h := range hdrs {
					if !h.ModTime.Equal(epoch) {
						t.Errorf("%s: %s has time %s, not the epoch", d.Platform, p, h.ModTime)
					}
					// Nothing but nonroot's home and /tmp may be written
					// by the user the image runs as.
					if p != "home/nonroot" && p != "tmp" && (h.Uid != 0 || h.Gid != 0 || h.Mode&0o022 != 0) {
						t.Errorf("%s: %s is %d:%d %o", d.Platform, p, h.Uid, h.Gid, h.Mode)
					}
				}
				if h := hdrs[spec.Name]; h == nil || h.Mode != 0o755 {
					t.Errorf("%s: /%s missing or not 0755: %+v", d.Platform, spec.Name, h)
				}
				if h := hdrs["tmp"]; h == nil || h.Mode != 0o1777 {
					t.Errorf("%s: /tmp is not 1777: %+v", d.Platform, h)
				}
				if h := hdrs["home/nonroot"]; h == nil || h.Uid != NonRootUID || h.Gid != NonRootUID {
					t.Errorf("%s: /home/nonroot is not nonroot's: %+v", d.Platform, h)
				}
				if !strings.Contains(string(data["etc/passwd"]), "nonroot:x:65532:65532:") ||
					!strings.Contains(string(data["etc/group"]), "nonroot:x:65532:") {
					t.Errorf("%s: no nonroot 65532 in /etc/passwd or /etc/group", d.Platform)
				}
				certs := 0
				for rest := data[CABundlePath]; ; {
					var b *pem.Block
					if b, rest = pem.Decode(rest); b == nil {
						break
					}
					certs++
				}
				if certs < 100 {
					t.Errorf("%s: the CA bundle has %d certificates", d.Platform, certs)
				}

				sbom := data[SBOMDir+"/"+spec.Name+".spdx.json"]
				beside, err := os.ReadFile(filepath.Join(out, "sbom", spec.Name+"-"+strings.ReplaceAll(d.Platform.String(), "/", "-")+".spdx.json"))
				if err != nil || !bytes.Equal(sbom, beside) {
					t.Errorf("%s: the SBOM in the image is not the one beside the layout (%v)", d.Platform, err)
				}
				var doc spdxDocument
				if err := json.Unmarshal(sbom, &doc); err != nil {
					t.Fatalf("%s: the SBOM is not JSON: %v", d.Platform, err)
				}
				want := map[string]string{
					"go":                                     runtime.Version(),
					caPackage:                                strings.TrimSpace(string(caVersion)),
					"github.com/google/go-containerregistry": "v0.22.1",
				}
				for _, p := range doc.Packages {
					if v, ok := want[p.Name]; ok && v == p.VersionInfo {
						delete(want, p.Name)
					}
				}
				if doc.SPDXVersion != "SPDX-2.3" || len(want) > 0 {
					t.Errorf("%s: the SBOM (%s) lacks %v", d.Platform, doc.SPDXVersion, want)
				}
			}
		})
	}
}

func TestPushWritesTheIndexAndBothPlatformsToARegistry(t *testing.T) {
	out := t.TempDir()
	res := buildInto(t, binDir(t), out, epoch)
	reg := httptest.NewServer(registry.New())
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	for i, spec := range images {
		ref := host + "/millimetric/" + spec.Name + ":v0.0.0-test"
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{"push", "-layout", filepath.Join(out, spec.Name), "-ref", ref}, &stdout, &stderr); code != 0 {
			t.Fatalf("push %s: exit %d: %s", spec.Name, code, stderr.String())
		}
		if want := "pushed " + ref + "@" + res[i].Index.String() + "\n"; stdout.String() != want {
			t.Errorf("push said %q, want %q", stdout.String(), want)
		}

		tag, err := name.NewTag(ref)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := remote.Index(tag)
		if err != nil {
			t.Fatal(err)
		}
		if d, _ := idx.Digest(); d != res[i].Index {
			t.Errorf("%s: the registry has index %s, the layout %s", spec.Name, d, res[i].Index)
		}
		for _, p := range res[i].Platforms {
			img, err := remote.Image(tag, remote.WithPlatform(v1.Platform{OS: "linux", Architecture: p.Arch}))
			if err != nil {
				t.Fatal(err)
			}
			if d, _ := img.Digest(); d != p.Digest {
				t.Errorf("%s linux/%s: the registry has %s, the layout %s", spec.Name, p.Arch, d, p.Digest)
			}
			// Every layer's blob is there, not only the manifests.
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range layers {
				rc, err := l.Compressed()
				if err != nil {
					t.Fatal(err)
				}
				_, err = io.Copy(io.Discard, rc)
				_ = rc.Close()
				if err != nil {
					t.Fatal(err)
				}
			}
		}
	}
}

func TestPushRefusesAMissingLayoutOrRef(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"push", "-layout", t.TempDir()}, &stdout, &stderr); code != 2 {
		t.Errorf("push without -ref: exit %d", code)
	}
	stderr.Reset()
	if code := run(context.Background(), []string{"push", "-layout", t.TempDir(), "-ref", "127.0.0.1:1/x:y"}, &stdout, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "images push:") {
		t.Errorf("push of an empty directory: exit %d, %q", code, stderr.String())
	}
}

func TestBaseWritesTheSameFilesForTheDockerfile(t *testing.T) {
	root := t.TempDir()
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"base", "-root", root}, &stdout, &stderr); code != 0 {
		t.Fatalf("base: exit %d: %s", code, stderr.String())
	}
	b, err := loadBase()
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range b.entries {
		fi, err := os.Lstat(filepath.Join(root, e.path))
		if err != nil {
			t.Errorf("%s: %v", e.path, err)
			continue
		}
		if fi.IsDir() != e.dir || fi.Mode().Perm()|fi.Mode()&os.ModeSticky != modeOf(e) {
			t.Errorf("%s: %s, want %s", e.path, fi.Mode(), modeOf(e))
		}
		if !e.dir {
			data, err := os.ReadFile(filepath.Join(root, e.path))
			if err != nil || !bytes.Equal(data, e.data) {
				t.Errorf("%s differs from the layer's (%v)", e.path, err)
			}
		}
	}
}
