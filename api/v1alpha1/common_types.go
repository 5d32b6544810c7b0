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

package v1alpha1

// Region is where a tenant's events are stored. The privacy policy promises
// EU storage by default and US storage on request.
// +kubebuilder:validation:Enum=EU;US
type Region string

const (
	// RegionEU stores events in the European Union. It is the default.
	RegionEU Region = "EU"
	// RegionUS stores events in the United States, on request.
	RegionUS Region = "US"
)

// Condition types. Ready summarises the others: it is True only when all of
// them are.
const (
	// ConditionReady is the summary condition GitOps tools and people wait on.
	ConditionReady = "Ready"
	// ConditionStorageReady says the tenant's schema and role exist in its
	// region and its credentials Secret is in place.
	ConditionStorageReady = "StorageReady"
	// ConditionIngestAvailable says the ingest Deployment has its desired
	// number of available replicas (or is suspended on purpose).
	ConditionIngestAvailable = "IngestAvailable"
	// ConditionRetentionScheduled says the retention CronJob exists with the
	// tenant's schedule and window.
	ConditionRetentionScheduled = "RetentionScheduled"
	// ConditionRetentionCompliant says the privacy policy's retention promise
	// holds, measured rather than assumed: the operator reads the oldest UTC
	// day still holding raw events from the tenant's storage, and the
	// condition is False when that day is more than a grace of two days
	// (for the daily retention run, which may fail and be retried) past the
	// plan's window.
	ConditionRetentionCompliant = "RetentionCompliant"
	// ConditionNetworkIsolated says the tenant's NetworkPolicies are in place.
	ConditionNetworkIsolated = "NetworkIsolated"
	// ConditionRouted says the tenant's HTTPRoute is accepted by the
	// platform Gateway, as the gateway controller reports in the route's
	// status.parents (Accepted and ResolvedRefs True for the Gateway the
	// operator names), with every hostname the spec asks for. Ready counts
	// it only when the operator routes tenants (--ingest-gateway set and
	// the Gateway API installed); otherwise it is False with reason
	// GatewayNotConfigured or GatewayAPIUnavailable and says so.
	ConditionRouted = "Routed"
	// ConditionReconciling is True while the operator is still converging the
	// tenant and absent once it is Ready. With observedGeneration it lets
	// kstatus (Flux, the cli-utils status readers) report InProgress until
	// the tenant is Ready and Current after, with no custom health check.
	ConditionReconciling = "Reconciling"
	// ConditionStalled is True when the tenant cannot converge until a
	// person changes something: its spec, or what blocks it (an image that
	// does not pull, no node for its pods, a rollout past its deadline, a
	// spec or a conflict the operator refuses). Its reason and message are
	// those of the part that stalls. It is absent
	// otherwise, and Reconciling is absent while it is True, so kstatus
	// (Flux, cli-utils, kubectl wait) reports Failed instead of waiting for
	// a timeout.
	ConditionStalled = "Stalled"
	// ConditionDeletionAllowed is a StorageRegion's, set only while it is
	// being deleted: False while its finalizer (RegionFinalizer) holds it
	// back because deleting it would orphan data (RegionInUse) or because
	// its database cannot be reached to tell (RegionUnchecked). The region
	// is gone once it would be True.
	ConditionDeletionAllowed = "DeletionAllowed"
)

// Reasons for the conditions above. They are CamelCase so tools can match on
// them; the condition message says what to do.
const (
	// ReasonReconciled means the condition's part of the tenant is as desired.
	ReasonReconciled = "Reconciled"
	// ReasonProgressing means the operator is still converging that part.
	ReasonProgressing = "Progressing"
	// ReasonRegionUnavailable means no Ready StorageRegion serves the
	// tenant's region.
	ReasonRegionUnavailable = "RegionUnavailable"
	// ReasonStorageFailed means provisioning in the region failed.
	ReasonStorageFailed = "StorageFailed"
	// ReasonSuspended means the tenant is suspended: ingest is scaled to
	// zero, which is its ready state (IngestAvailable True). Data is kept and
	// retention keeps running: the plan's window is enforced while suspended.
	ReasonSuspended = "Suspended"
	// ReasonDeploymentUnavailable means ingest has fewer available replicas
	// than desired.
	ReasonDeploymentUnavailable = "DeploymentUnavailable"
	// ReasonRolloutQueued means ingest's pod template is to change (a new
	// default image after an operator upgrade, say) and its rollout waits
	// its turn: as many tenants as --max-concurrent-tenant-rollouts allows
	// are rolling already. Ingest keeps serving on its previous template.
	ReasonRolloutQueued = "RolloutQueued"
	// ReasonImagePullFailed means an ingest pod has not been able to pull
	// its image for longer than the stall grace (ErrImagePull,
	// ImagePullBackOff, InvalidImageName): IngestAvailable False, Stalled.
	ReasonImagePullFailed = "ImagePullFailed"
	// ReasonUnschedulable means an ingest pod has found no node for longer
	// than the stall grace: no node matches its node selector and
	// tolerations (the StorageRegion's spec.placement) or has room for it.
	// IngestAvailable False, Stalled.
	ReasonUnschedulable = "Unschedulable"
	// ReasonProgressDeadlineExceeded means the ingest Deployment's rollout
	// made no progress within its progress deadline (its Progressing
	// condition says ProgressDeadlineExceeded): IngestAvailable False,
	// Stalled.
	ReasonProgressDeadlineExceeded = "ProgressDeadlineExceeded"
	// ReasonRetentionFailing means the last retention Job failed.
	ReasonRetentionFailing = "RetentionFailing"
	// ReasonWithinWindow means no raw event is stored past the plan's
	// window, but for those the grace allows (RetentionCompliant True).
	ReasonWithinWindow = "WithinWindow"
	// ReasonRetentionOverdue means raw events older than the plan's window
	// and the grace are still stored: retention is not deleting them
	// (RetentionCompliant False).
	ReasonRetentionOverdue = "RetentionOverdue"
	// ReasonApplyFailed means the reconcile itself failed and is retried:
	// the API server refused a read or a write of an object the operator
	// applies, or a read of the tenant's database that the reconcile needs
	// failed (its oldest raw event day, RetentionCompliant). Ready is False
	// with the error as its message; the other conditions keep what was
	// last observed.
	ReasonApplyFailed = "ApplyFailed"
	// ReasonRetainedDataExists means the region holds the data of a deleted
	// tenant of the same name under deletionPolicy Retain, and this tenant
	// did not ask to adopt it (spec.storage.adoptRetainedFrom): it is not
	// provisioned until the hold ends and that data is purged
	// (StorageReady False). The message says when, and the uid to set to
	// adopt the data instead.
	ReasonRetainedDataExists = "RetainedDataExists"
	// ReasonRetainedDataMismatch means spec.storage.adoptRetainedFrom names
	// another tenant than the deleted one whose data is held under this
	// name: nothing is adopted or provisioned (StorageReady False).
	ReasonRetainedDataMismatch = "RetainedDataMismatch"
	// ReasonRetainedDataNotFound means spec.storage.adoptRetainedFrom asks
	// for retained data, but none is held under this tenant's name any more
	// (its hold ended and it was purged, or it was never retained): the
	// tenant is not provisioned empty unasked (StorageReady False); remove
	// the field to start empty.
	ReasonRetainedDataNotFound = "RetainedDataNotFound"
	// ReasonInvalidSpec means the tenant's spec holds a value the API
	// server refuses today but stored before it did (an amount of
	// spec.ingest.resources outside v1alpha1.QuantityPattern): the operator
	// does not act on the tenant, nor parse the value, until the spec is
	// corrected (Ready False, a Warning event).
	ReasonInvalidSpec = "InvalidSpec"
	// ReasonNamespaceConflict means a namespace of the name the tenant's
	// would have exists and is not the tenant's: no AnalyticsTenant of
	// this UID controls it (labels do not count, anyone can copy them).
	// The operator writes nothing into it, no Secret, and deleting the
	// tenant leaves it (Ready False, a Warning event).
	ReasonNamespaceConflict = "NamespaceConflict"
	// ReasonRoleConflict means a PostgreSQL role with one of the tenant's
	// role names exists in its region that the operator did not make (it
	// is not in the region's registry of tenant roles): the tenant is not
	// provisioned, as taking the role over would hand the tenant's data to
	// whoever made it and to its members (StorageReady False, and a Warning
	// event). The message names the role.
	ReasonRoleConflict = "RoleConflict"
	// ReasonRouteAccepted means the Gateway accepted the tenant's route
	// and resolved its backend (Routed True).
	ReasonRouteAccepted = "RouteAccepted"
	// ReasonRouteNotAccepted means the gateway controller reports the
	// route not Accepted, or its references not resolved, for the
	// operator's Gateway; the message carries its reason (Routed False).
	ReasonRouteNotAccepted = "RouteNotAccepted"
	// ReasonHostnameConflict means a hostname of spec.ingest.hostnames is
	// claimed by another tenant created before this one (the earlier
	// creationTimestamp, then the smaller UID): it is left out of this
	// tenant's route, never taken from the other (Routed False, a Warning
	// event).
	ReasonHostnameConflict = "HostnameConflict"
	// ReasonHostnameReserved means a hostname of spec.ingest.hostnames is
	// under the operator's ingest domain, where the tenants' default
	// hostnames are: it is left out of the route (Routed False, a Warning
	// event).
	ReasonHostnameReserved = "HostnameReserved"
	// ReasonGatewayNotConfigured means the operator renders no routes (no
	// --ingest-gateway): ingest is reached only in-cluster, through its
	// Service (Routed False; Ready does not count it).
	ReasonGatewayNotConfigured = "GatewayNotConfigured"
	// ReasonGatewayAPIUnavailable means a gateway is configured but the
	// API server does not serve gateway.networking.k8s.io/v1 HTTPRoutes
	// (the Gateway API CRDs are not installed) as the operator found at
	// its start (Routed False; Ready does not count it).
	ReasonGatewayAPIUnavailable = "GatewayAPIUnavailable"

	// ReasonConnected means the region's admin connection works.
	ReasonConnected = "Connected"
	// ReasonSecretMissing means the admin Secret or one of its keys is missing.
	ReasonSecretMissing = "SecretMissing"
	// ReasonConnectionFailed means the region's database could not be reached.
	ReasonConnectionFailed = "ConnectionFailed"
	// ReasonAuthenticationFailed means the database refused the admin
	// credentials.
	ReasonAuthenticationFailed = "AuthenticationFailed"
	// ReasonDuplicateRegion means more than one StorageRegion claims the same
	// region; none of them is used until only one remains.
	ReasonDuplicateRegion = "DuplicateRegion"
	// ReasonRegionInUse means a StorageRegion being deleted still serves
	// tenants or still holds retained tenants' data in its database:
	// deleting it would leave that data with no one to sweep or purge it
	// (DeletionAllowed False). The message and a Warning event say what is
	// left and what to do.
	ReasonRegionInUse = "RegionInUse"
	// ReasonRegionUnchecked means a StorageRegion being deleted, which has
	// reached its database before, cannot reach it now to tell whether it
	// still holds retained data: it is held until it can (DeletionAllowed
	// False).
	ReasonRegionUnchecked = "RegionUnchecked"

	// The reasons below, with ConnectionFailed, AuthenticationFailed and
	// RoleConflict above, are those of a failure of the region's database
	// (the package storage classifies its errors by them: storage.Reason),
	// on a StorageRegion's Ready or a tenant's StorageReady.

	// ReasonDatabaseMissing means the region's database does not exist.
	ReasonDatabaseMissing = "DatabaseMissing"
	// ReasonPermissionDenied means the database refused what the
	// operator's role asked (an administrator without CREATEROLE, say).
	ReasonPermissionDenied = "PermissionDenied"
	// ReasonTLSFailed means the TLS handshake with the database failed: the
	// certificate is not trusted or not for the host, or the server offers
	// no TLS.
	ReasonTLSFailed = "TLSFailed"
	// ReasonInvalidConfig means the region's connection settings themselves
	// are wrong (an empty host, a CA certificate that does not parse).
	ReasonInvalidConfig = "InvalidConfig"
	// ReasonInvalidTenantName means the tenant's name cannot become the
	// name of its schema.
	ReasonInvalidTenantName = "InvalidTenantName"
	// ReasonStorageBusy means a lock in the database could not be had in
	// time (another operation on the same tenant): retried later.
	ReasonStorageBusy = "StorageBusy"
	// ReasonIncompatibleSchema means the tenant's schema was migrated by a
	// newer operator than this one, or is not the shape this operator makes.
	ReasonIncompatibleSchema = "IncompatibleSchema"
	// ReasonStorageError means the database reported another failure; the
	// message says which.
	ReasonStorageError = "StorageError"
)

// TenantFinalizer holds an AnalyticsTenant until its data has been purged
// from its region (or deliberately retained).
const TenantFinalizer = "analytics.millimetric.ai/purge-storage"

// RegionFinalizer holds a StorageRegion being deleted until no tenant is
// served by it and its database holds no retained tenant's data: the
// region's check is what sweeps held data when its hold ends, and tenants
// are purged through it.
const RegionFinalizer = "analytics.millimetric.ai/region-data"
