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
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/events"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// Re-check intervals of a StorageRegion. A failing region is re-checked after
// as long as it has been failing (5s, 10s, 20s, ... up to the maximum), so an
// outage is noticed to end quickly without hammering a database that is down.
const (
	regionRecheckHealthy = 5 * time.Minute
	regionBackoffMin     = 5 * time.Second
	regionBackoffMax     = 5 * time.Minute
	regionCheckTimeout   = 15 * time.Second
	// regionSweepTimeout bounds one sweep of a region's retained tenants;
	// what it leaves is swept at the next check.
	regionSweepTimeout = 2 * time.Minute
	// regionSweepMinWait is the shortest wait for the next hold to end, so
	// a hold ending a moment after a check is not polled for.
	regionSweepMinWait = time.Second
	// regionDeletionRecheck is how often a Ready region held back from
	// deletion looks again at what is left, besides its tenants' events.
	regionDeletionRecheck = time.Minute
)

// Event reasons of the StorageRegion reconciler, besides the Ready reasons.
// eventPurged, the tenant reconciler's, also says that the sweep purged a
// retained tenant.
const eventSweepFailed = "SweepFailed"

// StorageRegionReconciler checks each StorageRegion: that no other one claims
// its region, that the operator's policy allows its admin Secret and SSL
// mode, that its admin Secret exists, and that the admin can log in.
// It owns the region's Ready condition, tenant count and retained-tenant
// status. At each successful check it sweeps the region's retained tenants
// (deletionPolicy Retain): a tenant whose hold has ended is purged, and a
// Purged event on the StorageRegion says so. That is the only change it makes
// to the database.
type StorageRegionReconciler struct {
	client.Client
	// APIReader reads from the API server what the cache may not hold: an
	// admin Secret the cache has not seen yet (admin Secrets are cached, in
	// the one namespace they may be in: CacheOptions), and, when a region is
	// deleted, every tenant of every shard (whatIsLeft).
	APIReader client.Reader
	// Recorder records an event when a region becomes Ready or stops being.
	Recorder events.EventRecorder
	// OpenStore connects to a region; OpenPostgres unless a test says else.
	OpenStore OpenStoreFunc
	// RecheckInterval is how often a Ready region is checked again.
	RecheckInterval time.Duration
	// Policy says which admin Secrets and SSL modes a region may use; a
	// region it refuses is not Ready and nothing of it is read or dialled.
	Policy RegionPolicy
	// Now is the clock that decides which holds have ended; time.Now when
	// nil. Tests move it.
	Now func() time.Time
}

// +kubebuilder:rbac:groups=analytics.millimetric.ai,resources=storageregions,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=analytics.millimetric.ai,resources=storageregions/status,verbs=patch
// +kubebuilder:rbac:groups="",resources=secrets,verbs=get
// +kubebuilder:rbac:groups=events.k8s.io,resources=events,verbs=create;patch

// Reconcile checks one StorageRegion and writes its status if it changed.
func (r *StorageRegionReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	region := &analyticsv1alpha1.StorageRegion{}
	if err := r.Get(ctx, req.NamespacedName, region); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	deleting := !region.DeletionTimestamp.IsZero()
	if !deleting && !controllerutil.ContainsFinalizer(region, analyticsv1alpha1.RegionFinalizer) {
		if err := r.patchFinalizers(ctx, region, controllerutil.AddFinalizer); err != nil {
			return ctrl.Result{}, fmt.Errorf("adding the finalizer of StorageRegion %s: %w", region.Name, err)
		}
	}
	if deleting && !controllerutil.ContainsFinalizer(region, analyticsv1alpha1.RegionFinalizer) {
		return ctrl.Result{}, nil
	}

	start := time.Now()
	check, err := r.check(ctx, region)
	regionCheckDuration.Observe(time.Since(start).Seconds())
	if err != nil {
		// Not a verdict on the region (the API server failed us): retry.
		return ctrl.Result{}, err
	}
	r.recordSweep(ctx, region, check.holds)

	status := region.Status.DeepCopy()
	status.ObservedGeneration = region.Generation
	if check.tenants >= 0 {
		status.Tenants = ptr.To(int32(check.tenants))
	}
	if check.holds.listed {
		status.Retained = ptr.To(int32(len(check.holds.held)))
		status.NextRetainedExpiry = nil
		if len(check.holds.held) > 0 {
			// Whole seconds, as the API server keeps it, so an unchanged
			// expiry is not a change.
			status.NextRetainedExpiry = ptr.To(metav1.NewTime(check.holds.held[0].ExpiresAt.Truncate(time.Second)))
		}
	}
	cond := metav1.Condition{
		Type:               analyticsv1alpha1.ConditionReady,
		Status:             metav1.ConditionFalse,
		Reason:             check.reason,
		Message:            check.message,
		ObservedGeneration: region.Generation,
	}
	if check.reason == analyticsv1alpha1.ReasonConnected {
		cond.Status = metav1.ConditionTrue
	}
	wasReady := meta.IsStatusConditionTrue(region.Status.Conditions, analyticsv1alpha1.ConditionReady)
	previous := meta.FindStatusCondition(region.Status.Conditions, analyticsv1alpha1.ConditionReady)
	meta.SetStatusCondition(&status.Conditions, cond)

	var held *metav1.Condition
	if deleting {
		left, err := r.whatIsLeft(ctx, region, check)
		if err != nil {
			return ctrl.Result{}, err
		}
		held = left.condition(region)
		if held == nil {
			log.FromContext(ctx).Info("nothing is left in the region: letting it be deleted")
			if err := r.patchFinalizers(ctx, region, controllerutil.RemoveFinalizer); err != nil {
				return ctrl.Result{}, client.IgnoreNotFound(err)
			}
			return ctrl.Result{}, nil
		}
		previousHeld := meta.FindStatusCondition(region.Status.Conditions, analyticsv1alpha1.ConditionDeletionAllowed)
		meta.SetStatusCondition(&status.Conditions, *held)
		if previousHeld == nil || previousHeld.Reason != held.Reason || previousHeld.Message != held.Message {
			log.FromContext(ctx).Info("deletion held back", "reason", held.Reason, "message", held.Message)
			if r.Recorder != nil {
				r.Recorder.Eventf(region, nil, corev1.EventTypeWarning, held.Reason, "Delete", "%s", held.Message)
			}
		}
	}

	if !equality.Semantic.DeepEqual(&region.Status, status) {
		patch := client.MergeFrom(region.DeepCopy())
		region.Status = *status
		if err := r.Status().Patch(ctx, region, patch); err != nil {
			return ctrl.Result{}, fmt.Errorf("writing status of StorageRegion %s: %w", region.Name, err)
		}
		r.recordTransition(ctx, region, previous, cond, wasReady)
	}

	if cond.Status == metav1.ConditionTrue {
		after := r.readyRecheck(check.holds)
		if held != nil {
			after = min(after, regionDeletionRecheck)
		}
		return ctrl.Result{RequeueAfter: after}, nil
	}
	ready := meta.FindStatusCondition(region.Status.Conditions, analyticsv1alpha1.ConditionReady)
	return ctrl.Result{RequeueAfter: backoff(time.Since(ready.LastTransitionTime.Time))}, nil
}

// patchFinalizers adds or removes RegionFinalizer, with an optimistic lock
// so a concurrent change is not overwritten.
func (r *StorageRegionReconciler) patchFinalizers(ctx context.Context, region *analyticsv1alpha1.StorageRegion, change func(client.Object, string) bool) error {
	patch := client.MergeFromWithOptions(region.DeepCopy(), client.MergeFromWithOptimisticLock{})
	if !change(region, analyticsv1alpha1.RegionFinalizer) {
		return nil
	}
	return r.Patch(ctx, region, patch)
}

// regionLeft is what a StorageRegion being deleted still has: what its
// deletion would orphan.
type regionLeft struct {
	// tenants are the AnalyticsTenants it serves.
	tenants []string
	// held are the retained tenants its database holds.
	held []storage.RetainedTenant
	// unchecked says why the database could not be read, "" when it was.
	unchecked       string
	uncheckedReason string
}

// whatIsLeft finds what deleting the region would orphan:
//   - nothing when another StorageRegion, not being deleted, claims the
//     same region and names the same database: it serves the same data;
//   - the tenants of its region that name it in status.storage.regionRef,
//     or that name none yet (they would be provisioned through it). They
//     are listed from the API server, not the cache, which holds only this
//     instance's shard;
//   - the holds its database records, as the check just listed them after
//     its sweep. A region that never reached its database (no tenant count
//     in status) has none the operator could have put there through it;
//     one that did but cannot reach it now is held, unchecked.
func (r *StorageRegionReconciler) whatIsLeft(ctx context.Context, region *analyticsv1alpha1.StorageRegion, check regionCheck) (regionLeft, error) {
	var left regionLeft
	claims, err := regionClaims(ctx, r, region.Spec.Region)
	if err != nil {
		return left, err
	}
	mine := region.Spec.Postgres.Effective()
	for _, c := range claims {
		theirs := c.Spec.Postgres.Effective()
		if c.Name != region.Name && theirs.Host == mine.Host && theirs.Port == mine.Port && theirs.Database == mine.Database {
			return left, nil
		}
	}
	reader := r.APIReader
	if reader == nil {
		reader = r.Client
	}
	var tenants analyticsv1alpha1.AnalyticsTenantList
	if err := reader.List(ctx, &tenants); err != nil {
		return left, fmt.Errorf("listing the tenants of StorageRegion %s: %w", region.Name, err)
	}
	for _, t := range tenants.Items {
		ref := ""
		if t.Status.Storage != nil {
			ref = t.Status.Storage.RegionRef
		}
		if t.Spec.Effective().Region == region.Spec.Region && (ref == "" || ref == region.Name) {
			left.tenants = append(left.tenants, t.Name)
		}
	}
	switch {
	case check.holds.listed:
		left.held = check.holds.held
	case region.Status.Tenants == nil && region.Status.Retained == nil:
		// Never reached: nothing was provisioned or held through it.
	default:
		left.uncheckedReason, left.unchecked = check.reason, check.message
		if check.holds.err != nil {
			left.uncheckedReason, left.unchecked = analyticsv1alpha1.ReasonRegionUnchecked, check.holds.err.Error()
		}
	}
	return left, nil
}

// condition is the DeletionAllowed condition of a region with what is
// left, nil when nothing is and the finalizer may go.
func (l regionLeft) condition(region *analyticsv1alpha1.StorageRegion) *metav1.Condition {
	cond := &metav1.Condition{
		Type:               analyticsv1alpha1.ConditionDeletionAllowed,
		Status:             metav1.ConditionFalse,
		Reason:             analyticsv1alpha1.ReasonRegionInUse,
		ObservedGeneration: region.Generation,
	}
	var what, todo []string
	if n := len(l.tenants); n > 0 {
		what = append(what, fmt.Sprintf("serves %s (%s)", count(n, "tenant"), firstFew(l.tenants)))
		todo = append(todo, "delete those tenants (each is purged, or retained, through this region)")
	}
	if n := len(l.held); n > 0 {
		names := make([]string, 0, n)
		for _, h := range l.held {
			names = append(names, h.Tenant)
		}
		last := l.held[n-1].ExpiresAt.UTC().Format(time.RFC3339)
		what = append(what, fmt.Sprintf("holds the retained data of %s (%s) in its database", count(n, "deleted tenant"), firstFew(names)))
		todo = append(todo, fmt.Sprintf("wait for the holds to end (the last ends at %s; this region's sweep purges each then) or end them early (as the region's administrator, UPDATE %s.%s SET expires_at = now() WHERE tenant = '<name>', then annotate this StorageRegion to sweep at once)", last, storage.OperatorSchema, "retained_tenants"))
	}
	switch {
	case len(what) > 0:
		cond.Message = fmt.Sprintf("StorageRegion %s is not deleted yet, as it would orphan that data: it still %s. To delete it, %s.",
			region.Name, strings.Join(what, " and "), strings.Join(todo, ", and "))
		if l.unchecked != "" {
			cond.Message += " Its database cannot be read now either (" + l.uncheckedReason + ")."
		}
	case l.unchecked != "":
		cond.Reason = analyticsv1alpha1.ReasonRegionUnchecked
		cond.Message = fmt.Sprintf("StorageRegion %s is not deleted yet: its database cannot be read to tell whether it still holds retained tenants' data (%s: %s). It is deleted once it can be and holds none; to give that data up instead, remove the finalizer %s by hand.",
			region.Name, l.uncheckedReason, l.unchecked, analyticsv1alpha1.RegionFinalizer)
	default:
		return nil
	}
	return cond
}

// count says n things.
func count(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// firstFew names the first few of names, and how many more there are.
func firstFew(names []string) string {
	const few = 5
	if len(names) <= few {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:few], ", "), len(names)-few)
}

// regionCheck is what one check of a region found.
type regionCheck struct {
	reason  string
	message string
	// tenants is the number of tenant schemas, -1 when unknown.
	tenants int
	// holds is what the sweep of retained tenants did; zero when the
	// region was not usable, so not swept.
	holds regionHolds
}

// regionHolds is what one sweep of a region's retained tenants did and
// found.
type regionHolds struct {
	// purged are the tenants whose hold ended and that the sweep purged.
	purged []storage.RetainedTenant
	// held are the tenants still held, the hold ending first first; valid
	// only when listed is true.
	held   []storage.RetainedTenant
	listed bool
	// err is why the sweep, or the listing, failed.
	err error
}

// regionCheckDuration is the check's phase of
// millimetric_reconcile_phase_duration_seconds, the sweep included.
var regionCheckDuration = phaseTimer(controllerRegion, "check")

// regionReasonsBeforeConnecting are the Ready reasons of a check that stops
// before it connects to the database: they say nothing of whether the
// database is up (millimetric_storage_region_database_up). Every other
// reason but Connected is a failure to connect or log in.
var regionReasonsBeforeConnecting = []string{
	analyticsv1alpha1.ReasonDuplicateRegion, analyticsv1alpha1.ReasonSecretNotAllowed,
	analyticsv1alpha1.ReasonInsecureConnection, analyticsv1alpha1.ReasonSecretMissing,
}

// check finds out whether the region is usable. An error means the check
// itself could not be made. Each return before the connection has a reason
// in regionReasonsBeforeConnecting.
func (r *StorageRegionReconciler) check(ctx context.Context, region *analyticsv1alpha1.StorageRegion) (regionCheck, error) {
	// A region being deleted claims its region no more (regionClaims): a
	// new one may take over while it still sweeps and purges what it has.
	var others []string
	if region.DeletionTimestamp.IsZero() {
		var err error
		if others, err = r.sameRegion(ctx, region); err != nil {
			return regionCheck{}, err
		}
	}
	if len(others) > 0 {
		return regionCheck{
			reason: analyticsv1alpha1.ReasonDuplicateRegion,
			message: fmt.Sprintf("StorageRegions %s also claim region %s; no tenant of the region is provisioned until only one remains: delete the others",
				strings.Join(others, ", "), region.Spec.Region),
			tenants: -1,
		}, nil
	}

	if refused := r.Policy.admit(region); refused != nil {
		return regionCheck{reason: refused.reason, message: refused.msg, tenants: -1}, nil
	}
	cfg, err := adminConfig(ctx, r.Client, r.APIReader, region)
	var missing *secretMissingError
	if errors.As(err, &missing) {
		return regionCheck{reason: analyticsv1alpha1.ReasonSecretMissing, message: missing.Error(), tenants: -1}, nil
	}
	if err != nil {
		return regionCheck{}, err
	}

	where := fmt.Sprintf("database %q at %s:%d", cfg.Database, cfg.Host, cfg.Port)
	pingCtx, cancel := context.WithTimeout(ctx, regionCheckTimeout)
	defer cancel()
	store, err := r.OpenStore(pingCtx, cfg)
	if err == nil {
		defer store.Close()
		err = store.Ping(pingCtx)
	}
	if err != nil {
		// storage errors never carry the password; they say what failed.
		return regionCheck{reason: regionReason(err), message: fmt.Sprintf("%s: %v", where, err), tenants: -1}, nil
	}
	// The sweep first, so the count that follows no longer has the tenants
	// it purged.
	holds := r.sweep(ctx, store)
	countCtx, cancelCount := context.WithTimeout(ctx, regionCheckTimeout)
	defer cancelCount()
	tenants, err := store.CountTenants(countCtx)
	if err != nil {
		return regionCheck{reason: regionReason(err), message: fmt.Sprintf("%s: %v", where, err), tenants: -1, holds: holds}, nil
	}
	return regionCheck{
		reason:  analyticsv1alpha1.ReasonConnected,
		message: fmt.Sprintf("the administrator can log in to %s", where),
		tenants: tenants,
		holds:   holds,
	}, nil
}

// sweep purges the region's retained tenants whose hold has ended and lists
// those still held. A failure is reported in the result, not as the
// region's: the admin connection works, and the next check tries again.
func (r *StorageRegionReconciler) sweep(ctx context.Context, store storage.Store) regionHolds {
	ctx, cancel := context.WithTimeout(ctx, regionSweepTimeout)
	defer cancel()
	var h regionHolds
	h.purged, h.err = store.SweepRetained(ctx, r.now())
	held, err := store.Retained(ctx)
	if err != nil {
		h.err = errors.Join(h.err, err)
		return h
	}
	h.held, h.listed = held, true
	return h
}

// recordSweep tells, in events on the StorageRegion and in the log, which
// retained tenants the sweep purged and whether it failed.
func (r *StorageRegionReconciler) recordSweep(ctx context.Context, region *analyticsv1alpha1.StorageRegion, h regionHolds) {
	logger := log.FromContext(ctx)
	for _, t := range h.purged {
		note := fmt.Sprintf("purged retained tenant %s (schema %s, deleted %s, held %s): its schema, data and roles are gone",
			t.Tenant, t.Schema, t.DeletedAt.UTC().Format(time.RFC3339), holdLength(t.Hold()))
		logger.Info(note, "event", eventPurged, "tenant", t.Tenant)
		if r.Recorder != nil {
			r.Recorder.Eventf(region, nil, corev1.EventTypeNormal, eventPurged, "Sweep", "%s", note)
		}
	}
	if h.err == nil || ctx.Err() != nil {
		// Nothing failed, or the operator is stopping: not the sweep's fault.
		return
	}
	// Storage errors never carry passwords; each names its tenant.
	note := fmt.Sprintf("sweeping the retained tenants of region %s failed, and is tried again at the next check: %s",
		region.Spec.Region, strings.ReplaceAll(h.err.Error(), "\n", "; "))
	logger.Error(h.err, "sweeping the retained tenants failed", "event", eventSweepFailed)
	if r.Recorder != nil {
		r.Recorder.Eventf(region, nil, corev1.EventTypeWarning, eventSweepFailed, "Sweep", "%s", note)
	}
}

// holdLength says a hold in days, as deletionPolicy Retain sets it.
func holdLength(d time.Duration) string {
	const day = 24 * time.Hour
	switch {
	case d == day:
		return "1 day"
	case d > 0 && d%day == 0:
		return fmt.Sprintf("%d days", d/day)
	default:
		return d.String()
	}
}

// readyRecheck is when a Ready region is checked again: after the recheck
// interval, or when the next hold ends if that is sooner, so a retained
// tenant is purged on time. A hold that should have ended already (its
// purge failed) waits for the recheck interval, not a hot retry.
func (r *StorageRegionReconciler) readyRecheck(h regionHolds) time.Duration {
	after := r.recheckInterval()
	now := r.now()
	for _, t := range h.held {
		if until := t.ExpiresAt.Sub(now); until > 0 {
			return min(after, max(until, regionSweepMinWait))
		}
	}
	return after
}

// now is the reconciler's clock.
func (r *StorageRegionReconciler) now() time.Time {
	if r.Now != nil {
		return r.Now()
	}
	return time.Now()
}

// sameRegion names the other StorageRegions that claim the region's region.
func (r *StorageRegionReconciler) sameRegion(ctx context.Context, region *analyticsv1alpha1.StorageRegion) ([]string, error) {
	claims, err := regionClaims(ctx, r, region.Spec.Region)
	if err != nil {
		return nil, err
	}
	var others []string
	for _, c := range claims {
		if c.Name != region.Name {
			others = append(others, c.Name)
		}
	}
	return others, nil
}

// regionReason turns a storage failure into a condition reason.
func regionReason(err error) string {
	return storageReason(err, analyticsv1alpha1.ReasonConnectionFailed)
}

// storageReason is the condition reason of a storage failure: its
// storage.Reason, each of which api/v1alpha1 declares as a reason
// (TestEveryStorageReasonIsDeclaredByTheAPI), or otherwise when the
// failure is not the storage package's.
func storageReason(err error, otherwise string) string {
	if reason := storage.ReasonFor(err); reason != "" {
		return string(reason)
	}
	return otherwise
}

func (r *StorageRegionReconciler) recordTransition(ctx context.Context, region *analyticsv1alpha1.StorageRegion, previous *metav1.Condition, now metav1.Condition, wasReady bool) {
	if previous != nil && previous.Status == now.Status && previous.Reason == now.Reason {
		return
	}
	log.FromContext(ctx).Info("Ready is "+string(now.Status), "reason", now.Reason, "message", now.Message)
	if r.Recorder == nil {
		return
	}
	switch {
	case now.Status == metav1.ConditionTrue:
		r.Recorder.Eventf(region, nil, corev1.EventTypeNormal, now.Reason, "Check", "%s", now.Message)
	case wasReady || previous == nil || previous.Reason != now.Reason:
		r.Recorder.Eventf(region, nil, corev1.EventTypeWarning, now.Reason, "Check", "%s", now.Message)
	}
}

func (r *StorageRegionReconciler) recheckInterval() time.Duration {
	if r.RecheckInterval > 0 {
		return r.RecheckInterval
	}
	return regionRecheckHealthy
}

// backoff waits as long as the failure has lasted, within bounds: the
// doubling of exponential backoff, kept in the condition instead of memory.
func backoff(failingFor time.Duration) time.Duration {
	return min(max(failingFor, regionBackoffMin), regionBackoffMax)
}

// SetupWithManager registers the reconciler. A StorageRegion is re-checked
// when its spec or its annotations change (annotating it re-checks it at
// once). A change to any StorageRegion's claim re-checks all of them, since a
// duplicate appearing or going away changes the others' Ready. A tenant's
// schema being created or purged (or retained), or its storage starting or
// stopping to fail, re-checks its region: the tenant and retained counts
// follow, and a database that went away is noticed by the region as soon as
// one of its tenants notices, not at the next re-check.
// While this instance leads, the regions are reported at each scrape from
// the manager's cache (millimetric_storage_regions and
// millimetric_storage_region_database_up).
func (r *StorageRegionReconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.OpenStore == nil {
		r.OpenStore = OpenPostgres
	}
	allRegions := handler.EnqueueRequestsFromMapFunc(func(ctx context.Context, _ client.Object) []reconcile.Request {
		var list analyticsv1alpha1.StorageRegionList
		if err := mgr.GetClient().List(ctx, &list); err != nil {
			log.FromContext(ctx).Error(err, "listing StorageRegions to re-check them")
			return nil
		}
		return regionRequests(list.Items)
	})
	if err := collectWhileLeading(mgr, &regionGauges.sources, regionSource{cache: mgr.GetCache(), now: r.now}); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named(controllerRegion).
		For(&analyticsv1alpha1.StorageRegion{}, builder.WithPredicates(
			predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.AnnotationChangedPredicate{}))).
		Watches(&analyticsv1alpha1.StorageRegion{}, allRegions, builder.WithPredicates(regionClaimChanged())).
		Watches(&analyticsv1alpha1.AnalyticsTenant{}, recountAfter(recountDelay, func(ctx context.Context, o client.Object) []reconcile.Request {
			tenant, ok := o.(*analyticsv1alpha1.AnalyticsTenant)
			if !ok {
				return nil
			}
			// Those being deleted too: they wait for their tenants to go.
			var list analyticsv1alpha1.StorageRegionList
			if err := mgr.GetClient().List(ctx, &list); err != nil {
				log.FromContext(ctx).Error(err, "listing StorageRegions to recount their tenants")
				return nil
			}
			region := tenant.Spec.Effective().Region
			list.Items = slices.DeleteFunc(list.Items, func(sr analyticsv1alpha1.StorageRegion) bool { return sr.Spec.Region != region })
			return regionRequests(list.Items)
		}), builder.WithPredicates(tenantStorageChanged())).
		Complete(r)
}

// recountDelay gathers a region's tenant events into one check. While
// tenants converge, each one provisioned would otherwise set off a check of
// its region (a login, a count of its schemas, a sweep) and a status write
// of the new count: at 2,000 tenants the StorageRegion controller reconciled
// as often as the tenant controller. The count in status lags by at most
// this; a region's own changes are not delayed.
const recountDelay = 5 * time.Second

// recountAfter is an event handler that asks for the regions fn maps a
// tenant event to after delay. The queue keeps one request per region at
// its earliest time, so every event in the delay comes to one reconcile.
func recountAfter(delay time.Duration, fn handler.MapFunc) handler.EventHandler {
	add := func(ctx context.Context, q workqueue.TypedRateLimitingInterface[reconcile.Request], objs ...client.Object) {
		for _, o := range objs {
			for _, req := range fn(ctx, o) {
				q.AddAfter(req, delay)
			}
		}
	}
	return handler.Funcs{
		CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
		UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.ObjectOld, e.ObjectNew)
		},
		DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
		GenericFunc: func(ctx context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			add(ctx, q, e.Object)
		},
	}
}

// regionRequests asks for a check of each of the regions.
func regionRequests(regions []analyticsv1alpha1.StorageRegion) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(regions))
	for i := range regions {
		reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&regions[i])})
	}
	return reqs
}

// tenantStorageChanged passes the tenant events that say something about its
// region: a schema named in status for the first time (provisioned), a
// tenant going away (after its purge, or its retention), and StorageReady
// changing status or reason (the database failing or coming back).
func tenantStorageChanged() predicate.Funcs {
	return predicate.Funcs{
		CreateFunc: func(event.CreateEvent) bool { return false },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*analyticsv1alpha1.AnalyticsTenant)
			n, ok2 := e.ObjectNew.(*analyticsv1alpha1.AnalyticsTenant)
			return ok1 && ok2 && (schemaOf(o) != schemaOf(n) || storageVerdict(o) != storageVerdict(n))
		},
		DeleteFunc:  func(event.DeleteEvent) bool { return true },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func schemaOf(t *analyticsv1alpha1.AnalyticsTenant) string {
	if t.Status.Storage == nil {
		return ""
	}
	return t.Status.Storage.Schema
}

// storageVerdict is the tenant's StorageReady status and reason.
func storageVerdict(t *analyticsv1alpha1.AnalyticsTenant) string {
	c := meta.FindStatusCondition(t.Status.Conditions, analyticsv1alpha1.ConditionStorageReady)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

// regionClaimChanged passes creations, deletions, and updates that change
// which region a StorageRegion claims or start its deletion.
func regionClaimChanged() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*analyticsv1alpha1.StorageRegion)
			n, ok2 := e.ObjectNew.(*analyticsv1alpha1.StorageRegion)
			return ok1 && ok2 && (o.Spec.Region != n.Spec.Region || o.DeletionTimestamp.IsZero() != n.DeletionTimestamp.IsZero())
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}
