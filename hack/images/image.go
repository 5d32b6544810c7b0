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
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// SBOMDir is where each image carries its own SBOM.
const SBOMDir = "usr/share/sbom"

// RefNameAnnotation names an image in an OCI layout's index.json, as
// `podman pull oci:<dir>:<name>` and skopeo read it.
const RefNameAnnotation = "org.opencontainers.image.ref.name"

// imageSpec is one of the images: its binary's name (and so entrypoint),
// and the ports it serves.
type imageSpec struct {
	Name  string
	Ports []string
}

// images are the two images, the Dockerfile's targets of the same names.
var images = []imageSpec{
	// The operator; the retention CronJob runs it as `/manager retention`.
	{Name: "manager"},
	// Every tenant's ingest service: the event API and the SDK on 8080,
	// probes and metrics on 9090.
	{Name: "ingest", Ports: []string{"8080/tcp", "9090/tcp"}},
}

// buildOptions are the inputs of one build; the same inputs give the same
// digests.
type buildOptions struct {
	// BinDir holds BinDir/linux_<arch>/<image name>, cross-compiled.
	BinDir string
	// Out gets one OCI layout per image, Out/<image name>, and the SBOMs,
	// Out/sbom/<image name>-linux-<arch>.spdx.json.
	Out string
	// Arches are the Linux architectures, amd64 and arm64.
	Arches []string
	// Version is the version stamped into the binaries; the layouts name
	// the images by it (RefNameAnnotation) and it is a label.
	Version string
	// Revision is the commit, a label.
	Revision string
	// Epoch is every timestamp in the images: SOURCE_DATE_EPOCH.
	Epoch time.Time
}

// built is one image's layout: its index digest and each platform's
// manifest digest and sizes.
type built struct {
	Name      string
	Index     v1.Hash
	Platforms []builtPlatform
}

type builtPlatform struct {
	Arch         string
	Digest       v1.Hash
	Compressed   int64
	Uncompressed int64
	BaseCompressed,
	BaseUncompressed int64
}

// build writes every image's OCI layout, replacing what was there.
func build(o buildOptions, b *base) ([]built, error) {
	baseLayer, baseSize, err := layerOf(b.entries, o.Epoch)
	if err != nil {
		return nil, fmt.Errorf("the base layer: %w", err)
	}
	if err := os.MkdirAll(filepath.Join(o.Out, "sbom"), 0o755); err != nil {
		return nil, err
	}
	var out []built
	for _, spec := range images {
		idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
		res := built{Name: spec.Name}
		for _, arch := range o.Arches {
			binPath := filepath.Join(o.BinDir, "linux_"+arch, spec.Name)
			bin, err := os.ReadFile(binPath)
			if err != nil {
				return nil, err
			}
			doc, err := sbomOf(spec.Name, arch, binPath, o, b)
			if err != nil {
				return nil, fmt.Errorf("the SBOM of %s for %s: %w", spec.Name, arch, err)
			}
			sbomName := fmt.Sprintf("%s-linux-%s.spdx.json", spec.Name, arch)
			if err := os.WriteFile(filepath.Join(o.Out, "sbom", sbomName), doc, 0o644); err != nil {
				return nil, err
			}
			app, appSize, err := layerOf([]entry{
				{path: spec.Name, mode: 0o755, data: bin},
				{path: "usr", dir: true, mode: 0o755},
				{path: "usr/share", dir: true, mode: 0o755},
				{path: SBOMDir, dir: true, mode: 0o755},
				{path: SBOMDir + "/" + spec.Name + ".spdx.json", mode: 0o644, data: doc},
			}, o.Epoch)
			if err != nil {
				return nil, err
			}
			img, err := imageOf(spec, arch, o, baseLayer, app)
			if err != nil {
				return nil, fmt.Errorf("%s for %s: %w", spec.Name, arch, err)
			}
			p, err := platformSizes(img, arch, baseLayer, baseSize+appSize, baseSize)
			if err != nil {
				return nil, err
			}
			res.Platforms = append(res.Platforms, p)
			idx = mutate.AppendManifests(idx, mutate.IndexAddendum{
				Add:        img,
				Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: arch}},
			})
		}
		dir := filepath.Join(o.Out, spec.Name)
		if err := os.RemoveAll(dir); err != nil {
			return nil, err
		}
		lp, err := layout.Write(dir, empty.Index)
		if err != nil {
			return nil, err
		}
		if err := lp.AppendIndex(idx, layout.WithAnnotations(map[string]string{RefNameAnnotation: o.Version})); err != nil {
			return nil, fmt.Errorf("writing the layout of %s: %w", spec.Name, err)
		}
		if res.Index, err = idx.Digest(); err != nil {
			return nil, err
		}
		out = append(out, res)
	}
	return out, nil
}

// imageOf is one platform's image: the base, then the binary and its SBOM,
// run as nonroot.
func imageOf(spec imageSpec, arch string, o buildOptions, layers ...v1.Layer) (v1.Image, error) {
	created := v1.Time{Time: o.Epoch}
	ports := map[string]struct{}{}
	for _, p := range spec.Ports {
		ports[p] = struct{}{}
	}
	if len(ports) == 0 {
		ports = nil
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err := mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch,
		OS:           "linux",
		Created:      created,
		Config: v1.Config{
			User:       fmt.Sprintf("%d:%d", NonRootUID, NonRootUID),
			Entrypoint: []string{"/" + spec.Name},
			WorkingDir: "/",
			Env: []string{
				"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
				"SSL_CERT_FILE=/" + CABundlePath,
			},
			ExposedPorts: ports,
			Labels: map[string]string{
				"org.opencontainers.image.title":    spec.Name,
				"org.opencontainers.image.version":  o.Version,
				"org.opencontainers.image.revision": o.Revision,
				"org.opencontainers.image.created":  o.Epoch.UTC().Format(time.RFC3339),
				"org.opencontainers.image.licenses": "Apache-2.0",
			},
		},
	})
	if err != nil {
		return nil, err
	}
	history := []string{
		"base: /etc/passwd, /etc/group, /etc/nsswitch.conf, the CA bundle of Debian's ca-certificates, /tmp, /home/nonroot (hack/images)",
		fmt.Sprintf("/%s and its SBOM in /%s (hack/images)", spec.Name, SBOMDir),
	}
	var adds []mutate.Addendum
	for i, l := range layers {
		adds = append(adds, mutate.Addendum{
			Layer:     l,
			MediaType: types.OCILayer,
			History:   v1.History{Created: created, CreatedBy: history[i]},
		})
	}
	return mutate.Append(img, adds...)
}

// layerOf is a gzipped tar of entries, every one stamped with epoch and
// owned by its entry's user, so that the same entries always give the
// same bytes; and the tar's size.
func layerOf(entries []entry, epoch time.Time) (v1.Layer, int64, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{
			Name:    e.path,
			Mode:    e.mode,
			Uid:     e.uid,
			Gid:     e.gid,
			ModTime: epoch,
			Format:  tar.FormatPAX,
		}
		if e.dir {
			h.Typeflag = tar.TypeDir
			h.Name = strings.TrimSuffix(e.path, "/") + "/"
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, 0, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, 0, err
	}
	data := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	return l, int64(len(data)), err
}

// platformSizes are what a registry stores of an image (manifest, config,
// compressed layers) and what it takes unpacked (the layers' tars), and the
// base layer's share of both.
func platformSizes(img v1.Image, arch string, baseLayer v1.Layer, uncompressed, baseUncompressed int64) (builtPlatform, error) {
	p := builtPlatform{Arch: arch, Uncompressed: uncompressed, BaseUncompressed: baseUncompressed}
	var err error
	if p.Digest, err = img.Digest(); err != nil {
		return p, err
	}
	m, err := img.Manifest()
	if err != nil {
		return p, err
	}
	p.Compressed = m.Config.Size
	for _, l := range m.Layers {
		p.Compressed += l.Size
	}
	if p.BaseCompressed, err = baseLayer.Size(); err != nil {
		return p, err
	}
	return p, nil
}
