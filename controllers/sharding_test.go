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

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
)

// startShard runs an operator instance that owns the tenants labelled
// shard=name and stamps its ingest image with the name, so a test can tell
// which instance applied a Deployment. It returns the instance's cache.
func startShard(t *testing.T, name string) client.Reader {
	return startInstance(t, name).cache
}

// instance is an operator instance of a test's own: its cache, its tenant
// reconciler, and the count of the write requests it made.
type instance struct {
	cache      client.Reader
	reconciler *controllers.TenantReconciler
	writes     *countingClient
}

// startInstance runs an operator instance as startShard does, its
// settings changed further by configure.
func startInstance(t testing.TB, name string, configure ...func(*render.Settings)) instance {
	t.Helper()
	selector, err := labels.Parse(shardLabel + "=" + name)
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := ctrl.NewManager(restCfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(selector, systemNamespace, true),
		// Several instances run in one test process here, as they would in
		// several pods; only their metric names would collide.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	settings := render.DefaultSettings()
	settings.IngestImage = "registry.example.com/ingest:" + name
	for _, c := range configure {
		c(&settings)
	}
	writes := &countingClient{Client: mgr.GetClient()}
	r := &controllers.TenantReconciler{
		Client: writes, APIReader: mgr.GetAPIReader(), Recorder: mgr.GetEventRecorder("tenant-operator-" + name),
		Settings: settings, TenantSelector: selector, GatewayAPI: true,
		Policy: controllers.RegionPolicy{AllowedSecretNamespace: systemNamespace, AllowInsecure: true},
	}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = mgr.Start(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return instance{cache: mgr.GetCache(), reconciler: r, writes: writes}
}

func TestTwoInstancesWithDisjointTenantSelectorsNeverTouchEachOthersTenants(t *testing.T) {
	g := NewWithT(t)
	withRegions(t)
	// Instances first: cleanups run last-first, so the tenants' deletion
	// (which needs their instance to purge them) runs while both still run.
	cacheA := startShard(t, "a")
	cacheB := startShard(t, "b")
	newTenant(t, "shard-a", analyticsv1alpha1.AnalyticsTenantSpec{}, shardLabel, "a")
	newTenant(t, "shard-b", analyticsv1alpha1.AnalyticsTenantSpec{}, shardLabel, "b")

	image := func(tenant string) func() string {
		return func() string {
			d := get(&appsv1.Deployment{}, "tenant-"+tenant, render.IngestName)()
			if d == nil {
				return ""
			}
			return d.Spec.Template.Spec.Containers[0].Image
		}
	}
	g.Eventually(image("shard-a"), wait, tick).Should(Equal("registry.example.com/ingest:a"))
	g.Eventually(image("shard-b"), wait, tick).Should(Equal("registry.example.com/ingest:b"))
	// Each instance's changes to its own tenants' children must not be
	// undone by the other (or by the suite's instance, which owns unlabelled
	// tenants only).
	g.Consistently(image("shard-a"), 2*wait/10, tick).Should(Equal("registry.example.com/ingest:a"))
	g.Consistently(image("shard-b"), 2*wait/10, tick).Should(Equal("registry.example.com/ingest:b"))

	// Each instance caches only its own shard's children.
	cachedDeployments := func(c client.Reader) func() []string {
		return func() []string {
			list := &appsv1.DeploymentList{}
			if err := c.List(context.Background(), list); err != nil {
				return []string{err.Error()}
			}
			var namespaces []string
			for _, d := range list.Items {
				namespaces = append(namespaces, d.Namespace)
			}
			return namespaces
		}
	}
	g.Expect(cachedDeployments(cacheA)()).To(ConsistOf("tenant-shard-a"))
	g.Expect(cachedDeployments(cacheB)()).To(ConsistOf("tenant-shard-b"))
	namespace := &corev1.Namespace{}
	g.Expect(cacheA.Get(context.Background(), client.ObjectKey{Name: "tenant-shard-b"}, namespace)).NotTo(Succeed())
}
