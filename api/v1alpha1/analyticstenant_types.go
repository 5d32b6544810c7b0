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

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GeoPrecision is the finest location derived from a visitor's IP address at
// ingestion. The address itself is never stored.
// +kubebuilder:validation:Enum=Country;Region;City
type GeoPrecision string

const (
	// GeoPrecisionCountry keeps the country only.
	GeoPrecisionCountry GeoPrecision = "Country"
	// GeoPrecisionRegion keeps country and region.
	GeoPrecisionRegion GeoPrecision = "Region"
	// GeoPrecisionCity keeps country, region and city. Default.
	GeoPrecisionCity GeoPrecision = "City"
)

// ReconcileRequestedAnnotation on an AnalyticsTenant asks for a full
// reconcile now, whatever is cached: storage is provisioned again (which
// repairs what drifted in the database) and the oldest raw event day is
// read again, instead of at their next periodic check. Any new value asks
// once; status.lastHandledReconcileAt records the last value handled. As
// Flux's reconcile.fluxcd.io/requestedAt:
//
//	kubectl annotate analyticstenant acme --overwrite analytics.millimetric.ai/reconcile-requested-at="$(date +%s)"
const ReconcileRequestedAnnotation = "analytics.millimetric.ai/reconcile-requested-at"

// DeletionPolicy is what happens to a tenant's stored data when its
// AnalyticsTenant is deleted.
// +kubebuilder:validation:Enum=Delete;Retain
type DeletionPolicy string

const (
	// DeletionPolicyDelete purges the tenant's schema and role. Default: the
	// policy promises account data is deleted within 30 days of closure.
	DeletionPolicyDelete DeletionPolicy = "Delete"
	// DeletionPolicyRetain keeps the tenant's schema and role.
	DeletionPolicyRetain DeletionPolicy = "Retain"
)

// Domain is a host name a tenant collects events for, or a wildcard
// "*.example.com" for all of its subdomains.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^([*][.])?([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?[.])+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$')",message="each domain must be a lowercase host name such as example.com, or a wildcard such as *.example.com"
type Domain string

// Hostname is a host name a tenant's ingest is reached at for first-party
// collection, such as stats.example.com: a lowercase DNS name of at least
// two labels, without a wildcard.
// +kubebuilder:validation:MaxLength=253
// +kubebuilder:validation:XValidation:rule="self.matches('^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?[.])+[a-z]([-a-z0-9]{0,61}[a-z0-9])?$')",message="each hostname must be a lowercase DNS name such as stats.example.com, without a wildcard, a port or a trailing dot"
type Hostname string

// QueryParam is the name of a URL query parameter. Names that carry
// personal data on most sites (PersonalDataQueryParams) are refused.
// +kubebuilder:validation:MaxLength=64
// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_][-A-Za-z0-9_.]*$')",message="query parameter names may contain only letters, digits, '_', '-' and '.', and must not start with '-' or '.'"
// +kubebuilder:validation:XValidation:rule="!(self.lowerAscii().replace('-', \"\").replace('_', \"\").replace('.', \"\") in ['email', 'mail', 'emailaddress', 'token', 'accesstoken', 'refreshtoken', 'idtoken', 'password', 'passwd', 'pass', 'pwd', 'phone', 'phonenumber', 'tel', 'mobile', 'name', 'firstname', 'lastname', 'fullname', 'surname', 'username', 'user', 'address', 'street', 'zip', 'postcode', 'ssn', 'dob', 'birthdate', 'session', 'sessionid', 'sid', 'jsessionid', 'phpsessid', 'auth', 'authorization', 'key', 'apikey', 'secret', 'clientsecret', 'code', 'otp', 'pin', 'iban', 'creditcard', 'cardnumber', 'cc', 'cvv', 'ip'] || ['email', 'passw', 'token', 'secret', 'apikey', 'sessionid', 'sessid'].exists(w, self.lowerAscii().replace('-', \"\").replace('_', \"\").replace('.', \"\").contains(w)))",message="this query parameter name usually carries personal data (an e-mail address, a name, a phone number, a password, a token or a session): the privacy policy keeps no such parameter, so it cannot be allowlisted"
type QueryParam string

// PersonalDataQueryParams are the query parameter names a tenant may not
// allowlist: compared without case and without '-', '_' and '.' (so
// e-mail, E_Mail and email are one), a name that is one of these, or
// contains one of PersonalDataQueryParamParts, is refused by the API
// server. The CEL rule on QueryParam holds the same lists; a test keeps
// them equal. (The rule writes the empty string in double quotes: two
// single quotes in a doc comment are rewritten by gofmt.)
var PersonalDataQueryParams = []string{
	"email", "mail", "emailaddress", "token", "accesstoken", "refreshtoken", "idtoken",
	"password", "passwd", "pass", "pwd", "phone", "phonenumber", "tel", "mobile",
	"name", "firstname", "lastname", "fullname", "surname", "username", "user",
	"address", "street", "zip", "postcode", "ssn", "dob", "birthdate",
	"session", "sessionid", "sid", "jsessionid", "phpsessid", "auth", "authorization",
	"key", "apikey", "secret", "clientsecret", "code", "otp", "pin",
	"iban", "creditcard", "cardnumber", "cc", "cvv", "ip",
}

// PersonalDataQueryParamParts are the parts a query parameter name may not
// contain (compared as PersonalDataQueryParams): user_email, x-api-key
// and auth_token are refused as email, apikey and token are.
var PersonalDataQueryParamParts = []string{"email", "passw", "token", "secret", "apikey", "sessionid", "sessid"}

// AnalyticsTenantSpec is what one customer bought. No field is defaulted in
// the stored object; Effective says what is in force.
// +kubebuilder:validation:XValidation:rule="has(self.domains) && size(self.domains) > 0",message="domains must list at least one site the tenant collects events for, such as example.com: ingest refuses every event of a tenant without domains, and does not start",fieldPath=".domains",reason=FieldValueRequired
// +kubebuilder:validation:XValidation:rule="!has(self.retainDays) || (has(self.deletionPolicy) && self.deletionPolicy == 'Retain')",message="retainDays is how long deletionPolicy Retain holds a deleted tenant's data; with deletionPolicy Delete (or unset) the data is purged at once: set deletionPolicy: Retain, or remove retainDays",fieldPath=".retainDays"
// +kubebuilder:validation:XValidation:rule="(has(oldSelf.region) ? oldSelf.region : 'EU') == (has(self.region) ? self.region : 'EU')",message="region is immutable (unset means EU): a tenant's events stay in the region it was created in; create a new tenant to use another region"
type AnalyticsTenantSpec struct {
	// Region where the tenant's events are stored: EU (default) or US. It
	// cannot be changed once the tenant exists.
	// +optional
	Region Region `json:"region,omitempty"`

	// RetentionDays is the plan's window for raw events: 30 (default), 90 or
	// 365. Older raw events are rolled into daily aggregates and deleted.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self in [30, 90, 365]",message="retentionDays must be one of the plans' windows: 30, 90 or 365"
	RetentionDays *int32 `json:"retentionDays,omitempty"`

	// Domains the tenant collects events for: host names such as example.com
	// or wildcards such as *.example.com, each at most once, at least one
	// and at most 100. Required: ingest refuses every event of a tenant
	// without domains.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=100
	Domains []Domain `json:"domains,omitempty"`

	// Ingest configures the tenant's event collection service.
	// +optional
	Ingest *IngestSpec `json:"ingest,omitempty"`

	// Privacy configures what ingestion keeps of each event.
	// +optional
	Privacy *PrivacySpec `json:"privacy,omitempty"`

	// Suspend scales ingest to zero: no event is collected. Data is kept,
	// and retention keeps running, so raw events still expire when the
	// plan's window ends.
	// +optional
	Suspend bool `json:"suspend,omitempty"`

	// DeletionPolicy says what deleting this AnalyticsTenant does to its
	// stored data: Delete (default) purges it; Retain holds it for
	// RetainDays, with its roles unable to log in, then purges it. Within
	// the hold, a tenant created again with the same name can take the data
	// over, but only by naming this tenant's metadata.uid in its
	// spec.storage.adoptRetainedFrom.
	// +optional
	DeletionPolicy DeletionPolicy `json:"deletionPolicy,omitempty"`

	// RetainDays is how long, in days, deletionPolicy Retain holds the
	// tenant's data after deletion: 1 to 30 (default 30), as the policy
	// deletes account data within 30 days of closure. Only with
	// deletionPolicy Retain: Delete purges at once.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=30
	RetainDays *int32 `json:"retainDays,omitempty"`

	// Storage is about the tenant's stored data.
	// +optional
	Storage *StorageSpec `json:"storage,omitempty"`
}

// StorageSpec is about a tenant's stored data.
type StorageSpec struct {
	// AdoptRetainedFrom takes over the data of a deleted AnalyticsTenant of
	// the same name that is still held under deletionPolicy Retain: set it
	// to that deleted tenant's metadata.uid, and this tenant gets its
	// schema, raw events and aggregates instead of starting empty. Set it
	// only when this tenant is the same customer as the deleted one: a name
	// alone never gives a tenant someone else's data.
	//
	// Without it, a tenant created under the name of a held one is not
	// provisioned until the hold ends and the held data is purged: its
	// StorageReady condition is False with reason RetainedDataExists, and
	// its message says when that is and which uid to set here to adopt the
	// data instead. A uid that is not the held tenant's is refused
	// (RetainedDataMismatch), as is one when no data is held under the name
	// (RetainedDataNotFound: the hold ended and the data was purged); remove
	// the field to start empty. It matters only until the tenant's storage
	// is provisioned, so it may stay in the manifest afterwards.
	// +optional
	// +kubebuilder:validation:MaxLength=36
	// +kubebuilder:validation:XValidation:rule="self.matches('^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$')",message="adoptRetainedFrom must be the metadata.uid of the deleted AnalyticsTenant whose retained data to adopt, a lowercase UUID such as 4f1c2d3e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
	AdoptRetainedFrom string `json:"adoptRetainedFrom,omitempty"`
}

// IngestSpec configures the ingest Deployment.
// +kubebuilder:validation:XValidation:rule="!has(self.autoscaling) || !has(self.replicas) || (self.replicas >= (has(self.autoscaling.minReplicas) ? self.autoscaling.minReplicas : 1) && self.replicas <= self.autoscaling.maxReplicas)",message="with autoscaling set, replicas must lie between autoscaling.minReplicas and autoscaling.maxReplicas (or be left out)"
type IngestSpec struct {
	// Image of the ingest service. Defaults to the operator's --ingest-image.
	// +optional
	// +kubebuilder:validation:MaxLength=512
	// +kubebuilder:validation:XValidation:rule="self.matches('^[!-~]+$')",message="image must be an image reference without spaces, such as registry.example.com/ingest:1.2.3"
	Image string `json:"image,omitempty"`

	// Replicas is the number of ingest pods, 0 to 100. Defaults to 2. With
	// autoscaling the autoscaler decides; replicas, if given, must lie within
	// its bounds.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	Replicas *int32 `json:"replicas,omitempty"`

	// Autoscaling, when set, lets a HorizontalPodAutoscaler size ingest.
	// +optional
	Autoscaling *AutoscalingSpec `json:"autoscaling,omitempty"`

	// Resources are the CPU and memory the ingest container requests and is
	// limited to. Unset means modest requests (100m, 128Mi) and a 256Mi
	// memory limit; set, they replace those defaults whole. A request may
	// not be more than its limit.
	// +optional
	Resources *IngestResources `json:"resources,omitempty"`

	// RateLimit is the abuse limit ingest applies per visitor IP address.
	// +optional
	RateLimit *RateLimitSpec `json:"rateLimit,omitempty"`

	// Hostnames are the customer's own host names its ingest is also
	// reached at through the platform Gateway, for first-party collection
	// (a CNAME such as stats.example.com to the gateway), besides the
	// default <tenant>.<ingest domain>: at most 15, each at most once.
	// A name another tenant claimed first is not routed to this one
	// (Routed False, reason HostnameConflict), nor is one under the
	// operator's ingest domain (HostnameReserved).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=15
	Hostnames []Hostname `json:"hostnames,omitempty"`
}

// AutoscalingSpec bounds the ingest HorizontalPodAutoscaler.
// +kubebuilder:validation:XValidation:rule="!has(self.minReplicas) || self.minReplicas <= self.maxReplicas",message="autoscaling.minReplicas must not be greater than autoscaling.maxReplicas"
type AutoscalingSpec struct {
	// MinReplicas is the fewest ingest pods, at least 1. Defaults to 1.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MinReplicas *int32 `json:"minReplicas,omitempty"`

	// MaxReplicas is the most ingest pods, 1 to 100.
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	MaxReplicas int32 `json:"maxReplicas"`

	// TargetCPUUtilizationPercentage is the average CPU use, in percent of
	// the request, the autoscaler aims for. Defaults to 70.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	TargetCPUUtilizationPercentage *int32 `json:"targetCPUUtilizationPercentage,omitempty"`
}

// RateLimitSpec is the abuse rate limit applied at ingestion.
type RateLimitSpec struct {
	// EventsPerMinutePerIP is how many events one client may send per
	// minute before ingest drops them (and, as a burst, at once): 1 to
	// 100000. A client is an IPv4 address or an IPv6 /64, the block one
	// subscriber is given. 100000 a minute is about 1,700 a second from one
	// client, far above what the visitors behind one office's or carrier's
	// NAT send; a larger limit limits nothing.
	// +required
	// +kubebuilder:validation:XValidation:rule="self > 0",message="rateLimit.eventsPerMinutePerIP must be a positive number of events"
	// +kubebuilder:validation:XValidation:rule="self <= 100000",message="rateLimit.eventsPerMinutePerIP must be at most 100000 (about 1,700 events a second from one address): a larger limit is no abuse limit"
	EventsPerMinutePerIP int32 `json:"eventsPerMinutePerIP"`
}

// PrivacySpec is what ingestion keeps of each event.
type PrivacySpec struct {
	// QueryParamAllowlist names the only URL query parameters kept; all others
	// are stripped because they may carry personal data. Unset means the
	// default list (utm_source, utm_medium, utm_campaign, utm_term,
	// utm_content, ref, source); an empty list keeps none.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	QueryParamAllowlist []QueryParam `json:"queryParamAllowlist,omitempty"`

	// GeoPrecision is the finest location kept: Country, Region or City
	// (default).
	// +optional
	GeoPrecision GeoPrecision `json:"geoPrecision,omitempty"`

	// RespectGlobalPrivacyControl, when true, counts no visitor whose
	// browser sends Global Privacy Control: ingest serves the SDK build
	// that sends nothing (and makes no mm_aid) when
	// navigator.globalPrivacyControl is true, and drops every event whose
	// request carries Sec-GPC: 1 (answered 204), whichever script sent it.
	// Default false: the policy does not promise it; a customer whose
	// legal analysis calls for it turns it on.
	// +optional
	RespectGlobalPrivacyControl bool `json:"respectGlobalPrivacyControl,omitempty"`
}

// AnalyticsTenantStatus is what the operator last observed of the tenant.
type AnalyticsTenantStatus struct {
	// ObservedGeneration is the generation last reconciled successfully.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// LastHandledReconcileAt is the value of the
	// analytics.millimetric.ai/reconcile-requested-at annotation the last
	// full reconcile handled.
	// +optional
	LastHandledReconcileAt string `json:"lastHandledReconcileAt,omitempty"`

	// Namespace holds the tenant's workloads.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// Storage is where the tenant's events are stored.
	// +optional
	Storage *StorageStatus `json:"storage,omitempty"`

	// Ingest is the state of the ingest Deployment.
	// +optional
	Ingest *IngestStatus `json:"ingest,omitempty"`

	// Retention is the state of the retention CronJob, and the oldest raw
	// event day found in storage.
	// +optional
	Retention *RetentionStatus `json:"retention,omitempty"`

	// Conditions: Ready summarises StorageReady, IngestAvailable,
	// RetentionScheduled, RetentionCompliant and NetworkIsolated, and
	// Routed when the operator routes tenants through a Gateway.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StorageStatus is where a tenant's events are stored.
type StorageStatus struct {
	// Region in force (EU when the spec leaves it unset).
	Region Region `json:"region"`
	// RegionRef names the StorageRegion serving it.
	// +optional
	RegionRef string `json:"regionRef,omitempty"`
	// Schema is the tenant's PostgreSQL schema, and the name of its owner
	// role. A tenant provisioned by this operator has an opaque name
	// (t_<random id>) that says nothing about the customer, as every
	// tenant role can list the schemas and roles of the database; one
	// provisioned before opaque names keeps tenant_<name>. The region's
	// database records which names are whose (millimetric_operator
	// schema, which no tenant role can read), so they survive a lost status.
	// +optional
	Schema string `json:"schema,omitempty"`
	// IngestRole is the PostgreSQL role the tenant's ingest service logs in
	// as (i_<the same id>, or ingest_<name> before opaque names).
	// +optional
	IngestRole string `json:"ingestRole,omitempty"`
	// SecretName is the Secret in the tenant namespace holding the tenant's
	// own database credentials.
	// +optional
	SecretName string `json:"secretName,omitempty"`
	// AdoptedFrom is when the earlier tenant of the same name, whose
	// retained data this tenant adopted (spec.storage.adoptRetainedFrom),
	// was deleted; unset when the tenant started empty.
	// +optional
	AdoptedFrom *metav1.Time `json:"adoptedFrom,omitempty"`
	// Fingerprint identifies what was last provisioned in the database (the
	// schema version, the roles' options, the region and the credentials
	// in force), and VerifiedAt is when. While both are current a reconcile
	// makes no round trip to the database; a changed fingerprint, and every
	// few hours (jittered per tenant) a verification, provision again,
	// which repairs whatever drifted there.
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`
	// +optional
	VerifiedAt *metav1.Time `json:"verifiedAt,omitempty"`
}

// IngestStatus is the state of the ingest Deployment.
type IngestStatus struct {
	// Replicas desired.
	// +optional
	Replicas int32 `json:"replicas,omitempty"`
	// ReadyReplicas observed.
	// +optional
	ReadyReplicas int32 `json:"readyReplicas,omitempty"`
	// Service is the in-cluster address of ingest.
	// +optional
	Service string `json:"service,omitempty"`
	// URL is where websites reach the tenant's SDK and event API through
	// the platform Gateway: https://<tenant>.<ingest domain>. Unset when
	// the operator renders no routes (no --ingest-gateway); whether the
	// gateway accepted the route is the Routed condition.
	// +optional
	URL string `json:"url,omitempty"`
}

// RetentionStatus is the state of the retention CronJob, and what of the
// raw events it is meant to delete is still stored.
type RetentionStatus struct {
	// Days is the retention window in force (30 when the spec leaves it unset).
	Days int32 `json:"days"`
	// Schedule of the CronJob, spread per tenant.
	// +optional
	Schedule string `json:"schedule,omitempty"`
	// LastScheduleTime is when a retention Job was last started.
	// +optional
	LastScheduleTime *metav1.Time `json:"lastScheduleTime,omitempty"`
	// LastSuccessfulTime is when a retention Job last succeeded.
	// +optional
	LastSuccessfulTime *metav1.Time `json:"lastSuccessfulTime,omitempty"`
	// OldestRawEvent is the start (00:00 UTC) of the oldest UTC day that
	// still holds raw events in the tenant's storage, read by the operator
	// from the event partitions; omitted when no raw event is stored.
	// RetentionCompliant is False when it is more than the grace past the
	// window.
	// +optional
	OldestRawEvent *metav1.Time `json:"oldestRawEvent,omitempty"`
}

// AnalyticsTenant is one customer's analytics deployment: its ingest
// service, its storage in the region it chose, the retention that deletes
// raw events when the plan's window ends, and its network isolation.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=at,categories=millimetric
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.status.storage.region`
// +kubebuilder:printcolumn:name="Retention",type=integer,JSONPath=`.status.retention.days`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Suspended",type=boolean,JSONPath=`.spec.suspend`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="size(self.metadata.name) <= 40",message="tenant name must be at most 40 characters: it becomes namespace tenant-<name>"
// +kubebuilder:validation:XValidation:rule="self.metadata.name.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="tenant name must be a DNS label: lowercase letters, digits and '-', starting and ending with a letter or digit"
type AnalyticsTenant struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is what the customer bought.
	// +required
	Spec AnalyticsTenantSpec `json:"spec"`

	// Status is what the operator observed. Before the operator has seen
	// the object, the API server defaults it to observedGeneration -1, so
	// kstatus (Flux, cli-utils) reads a new object as InProgress rather than
	// Current (Flux's own APIs do the same).
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status AnalyticsTenantStatus `json:"status,omitempty"`
}

// AnalyticsTenantList is a list of AnalyticsTenants.
//
// +kubebuilder:object:root=true
type AnalyticsTenantList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the AnalyticsTenants.
	Items []AnalyticsTenant `json:"items"`
}
