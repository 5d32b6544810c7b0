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

// Package testenv starts a real kube-apiserver and etcd (envtest) with the
// operator's CRDs installed, for tests. The binaries are the ones `make
// tools` builds from pinned module versions into bin/.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot is the directory holding the operator's go.mod.
func RepoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Start starts an API server with the CRDs from config/crd/bases and the
// Gateway API's standard channel CRDs (GatewayAPICRDs) installed. Stop the
// returned environment when done.
func Start() (*envtest.Environment, *rest.Config, error) {
	gateway, err := GatewayAPICRDs()
	if err != nil {
		return nil, nil, err
	}
	return start(gateway)
}

// StartWithoutGatewayAPI is Start without the Gateway API's CRDs: a
// cluster where nobody installed them.
func StartWithoutGatewayAPI() (*envtest.Environment, *rest.Config, error) {
	return start()
}

// GatewayAPICRDs is the directory of the standard channel CRDs of the
// sigs.k8s.io/gateway-api module go.mod requires, in the module cache.
func GatewayAPICRDs() (string, error) {
	cmd := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/gateway-api")
	cmd.Dir = RepoRoot()
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("finding the sigs.k8s.io/gateway-api module: %w", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), "config", "crd", "standard"), nil
}

func start(crdDirs ...string) (*envtest.Environment, *rest.Config, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(RepoRoot(), "bin")
	}
	for _, name := range []string{"etcd", "kube-apiserver"} {
		if _, err := os.Stat(filepath.Join(assets, name)); err != nil {
			return nil, nil, fmt.Errorf("%s not found in %s: run `make tools` (or `make test`) to build it: %w", name, assets, err)
		}
	}
	env := &envtest.Environment{
		CRDDirectoryPaths:        append([]string{filepath.Join(RepoRoot(), "config", "crd", "bases")}, crdDirs...),
		ErrorIfCRDPathMissing:    true,
		BinaryAssetsDirectory:    assets,
		ControlPlaneStartTimeout: 2 * time.Minute,
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting the envtest control plane: %w", err)
	}
	if cfg == nil {
		return nil, nil, errors.New("envtest started without a rest config")
	}
	return env, cfg, nil
}
