//go:build e2e

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

package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// postgresScript runs the local PostgreSQL the suite's regions point at
// (hack/test-e2e.sh started it with `up`).
var postgresScript = filepath.Join(repoRoot, "hack", "local", "postgres.sh")

// regionNames are the StorageRegions withRegions applies.
var regionNames = []string{"eu", "us"}

// stopDatabase stops the local PostgreSQL, which serves both regions,
// keeping its data, as a region's database going away. After the test it
// is started again and the test waits until withRegions' regions are Ready
// again, so the next test finds them as withRegions leaves them: call it
// after startOperator, so that the operator still runs then (cleanups run
// last registered first).
func stopDatabase(t testing.TB) {
	t.Helper()
	if out, err := exec.Command(postgresScript, "stop").CombinedOutput(); err != nil {
		t.Fatalf("%s stop: %v\n%s", postgresScript, err, out)
	}
	t.Cleanup(func() { restartDatabase(t) })
	// The server is down once a connection is refused.
	NewWithT(t).Eventually(func() error {
		conn, err := storage.Connect(context.Background(), admin[analyticsv1alpha1.RegionEU])
		if err == nil {
			_ = conn.Close(context.Background())
		}
		return err
	}, wait, tick).Should(HaveOccurred(), "PostgreSQL still takes connections after %s stop", postgresScript)
}

// restartDatabase starts the local PostgreSQL again (retrying, since the
// rest of the suite needs it), has the operator check withRegions' regions
// now rather than after its backoff, and waits until they are Ready.
func restartDatabase(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	g.Eventually(func() error {
		out, err := exec.Command(postgresScript, "up").CombinedOutput()
		if err != nil {
			t.Logf("%s up: %v\n%s", postgresScript, err, out)
		}
		return err
	}, 2*wait, 5*time.Second).Should(Succeed(), "PostgreSQL did not start again")
	g.Eventually(func() error {
		conn, err := storage.Connect(ctx, admin[analyticsv1alpha1.RegionEU])
		if err == nil {
			_ = conn.Close(ctx)
		}
		return err
	}, wait, tick).Should(Succeed(), "PostgreSQL does not take connections after %s up", postgresScript)
	for _, name := range regionNames {
		sr := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: name}}
		nudge(t, sr)
		g.Eventually(func() bool {
			return k8s.Get(ctx, client.ObjectKeyFromObject(sr), sr) == nil &&
				meta.IsStatusConditionTrue(sr.Status.Conditions, analyticsv1alpha1.ConditionReady)
		}, wait, tick).Should(BeTrue(), "StorageRegion %s is not Ready again after the database came back", name)
	}
}
