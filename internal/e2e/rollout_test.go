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
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/utils/ptr"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// ingestRollout is where one tenant's ingest Deployment is on the way to
// image: not there yet, rolling (its template names the image and pods of
// it are still to come up or old ones to go), or done.
type ingestRollout int

const (
	rolloutPending ingestRollout = iota
	rolloutRolling
	rolloutDone
)

func ingestRolloutTo(d *appsv1.Deployment, image string) ingestRollout {
	if d == nil || d.Spec.Template.Spec.Containers[0].Image != image {
		return rolloutPending
	}
	want := ptr.Deref(d.Spec.Replicas, 1)
	s := d.Status
	if s.ObservedGeneration >= d.Generation && s.UpdatedReplicas == want && s.Replicas == want && s.AvailableReplicas == want {
		return rolloutDone
	}
	return rolloutRolling
}

// ingestDeployments are the tenants' ingest Deployments, by tenant, read in
// one list: one snapshot of the API server, so a rollout the operator
// started after another one ended is never counted beside it (reading them
// one by one, a tenant read rolling early in a sweep and another read
// rolling later, after the first ended and freed its slot, counted as two
// at once).
func ingestDeployments(ctx context.Context, t *testing.T) map[string]*appsv1.Deployment {
	t.Helper()
	list := &appsv1.DeploymentList{}
	if err := k8s.List(ctx, list); err != nil {
		t.Fatalf("listing Deployments: %v", err)
	}
	byTenant := map[string]*appsv1.Deployment{}
	for i := range list.Items {
		d := &list.Items[i]
		if tenant, ok := strings.CutPrefix(d.Namespace, "tenant-"); ok && d.Name == render.IngestName {
			byTenant[tenant] = d
		}
	}
	return byTenant
}

// rolloutFigures are what measureRollout saw: the most tenants rolling at
// one time, how long until every tenant was done and Ready, and how many
// tenants reported RolloutQueued at some point.
type rolloutFigures struct {
	maxRolling, queuedSeen int
	total                  time.Duration
}

// measureRollout polls every tenant's ingest Deployment and Ready
// condition until all run image and are Ready, from start.
func measureRollout(t *testing.T, names []string, image string, start time.Time) rolloutFigures {
	t.Helper()
	ctx := context.Background()
	var f rolloutFigures
	queued := map[string]bool{}
	deadline := start.Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		rolling, done := 0, 0
		deployments := ingestDeployments(ctx, t)
		for _, name := range names {
			switch ingestRolloutTo(deployments[name], image) {
			case rolloutRolling:
				rolling++
			case rolloutDone:
				if isReady(name) {
					done++
				}
			}
			if strings.HasSuffix(conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable), "/"+analyticsv1alpha1.ReasonRolloutQueued) {
				queued[name] = true
			}
		}
		f.maxRolling = max(f.maxRolling, rolling)
		if done == len(names) {
			f.total, f.queuedSeen = time.Since(start), len(queued)
			return f
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("the tenants did not all roll to %s within 5 minutes", image)
	return f
}

// TestAnOperatorUpgradeRollsTheTenantsIngestGradually upgrades the
// operator under K Ready tenants to a version whose default ingest image is
// new, with --max-concurrent-tenant-rollouts=N, and measures how many
// tenants roll at once and how long the whole takes, beside the same
// upgrade with no limit. The Deployments are rolled by the local cluster's
// Deployment controller on kwok's nodes.
func TestAnOperatorUpgradeRollsTheTenantsIngestGradually(t *testing.T) {
	g := NewWithT(t)
	const k, limit = 12, 3
	image := func(v string) string { return "ghcr.io/millimetric/ingest:e2e-rollout-" + v }
	// The operator running at the time is stopped after the tenants'
	// deletion, which needs one (cleanups run last-first).
	var running *operator
	t.Cleanup(func() { running.stop(syscall.SIGTERM) })
	running = startOperator(t, "v1", "--ingest-image="+image("v1"))
	withRegions(t)

	names := make([]string, k)
	for i := range names {
		names[i] = fmt.Sprintf("e2e-rollout-%02d", i)
		createTenant(t, names[i], analyticsv1alpha1.AnalyticsTenantSpec{})
	}
	for _, name := range names {
		g.Eventually(func() bool { return isReady(name) }, 2*wait, tick).Should(BeTrue(), "tenant %s is not Ready: %s", name, readyCondition(name))
	}

	upgrade := func(version string, maxRollouts int) rolloutFigures {
		running.stop(syscall.SIGTERM)
		start := time.Now()
		running = startOperator(t, version, "--ingest-image="+image(version),
			"--max-concurrent-tenant-rollouts="+strconv.Itoa(maxRollouts))
		return measureRollout(t, names, image(version), start)
	}
	limited := upgrade("v2", limit)
	t.Logf("upgrade under %d tenants with --max-concurrent-tenant-rollouts=%d: at most %d rolling at once, %d reported RolloutQueued, all Ready on the new image after %s",
		k, limit, limited.maxRolling, limited.queuedSeen, limited.total.Round(100*time.Millisecond))
	unlimited := upgrade("v3", 0)
	t.Logf("upgrade under %d tenants with --max-concurrent-tenant-rollouts=0 (no limit): at most %d rolling at once, %d reported RolloutQueued, all Ready on the new image after %s",
		k, unlimited.maxRolling, unlimited.queuedSeen, unlimited.total.Round(100*time.Millisecond))

	// The tenants go first, while the last operator runs (startOperator
	// stops it in a cleanup that runs before createTenant's), then the
	// figures are judged: a failed check must not leave twelve tenants to
	// an operator that is gone, each waited for in vain at cleanup.
	for _, name := range names {
		deleteTenant(t, name)
	}
	g.Expect(limited.maxRolling).To(BeNumerically("<=", limit), "more tenants rolled at once than the limit")
	g.Expect(limited.queuedSeen).To(BeNumerically(">", 0), "no tenant ever waited its turn")
	g.Expect(unlimited.queuedSeen).To(BeZero())
}
