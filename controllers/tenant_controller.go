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

package controllers

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/children"
	"github.com/millimetric/tenant-operator/internal/render"
)

// TenantReconciler turns each AnalyticsTenant into its namespace, its
// storage in its region, its ingest workloads, its NetworkPolicies and its
// retention CronJob, and keeps them so. Every child is applied with
// server-side apply under FieldOwner; status is computed once per reconcile
// from what the phases observed and written only when it changed.
type TenantReconciler struct {
	client.Client
	Scheme *runtime.Scheme
	// APIReader reads, uncached, only what the cache may not have seen yet:
	// a Secret (admin or credentials) or a namespace the cache misses or
	// holds only a skeleton of, and the ingest pods of a stalled rollout,
	// which are not cached at all. Admin Secrets are cached (CacheOptions).
	APIReader client.Reader
	Recorder  events.EventRecorder
	// Settings are the operator-wide inputs of the builders.
	Settings render.Settings
	// OpenStore connects to a region; OpenPostgres unless a test says else.
	OpenStore OpenStoreFunc
	// TenantSelector limits the tenants this instance reconciles (sharding).
	// The manager's cache is limited the same way; this guards the rest.
	TenantSelector labels.Selector
	// MaxConcurrentReconciles bounds parallel reconciles; 0 means 1.
	MaxConcurrentReconciles int
	// MaxConcurrentRollouts bounds how many tenants' ingest Deployments
	// change their pod template at once (rolloutGate); 0 means no bound.
	MaxConcurrentRollouts int
	// Now is the clock retention compliance is judged by; time.Now when
	// nil. Tests move it.
	Now func() time.Time
	// Policy is the StorageRegionReconciler's: a region it refuses is
	// never read from or dialled here either, even before its status says
	// so.
	Policy RegionPolicy
	// GatewayAPI says the API server serves HTTPRoutes (GatewayAPIServed,
	// asked at start; CacheOptions must be told the same): only then are
	// they watched, applied and removed.
	GatewayAPI bool

	stores *regionStores
	apply  children.Applier
	// claims lists the claimants of a hostname (watchHostnameClaims).
	claims client.Reader
	// rollouts spreads pod template changes over the tenants.
	rollouts *rolloutGate
	// retentionChecked is when this instance last read each tenant's
	// oldest raw event day (name to time.Time).
	retentionChecked sync.Map
}

// The verbs are those the code uses, no more: children are written by
// server-side apply, a patch that the API server also authorizes as a
// create when the object does not exist yet; only an unwanted
// HorizontalPodAutoscaler, PodDisruptionBudget or HTTPRoute (tenant_route.go)
// is ever deleted; nothing
// is updated, the tenant's finalizers are patched. update on
// analyticstenants/finalizers is what the
// OwnerReferencesPermissionEnforcement admission plugin asks of whoever
// sets blockOwnerDeletion on an owner reference to a tenant, as every
// child's does. The ClusterRole cannot name the tenant namespaces, which
// come and go, so it grants the writes in every namespace; the
// ValidatingAdmissionPolicy of config/admission bounds where they land.
// +kubebuilder:rbac:groups=analytics.millimetric.ai,resources=analyticstenants,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=analytics.millimetric.ai,resources=analyticstenants/status,verbs=patch
// +kubebuilder:rbac:groups=analytics.millimetric.ai,resources=analyticstenants/finalizers,verbs=update
// +kubebuilder:rbac:groups="",resources=namespaces;serviceaccounts;configmaps;services;resourcequotas;secrets,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=apps,resources=deployments,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=autoscaling,resources=horizontalpodautoscalers,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=policy,resources=poddisruptionbudgets,verbs=get;list;watch;create;patch;delete
// +kubebuilder:rbac:groups=networking.k8s.io,resources=networkpolicies,verbs=get;list;watch;create;patch
// +kubebuilder:rbac:groups=batch,resources=cronjobs,verbs=get;list;watch;create;patch
// Pods are only listed, uncached, while ingest is not available, to tell
// an image that does not pull or a pod no node takes (Stalled).
// +kubebuilder:rbac:groups="",resources=pods,verbs=list

// phase is one step of a reconcile. It applies what it owns and records
// what it observed in the scope. A part that cannot be done now (its region
// or its database is unavailable) is a condition, not an error: the phases
// after it still run. An error is a failure of this reconcile (the API
// server refused a write) and ends it, to be retried.
type phase func(r *TenantReconciler, ctx context.Context, s *tenantScope) (ctrl.Result, error)

// tenantPhase is a phase with its name, the phase label of
// millimetric_reconcile_phase_duration_seconds.
type tenantPhase struct {
	name     string
	run      phase
	duration prometheus.Observer
}

func newTenantPhase(name string, run phase) tenantPhase {
	return tenantPhase{name: name, run: run, duration: phaseTimer(controllerTenant, name)}
}

// tenantPhases are the phases of a reconcile, in order: isolation before
// anything runs in the namespace, then storage, then what uses it. Only
// what needs the database waits for it: the namespace, its NetworkPolicies
// and quota, and the workloads of a provisioned tenant are kept and
// repaired whatever state the database is in.
var tenantPhases = []tenantPhase{
	newTenantPhase("region", (*TenantReconciler).resolveRegion),
	newTenantPhase("namespace", (*TenantReconciler).reconcileNamespace),
	newTenantPhase("isolation", (*TenantReconciler).reconcileIsolation),
	newTenantPhase("storage", (*TenantReconciler).reconcileStorage),
	newTenantPhase("workloads", (*TenantReconciler).reconcileWorkloads),
	newTenantPhase("route", (*TenantReconciler).reconcileRoute),
	newTenantPhase("retention", (*TenantReconciler).reconcileRetention),
	newTenantPhase("compliance", (*TenantReconciler).checkRetentionCompliance),
}

// Reconcile brings one tenant to its desired state.
func (r *TenantReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	tenant := &analyticsv1alpha1.AnalyticsTenant{}
	if err := r.Get(ctx, req.NamespacedName, tenant); err != nil {
		if apierrors.IsNotFound(err) {
			forgetTenantMetrics(req.Name)
			r.retentionChecked.Delete(req.Name)
			r.rollouts.done(req.Name)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if r.TenantSelector != nil && !r.TenantSelector.Matches(labels.Set(tenant.Labels)) {
		// Another instance owns it now, and reports it.
		forgetTenantMetrics(tenant.Name)
		r.rollouts.done(tenant.Name)
		return ctrl.Result{}, nil
	}
	s := newTenantScope(tenant, r.Settings)

	if !tenant.DeletionTimestamp.IsZero() {
		return r.finalize(ctx, s)
	}
	if !controllerutil.ContainsFinalizer(tenant, analyticsv1alpha1.TenantFinalizer) {
		// Before anything is provisioned, so nothing can outlive the tenant.
		if err := r.patchFinalizers(ctx, tenant, controllerutil.AddFinalizer); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the finalizer to AnalyticsTenant %s: %w", tenant.Name, err)
		}
		s.original = tenant.DeepCopy()
	}

	if err := tenant.Spec.CheckQuantities(); err != nil {
		// Stored before the schema refused it; a new spec (a new
		// generation) is reconciled again, so nothing is retried before.
		s.refuse(analyticsv1alpha1.ReasonInvalidSpec, fmt.Sprintf(
			"the spec holds a value the API server refuses today, stored before it did, so nothing of the tenant is reconciled: %v", err))
	}

	var result ctrl.Result
	var err error
	for _, p := range tenantPhases {
		if s.refusal != nil {
			break
		}
		var res ctrl.Result
		start := time.Now()
		res, err = p.run(r, ctx, s)
		p.duration.Observe(time.Since(start).Seconds())
		result = earliest(result, res)
		if err != nil {
			break
		}
	}
	if statusErr := r.updateStatus(ctx, s, err); statusErr != nil && err == nil {
		err = statusErr
	}
	if err != nil {
		return ctrl.Result{}, err
	}
	return result, nil
}

// patchFinalizers adds or removes our finalizer. A merge patch replaces the
// whole list, so it carries the resourceVersion the change was made on: a
// tenant whose finalizers changed since it was read (another controller's
// added, a cache behind) makes the patch fail with a conflict and the
// reconcile retry on a fresh read, instead of dropping the other entries.
func (r *TenantReconciler) patchFinalizers(ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant, change func(client.Object, string) bool) error {
	patch := client.MergeFromWithOptions(tenant.DeepCopy(), client.MergeFromWithOptimisticLock{})
	change(tenant, analyticsv1alpha1.TenantFinalizer)
	return r.Patch(ctx, tenant, patch)
}

// earliest combines two results: the sooner requeue wins.
func earliest(a, b ctrl.Result) ctrl.Result {
	if a.RequeueAfter == 0 || (b.RequeueAfter > 0 && b.RequeueAfter < a.RequeueAfter) {
		a.RequeueAfter = b.RequeueAfter
	}
	return a
}

// failingBackoff is how long to wait before retrying a tenant whose
// condition has been False since since: as long again, within bounds.
func failingBackoff(since time.Time) time.Duration {
	return backoff(time.Since(since))
}

// now is the reconciler's clock.
func (r *TenantReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// SetupWithManager registers the reconciler and its watches: the tenant,
// every kind it owns (owner references), StorageRegions (a region
// becoming Ready releases the tenants waiting on it), and the other
// claimants of a tenant's hostnames (watchHostnameClaims, which gives a
// sharded instance that routes tenants a view of every tenant's
// hostnames). While this instance leads, its tenants are counted at each
// scrape from the manager's cache (millimetric_tenants).
func (r *TenantReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.OpenStore == nil {
		r.OpenStore = OpenPostgres
	}
	if r.Scheme == nil {
		r.Scheme = mgr.GetScheme()
	}
	if r.TenantSelector != nil && r.Settings.ShardLabels == nil {
		// On every child, so CacheOptions' shard selector finds them.
		reqs, _ := r.TenantSelector.Requirements()
		for _, req := range reqs {
			r.Settings.ShardLabels = append(r.Settings.ShardLabels, req.Key())
		}
	}
	r.stores = newRegionStores(r.OpenStore)
	r.apply = children.Applier{Client: r.Client, Scheme: r.Scheme}
	r.rollouts = newRolloutGate(r.MaxConcurrentRollouts)
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		r.stores.close()
		return nil
	})); err != nil {
		return err
	}
	if err := collectWhileLeading(mgr, &tenantGauges.sources, tenantSource{cache: mgr.GetCache(), selector: r.TenantSelector}); err != nil {
		return err
	}
	if err := collectWhileLeading(mgr, &rolloutGauges.sources, r.rollouts); err != nil {
		return err
	}

	tenantsOf := func(ctx context.Context, regions ...analyticsv1alpha1.Region) []reconcile.Request {
		if len(regions) == 0 {
			return nil
		}
		var list analyticsv1alpha1.AnalyticsTenantList
		if err := mgr.GetClient().List(ctx, &list); err != nil {
			log.FromContext(ctx).Error(err, "listing AnalyticsTenants of a region")
			return nil
		}
		var reqs []reconcile.Request
		for i := range list.Items {
			if slices.Contains(regions, list.Items[i].Spec.Effective().Region) {
				reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
			}
		}
		return reqs
	}
	tenantsInRegion := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		region, ok := o.(*analyticsv1alpha1.StorageRegion)
		if !ok {
			return nil
		}
		return tenantsOf(ctx, region.Spec.Region)
	})
	// A new CA bundle in a region's admin Secret reaches its tenants at
	// once: it is part of their storage fingerprint (storageTLS), and their
	// Secrets carry it. Admin Secrets are cached (CacheOptions), so this
	// costs no request.
	tenantsOfAdminSecret := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, o client.Object) []reconcile.Request {
		var regions analyticsv1alpha1.StorageRegionList
		if err := mgr.GetClient().List(ctx, &regions); err != nil {
			log.FromContext(ctx).Error(err, "listing StorageRegions of an admin Secret")
			return nil
		}
		var served []analyticsv1alpha1.Region
		for _, sr := range regions.Items {
			if ref := sr.Spec.Postgres.AdminSecretRef; ref.Namespace == o.GetNamespace() && ref.Name == o.GetName() {
				served = append(served, sr.Spec.Region)
			}
		}
		return tenantsOf(ctx, served...)
	})

	workers := r.MaxConcurrentReconciles
	if workers < 1 {
		workers = 1
	}
	b := ctrl.NewControllerManagedBy(mgr).
		Named(controllerTenant).
		For(&analyticsv1alpha1.AnalyticsTenant{}, builder.WithPredicates(predicate.Or(
			predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}, reconcileRequested())))
	for _, kind := range children.Served(r.GatewayAPI) {
		b = b.Owns(kind, builder.WithPredicates(children.Changed()))
	}
	b, err := r.watchHostnameClaims(mgr, b)
	if err != nil {
		return err
	}
	// A deleted StorageRegion's pool is closed at once, whatever its
	// tenants do: none of them reconciling would leave it open for good.
	closePool := handler.Funcs{
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, _ workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			r.stores.drop(e.Object.GetName())
		},
	}
	return b.
		Watches(&analyticsv1alpha1.StorageRegion{}, tenantsInRegion, builder.WithPredicates(regionReadinessChanged())).
		Watches(&analyticsv1alpha1.StorageRegion{}, closePool).
		Watches(&corev1.Secret{}, tenantsOfAdminSecret, builder.WithPredicates(adminCAChanged())).
		// A tenant whose rollout waits is woken when a slot frees.
		WatchesRawSource(source.Channel(r.rollouts.wake, &handler.EnqueueRequestForObject{})).
		WithOptions(controller.Options{MaxConcurrentReconciles: workers}).
		Complete(r)
}

// OwnedObjects lists the kinds the operator creates (children.Kinds): the
// reconciler watches each the API server serves (owner references), and
// the manager caches each only when it carries render's managed-by label.
func OwnedObjects() []client.Object { return children.All() }
