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
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"

	rendering "github.com/millimetric/tenant-operator/internal/render"
)

// kustomizeBinary is the pinned kustomize, bin/kustomize of the repository.
func kustomizeBinary(t *testing.T) string {
	t.Helper()
	path, err := filepath.Abs("../../bin/kustomize")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("no kustomize at %s (%v): `make test` builds it (or `make tools`)", path, err)
	}
	return path
}

// run runs a command in dir and returns its output, failing the test on an
// error.
func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir, cmd.Env = dir, env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return stdout.String()
}

// kustomizedManager is the manager container `kustomize build` makes of
// config/default under root, with its arguments as the kubelet passes them:
// $(VAR) replaced by the container's environment.
func kustomizedManager(t *testing.T, root string) corev1.Container {
	t.Helper()
	out := run(t, root, os.Environ(), kustomizeBinary(t), "build", "config/default")
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	for {
		doc, err := reader.Read()
		if errors.Is(err, io.EOF) {
			t.Fatal("config/default has no manager Deployment")
		}
		if err != nil {
			t.Fatal(err)
		}
		var d appsv1.Deployment
		if err := yaml.Unmarshal(doc, &d); err != nil || d.Kind != "Deployment" {
			continue
		}
		for _, c := range d.Spec.Template.Spec.Containers {
			if c.Name != "manager" {
				continue
			}
			for i, a := range c.Args {
				for _, e := range c.Env {
					a = strings.ReplaceAll(a, "$("+e.Name+")", e.Value)
				}
				c.Args[i] = a
			}
			return c
		}
	}
}

// makeDeployImageEdit is the `kustomize edit set image` line `make deploy`
// runs (make -n prints it without running it), for the IMG and INGEST_IMG
// given, or the Makefile's defaults when empty. env has neither variable,
// so only the Makefile and the arguments decide.
func makeDeployImageEdit(t *testing.T, img, ingestImg string) []string {
	t.Helper()
	var env []string
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "IMG=") && !strings.HasPrefix(e, "INGEST_IMG=") && !strings.HasPrefix(e, "MAKEFLAGS=") {
			env = append(env, e)
		}
	}
	args := []string{"-n", "-s", "--no-print-directory", "deploy"}
	if img != "" {
		args = append(args, "IMG="+img, "INGEST_IMG="+ingestImg)
	}
	for _, line := range strings.Split(run(t, "../..", env, "make", args...), "\n") {
		if _, edit, ok := strings.Cut(line, "kustomize edit set image "); ok {
			return strings.Fields(edit)
		}
	}
	t.Fatal("make -n deploy runs no `kustomize edit set image`")
	return nil
}

// copyConfig copies the repository's config/ into a directory of the test's.
func copyConfig(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	if err := os.CopyFS(filepath.Join(root, "config"), os.DirFS(configDir)); err != nil {
		t.Fatal(err)
	}
	return root
}

// The operator's images are named in four places a platform engineer may
// install from or build with: the manager's flag defaults (render), the
// chart, config/ (make deploy) and the Makefile's IMG and INGEST_IMG. They
// must name the same two images, and the tenants must run what was
// deployed.
func TestImageDefaultsAgreeEverywhere(t *testing.T) {
	wantOperator, wantIngest := rendering.DefaultOperatorImage, rendering.DefaultIngestImage
	check := func(t *testing.T, where string, c corev1.Container, operator, ingest string) {
		t.Helper()
		if c.Image != operator {
			t.Errorf("%s: the manager runs %q, want %q", where, c.Image, operator)
		}
		if got := flagValues(c.Args, "operator-image"); !slices.Equal(got, []string{operator}) {
			t.Errorf("%s: --operator-image = %q, want [%q]", where, got, operator)
		}
		if got := flagValues(c.Args, "ingest-image"); !slices.Equal(got, []string{ingest}) {
			t.Errorf("%s: --ingest-image = %q, want [%q]", where, got, ingest)
		}
	}

	t.Run("the chart's defaults are the manager's flag defaults", func(t *testing.T) {
		_, c := managerContainer(t, render(t))
		check(t, "helm template", c, wantOperator, wantIngest)
		if v := appVersion(t); v != rendering.DefaultImageTag {
			t.Errorf("the chart's appVersion is %q, the manager's default tag %q", v, rendering.DefaultImageTag)
		}
	})
	t.Run("config/default, as committed, deploys the manager's flag defaults", func(t *testing.T) {
		check(t, "kustomize build config/default", kustomizedManager(t, "../.."), wantOperator, wantIngest)
	})
	t.Run("make deploy with the Makefile's IMG and INGEST_IMG deploys the manager's flag defaults", func(t *testing.T) {
		edit := makeDeployImageEdit(t, "", "")
		want := []string{"controller=" + wantOperator, "ingest=" + wantIngest}
		if !slices.Equal(edit, want) {
			t.Errorf("make deploy sets the images %q, want %q", edit, want)
		}
	})
	t.Run("make deploy with other images makes the tenants run them too", func(t *testing.T) {
		const operator, ingest = "registry.example.com/tenant-operator:1.2.3", "registry.example.com/ingest:1.2.3"
		root := copyConfig(t)
		run(t, filepath.Join(root, "config", "manager"), os.Environ(), kustomizeBinary(t),
			append([]string{"edit", "set", "image"}, makeDeployImageEdit(t, operator, ingest)...)...)
		check(t, "make deploy IMG=... INGEST_IMG=...", kustomizedManager(t, root), operator, ingest)
	})
}
