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
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// previousChartCommit is the commit whose dist/chart an upgrade starts
// from. No chart version has been released (Chart.yaml has said 0.1.0 since
// the chart was added, and no tag names one), so "the previous version" is
// the chart as main had it when issue 23's work on images and rollouts
// began: what a cluster installed from main runs today.
const previousChartCommit = "26d5b14d7d7a84e65fb4d3076c02b586797771a0"

// previousChart writes the chart of previousChartCommit into a directory
// of the test's, with git archive, and returns its path.
func previousChart(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	cmd := exec.Command("bash", "-c", `set -o pipefail; git archive --format=tar "$0" dist/chart | tar -x -C "$1"`, previousChartCommit, dir)
	cmd.Dir = repoRoot
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("extracting dist/chart of %s: %v\n%s", previousChartCommit, err, out)
	}
	return filepath.Join(dir, "dist", "chart")
}

// managerArgs are the args of the release's manager Deployment once it is
// rolled out and available at its latest generation.
func managerArgs(t *testing.T, ns, name string) []string {
	t.Helper()
	d := &appsv1.Deployment{}
	NewWithT(t).Eventually(func() bool {
		if err := k8s.Get(context.Background(), client.ObjectKey{Namespace: ns, Name: name}, d); err != nil {
			return false
		}
		s := d.Status
		return s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == *d.Spec.Replicas && s.AvailableReplicas == *d.Spec.Replicas &&
			s.Replicas == s.UpdatedReplicas
	}, wait, tick).Should(BeTrue(), "Deployment %s/%s did not roll out", ns, name)
	return d.Spec.Template.Spec.Containers[0].Args
}

// hasFlag says whether args set --name.
func hasFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--"+name || strings.HasPrefix(a, "--"+name+"=") {
			return true
		}
	}
	return false
}

// TestHelmUpgradeFromThePreviousChart installs the previous chart
// (previousChartCommit) and upgrades the release to dist/chart twice: with
// --reuse-values, which keeps the old release's values and so lacks every
// value the new chart added, then with the new chart's defaults. Each
// upgrade must succeed, roll the manager out and keep the CRDs and what
// is stored in them.
func TestHelmUpgradeFromThePreviousChart(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	const release, ns = "e2e-helm-upgrade", "e2e-helm-upgrade"
	const fullname = release + "-tenant-operator"
	sets := []string{"--set", "leaderElection.id=e2e-helm-upgrade", "--set", "tenants.selector=e2e.millimetric.ai/shard=helm-upgrade"}
	old := previousChart(t)

	regionsBefore := releaseNamespace(t, release, ns)

	runHelm(t, append([]string{"install", release, old, "--namespace", ns, "--wait", "--timeout", "2m"}, sets...)...)
	before := managerArgs(t, ns, fullname)
	g.Expect(hasFlag(before, "max-concurrent-tenant-rollouts")).To(BeFalse(), "the previous chart already passes the rollout limit: is previousChartCommit right?")

	t.Run("helm upgrade --reuse-values to this chart rolls the manager out with the manager's own default for what the old values lack", func(t *testing.T) {
		g := NewWithT(t)
		runHelm(t, append([]string{"upgrade", release, chartDir, "--namespace", ns, "--wait", "--timeout", "2m", "--reuse-values"}, sets...)...)
		args := managerArgs(t, ns, fullname)
		g.Expect(args).To(ContainElements("--leader-election-id=e2e-helm-upgrade", "--tenant-selector=e2e.millimetric.ai/shard=helm-upgrade"))
		// Not --max-concurrent-tenant-rollouts=0, which is no limit.
		g.Expect(hasFlag(args, "max-concurrent-tenant-rollouts")).To(BeFalse(),
			"the old values have no tenants.maxConcurrentRollouts, yet the manager gets a limit: %q", args)
	})

	t.Run("helm upgrade to this chart's defaults passes the new flags", func(t *testing.T) {
		g := NewWithT(t)
		runHelm(t, append([]string{"upgrade", release, chartDir, "--namespace", ns, "--wait", "--timeout", "2m"}, sets...)...)
		g.Expect(managerArgs(t, ns, fullname)).To(ContainElement("--max-concurrent-tenant-rollouts=10"))
		history := runHelm(t, "history", release, "--namespace", ns, "--output", "json")
		g.Expect(strings.Count(history, `"status":"superseded"`)).To(Equal(2), "helm history: %s", history)
		g.Expect(strings.Count(history, `"status":"deployed"`)).To(Equal(1), "helm history: %s", history)
	})

	t.Run("the CRDs and the objects stored in them survive both upgrades", func(t *testing.T) {
		g := NewWithT(t)
		for _, name := range crdNames {
			crd := &unstructured.Unstructured{}
			crd.SetGroupVersionKind(crdGVK)
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed(), "CRD %s", name)
			g.Expect(crdEstablished(crd)).To(BeTrue(), "CRD %s", name)
			g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue("meta.helm.sh/release-name", release))
		}
		regions := &analyticsv1alpha1.StorageRegionList{}
		g.Expect(k8s.List(ctx, regions)).To(Succeed())
		g.Expect(regions.Items).To(HaveLen(len(regionsBefore.Items)))
	})
}
