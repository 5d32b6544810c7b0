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

package controllers_test

import (
	"context"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
)

// startRolloutInstance runs an operator instance that owns the tenants
// labelled shard=rollout, with the given default ingest image and
// --max-concurrent-tenant-rollouts, until stop is called: one operator
// version, on the suite's API server and PostgreSQL.
func startRolloutInstance(t *testing.T, image string, maxRollouts int) (stop func()) {
	t.Helper()
	selector, err := labels.Parse(shardLabel + "=rollout")
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:     scheme,
		Metrics:    metricsserver.Options{BindAddress: "0"},
		Cache:      controllers.CacheOptions(selector, systemNamespace, true),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	settings := render.DefaultSettings()
	settings.IngestImage = image
	r := &controllers.TenantReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("tenant-operator-rollout"),
		Settings: settings, TenantSelector: selector, GatewayAPI: true, MaxConcurrentReconciles: 4, MaxConcurrentRollouts: maxRollouts,
		Policy: controllers.RegionPolicy{AllowedSecretNamespace: systemNamespace, AllowInsecure: true},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = mgr.Start(ctx); close(done) }()
	return func() { cancel(); <-done }
}

// ingestImageOf is the image of a tenant's ingest Deployment, "" when it
// has none yet.
func ingestImageOf(tenant string) string {
	d := get(&appsv1.Deployment{}, "tenant-"+tenant, render.IngestName)()
	if d == nil {
		return ""
	}
	return d.Spec.Template.Spec.Containers[0].Image
}

func TestAnOperatorUpgradeRollsAtMostMaxConcurrentTenantRolloutsAtOnce(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	const oldImage, newImage, maxRollouts = "registry.example.com/ingest:1.0.0", "registry.example.com/ingest:1.1.0", 2
	names := []string{"roll-a", "roll-b", "roll-c", "roll-d", "roll-e"}

	// The instance running is stopped after the tenants' deletion, which
	// needs it (cleanups run last-first).
	var stop func()
	t.Cleanup(func() { stop() })
	stop = startRolloutInstance(t, oldImage, maxRollouts)
	for _, name := range names {
		newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{}, shardLabel, "rollout")
	}
	for _, name := range names {
		g.Eventually(func() string { return ingestImageOf(name) }, wait, tick).Should(Equal(oldImage), "tenant %s", name)
		makeIngestAvailable(t, "tenant-"+name)
		g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable), wait, tick).Should(haveStatus(metav1.ConditionTrue))
	}

	// The upgrade: the old instance goes, the new one defaults to a new
	// image, which changes every tenant's pod template.
	stop()
	stop = startRolloutInstance(t, newImage, maxRollouts)

	rolling := func() []string {
		var out []string
		for _, name := range names {
			if ingestImageOf(name) == newImage && conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable)().Status != metav1.ConditionTrue {
				out = append(out, name)
			}
		}
		return out
	}
	onNew := func() int {
		n := 0
		for _, name := range names {
			if ingestImageOf(name) == newImage {
				n++
			}
		}
		return n
	}
	queued := func() int {
		n := 0
		for _, name := range names {
			if c := conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable)(); c != nil && c.Reason == analyticsv1alpha1.ReasonRolloutQueued {
				n++
			}
		}
		return n
	}

	finished := map[string]bool{}
	for wave := 1; len(finished) < len(names); wave++ {
		want := min(len(finished)+maxRollouts, len(names))
		g.Eventually(onNew, wait, tick).Should(Equal(want), "wave %d: tenants on the new image", wave)
		g.Eventually(queued, wait, tick).Should(Equal(len(names)-want), "wave %d: tenants reporting RolloutQueued", wave)
		g.Eventually(gaugeValue("millimetric_tenant_ingest_rollouts", "state", "queued"), wait, tick).Should(BeEquivalentTo(len(names)-want),
			"wave %d: the queued tenants the gauge counts", wave)
		g.Eventually(gaugeValue("millimetric_tenant_ingest_rollouts", "state", "rolling"), wait, tick).Should(BeEquivalentTo(want-len(finished)),
			"wave %d: the rolling tenants the gauge counts", wave)
		// No Deployment controller: nothing finishes until the test says
		// so, and nobody else may start meanwhile.
		g.Consistently(onNew, 2*time.Second, tick).Should(Equal(want), "wave %d: more tenants rolled than the limit allows", wave)
		for _, name := range names {
			if c := conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable)(); c.Reason == analyticsv1alpha1.ReasonRolloutQueued {
				g.Expect(c.Status).To(Equal(metav1.ConditionFalse))
				g.Expect(ingestImageOf(name)).To(Equal(oldImage), "a queued tenant keeps its previous template")
				g.Expect(conditionOf(name, analyticsv1alpha1.ConditionReady)()).To(And(haveStatus(metav1.ConditionFalse),
					HaveField("Reason", analyticsv1alpha1.ReasonRolloutQueued)))
			}
		}
		g.Expect(len(rolling())).To(BeNumerically("<=", maxRollouts))
		if wave == 1 {
			// A restart mid-wave (a new leader) counts the rollouts its
			// predecessor started from its cache, and starts no more.
			stop()
			stop = startRolloutInstance(t, newImage, maxRollouts)
			g.Eventually(queued, wait, tick).Should(Equal(len(names) - want))
			g.Consistently(onNew, 2*time.Second, tick).Should(Equal(want), "after a restart, more tenants rolled than the limit allows")
		}
		for _, name := range rolling() {
			makeIngestAvailable(t, "tenant-"+name)
			finished[name] = true
		}
		for name := range finished {
			g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionIngestAvailable), wait, tick).Should(haveStatus(metav1.ConditionTrue),
				"tenant %s", name)
		}
		t.Logf("wave %d: %d of %d tenants on %s", wave, len(finished), len(names), newImage)
	}
	for _, name := range names {
		g.Eventually(conditionOf(name, analyticsv1alpha1.ConditionReady), wait, tick).Should(haveStatus(metav1.ConditionTrue), "tenant %s", name)
	}
}
