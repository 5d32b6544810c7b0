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
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
	"github.com/millimetric/tenant-operator/internal/storage/pgtest"
	"github.com/millimetric/tenant-operator/internal/testenv"
)

// The suite runs the reconcilers in a manager against a real kube-apiserver
// (envtest) and a real PostgreSQL with an EU and a US database. Tests read
// through k8s, a direct client, so they see what the API server has, not a
// cache.
var (
	k8s     client.Client
	restCfg *rest.Config
	pg      *pgtest.Server
	scheme  = runtime.NewScheme()
	// tenants is the suite manager's tenant reconciler; writes counts the
	// write requests it makes.
	tenants *controllers.TenantReconciler
	writes  *countingClient
)

// shardLabel assigns a tenant to an operator instance in the sharding test.
const shardLabel = "analytics.millimetric.ai/shard"

// systemNamespace holds the regions' admin Secrets in these tests.
const systemNamespace = "millimetric-system"

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(analyticsv1alpha1.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))
	ctrl.SetLogger(zap.New(zap.WriteTo(os.Stderr), zap.UseDevMode(true)))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var err error
	startCtx, startCancel := context.WithTimeout(ctx, 2*time.Minute)
	pg, err = pgtest.Start(startCtx)
	startCancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting PostgreSQL:", err)
		return 1
	}
	defer func() { _ = pg.Stop() }()

	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { _ = env.Stop() }()

	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := k8s.Create(ctx, &corev1.Namespace{ObjectMeta: objectMeta(systemNamespace)}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	restCfg = cfg
	// The suite's manager reconciles the tenants that carry no shard label;
	// the sharding test runs managers of its own for the others.
	unsharded, _ := labels.Parse("!" + shardLabel)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
		Cache:   controllers.CacheOptions(unsharded, systemNamespace, true),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	writes = &countingClient{Client: mgr.GetClient()}
	tenants = &controllers.TenantReconciler{
		Client:                  writes,
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("tenant-operator"),
		Settings:                render.DefaultSettings(),
		TenantSelector:          unsharded,
		MaxConcurrentReconciles: 4,
		Policy:                  controllers.RegionPolicy{AllowedSecretNamespace: systemNamespace, AllowInsecure: true},
		Now:                     tenantClock.now,
		OpenStore:               storeCalls.open,
		GatewayAPI:              true,
	}
	if err := tenants.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	regions := &controllers.StorageRegionReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("tenant-operator"),
		// The test PostgreSQL has TLS, but the tests connect without it.
		Policy: controllers.RegionPolicy{AllowedSecretNamespace: systemNamespace, AllowInsecure: true},
		// Tests move it to end retained tenants' holds.
		Now: regionClock.now,
	}
	if err := regions.SetupWithManager(mgr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()

	code := m.Run()
	cancel()
	if err := <-done; err != nil {
		fmt.Fprintln(os.Stderr, "manager:", err)
	}
	return code
}

// countingClient counts the write requests made through it.
type countingClient struct {
	client.Client
	n atomic.Int64
}

func (c *countingClient) count() int64 { return c.n.Load() }

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.n.Add(1)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.n.Add(1)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.n.Add(1)
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.ApplyOption) error {
	c.n.Add(1)
	return c.Client.Apply(ctx, obj, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.n.Add(1)
	return c.Client.Delete(ctx, obj, opts...)
}

func (c *countingClient) DeleteAllOf(ctx context.Context, obj client.Object, opts ...client.DeleteAllOfOption) error {
	c.n.Add(1)
	return c.Client.DeleteAllOf(ctx, obj, opts...)
}

func (c *countingClient) Status() client.SubResourceWriter {
	return &countingStatus{SubResourceWriter: c.Client.Status(), n: &c.n}
}

type countingStatus struct {
	client.SubResourceWriter
	n *atomic.Int64
}

func (c *countingStatus) Create(ctx context.Context, obj, sub client.Object, opts ...client.SubResourceCreateOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Create(ctx, obj, sub, opts...)
}

func (c *countingStatus) Update(ctx context.Context, obj client.Object, opts ...client.SubResourceUpdateOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Update(ctx, obj, opts...)
}

func (c *countingStatus) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.SubResourcePatchOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Patch(ctx, obj, patch, opts...)
}

func (c *countingStatus) Apply(ctx context.Context, obj runtime.ApplyConfiguration, opts ...client.SubResourceApplyOption) error {
	c.n.Add(1)
	return c.SubResourceWriter.Apply(ctx, obj, opts...)
}

// tenantClock is the clock of the suite's tenant reconciler, which a test
// moves to make a storage verification due.
var tenantClock movedClock

// storeCalls counts the suite's tenant reconciler's calls to its regions'
// databases that every reconcile could make: provisioning, adoption, the
// oldest raw event. The stores are real; only the calls are counted.
var storeCalls countingStores

type countingStores struct{ n atomic.Int64 }

func (c *countingStores) count() int64 { return c.n.Load() }

func (c *countingStores) open(ctx context.Context, cfg storage.AdminConfig) (controllers.RegionStore, error) {
	store, err := controllers.OpenPostgres(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &countedStore{RegionStore: store, n: &c.n}, nil
}

type countedStore struct {
	controllers.RegionStore
	n *atomic.Int64
}

func (s *countedStore) Provision(ctx context.Context, tenant string, opts storage.ProvisionOptions) (storage.Provisioned, error) {
	s.n.Add(1)
	return s.RegionStore.Provision(ctx, tenant, opts)
}

func (s *countedStore) Adopt(ctx context.Context, tenant, uid string) (*storage.RetainedTenant, error) {
	s.n.Add(1)
	return s.RegionStore.Adopt(ctx, tenant, uid)
}

func (s *countedStore) OldestRawEventDay(ctx context.Context, tenant string) (*time.Time, error) {
	s.n.Add(1)
	return s.RegionStore.OldestRawEventDay(ctx, tenant)
}
