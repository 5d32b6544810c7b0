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

package render

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	ingestconfig "github.com/millimetric/tenant-operator/internal/ingest/config"
)

// FieldOwner is the field manager the operator applies every tenant object
// with. One owner for all of them, so a person's or a pipeline's fields on
// the same objects are left alone.
const FieldOwner = "tenant-operator"

// Labels and annotations the operator sets.
const (
	// LabelTenant names the AnalyticsTenant an object belongs to. It maps the
	// tenant namespace (which owner references cannot watch back on their
	// own, being cluster-scoped like the tenant) and every child to it.
	LabelTenant = "analytics.millimetric.ai/tenant"
	// LabelRegion is the storage region in force for the tenant (EU or US).
	LabelRegion = "analytics.millimetric.ai/region"
	// LabelComponent says which part of the tenant an object is:
	// ComponentIngest or ComponentRetention.
	LabelComponent = "app.kubernetes.io/component"
	// LabelManagedBy is the standard label naming the operator.
	LabelManagedBy = "app.kubernetes.io/managed-by"
	// LabelName is the standard label naming the application.
	LabelName = "app.kubernetes.io/name"
	// LabelPodSecurityEnforce is the Pod Security level a namespace
	// enforces; a tenant namespace's is "restricted".
	LabelPodSecurityEnforce = "pod-security.kubernetes.io/enforce"

	// ManagedBy is the value of LabelManagedBy.
	ManagedBy = "tenant-operator"
	// AppName is the value of LabelName.
	AppName = "millimetric-analytics"
	// ComponentIngest is the LabelComponent value of the ingest objects.
	ComponentIngest = "ingest"
	// ComponentRetention is the LabelComponent value of the retention objects.
	ComponentRetention = "retention"

	// AnnotationConfigHash on the ingest pod template is ConfigHash of the
	// ingest ConfigMap, so a configuration change rolls the pods.
	AnnotationConfigHash = "analytics.millimetric.ai/config-hash"
	// AnnotationCredentialsHash on the ingest and retention pod templates
	// is CredentialsHash of the Secret the pods read their credentials
	// from, so new credentials roll ingest and reach the next retention
	// Job. A hash of the whole Secret, never the password itself.
	AnnotationCredentialsHash = "analytics.millimetric.ai/credentials-hash"
)

// Names of the objects in a tenant namespace.
const (
	// StorageSecretName is the Secret with the credentials of the tenant's
	// schema owner, which only the retention CronJob reads: the owner may
	// drop partitions and change tables.
	StorageSecretName = "storage-credentials"
	// IngestSecretName is the Secret with the credentials of the tenant's
	// ingest role and the tenant's visitor key, which only the ingest
	// Deployment reads: that role may only insert events.
	IngestSecretName = "ingest-credentials"
	// IngestName names the ingest Deployment, Service, ServiceAccount,
	// HorizontalPodAutoscaler and PodDisruptionBudget, and its container.
	IngestName = "ingest"
	// IngestConfigName names the ingest ConfigMap.
	IngestConfigName = "ingest-config"
	// RetentionName names the retention CronJob, its ServiceAccount and its
	// container.
	RetentionName = "retention"
	// ResourceQuotaName names the namespace's ResourceQuota.
	ResourceQuotaName = "tenant-quota"
	// NetworkPolicyDefaultDeny names the policy that denies all traffic to
	// and from every pod the other policies do not allow.
	NetworkPolicyDefaultDeny = "default-deny"
	// NetworkPolicyIngest names the ingest pods' policy.
	NetworkPolicyIngest = IngestName
	// NetworkPolicyRetention names the retention pods' policy.
	NetworkPolicyRetention = RetentionName
)

// IngestPort is the port the ingest container serves the event API and the
// SDK on: the one the edge reaches.
const IngestPort = 8080

// IngestMetricsPort is the port the ingest container serves its probes
// and metrics on: the kubelet and the monitoring namespaces reach it, the
// edge never does.
const IngestMetricsPort = 9090

// Defaults of Settings.
const (
	// DefaultNamespacePrefix makes tenant acme's namespace tenant-acme.
	DefaultNamespacePrefix = "tenant-"
	// DefaultImageTag is the tag of both default images, released
	// together: the release this tree is, the Helm chart's appVersion. The
	// chart, config/manager (make deploy) and the Makefile's IMG and
	// INGEST_IMG default to the same images; internal/chart's
	// TestImageDefaultsAgreeEverywhere fails when one drifts.
	DefaultImageTag = "0.1.0"
	// DefaultIngestImage is the ingest image of tenants that set none: the
	// Dockerfile's ingest target.
	DefaultIngestImage = "ghcr.io/millimetric/ingest:" + DefaultImageTag
	// DefaultOperatorImage is the operator's image, which the retention
	// CronJob runs in retention mode.
	DefaultOperatorImage = "ghcr.io/millimetric/tenant-operator:" + DefaultImageTag
	// DefaultEdgeNamespace is the namespace of the edge proxies that send
	// events to ingest.
	DefaultEdgeNamespace = "millimetric-edge"
	// DefaultMonitoringNamespace is the namespace whose Prometheus may
	// scrape ingest's metrics port unless --ingest-monitoring-namespace-selector
	// says otherwise: kube-prometheus' and the Prometheus community chart's
	// usual one.
	DefaultMonitoringNamespace = "monitoring"
)

// Settings are the operator-wide inputs, from the manager's flags.
type Settings struct {
	// IngestImage is the ingest image of tenants that set none.
	IngestImage string
	// OperatorImage is the operator's own image; the retention CronJob runs
	// it as `/manager retention`.
	OperatorImage string
	// NamespacePrefix is put before the tenant's name to make its
	// namespace: "tenant-" gives tenant-<name>. Empty means
	// DefaultNamespacePrefix, so no tenant can be named onto an existing
	// namespace such as kube-system.
	NamespacePrefix string
	// EdgeNamespaceSelector selects the namespaces whose pods may send
	// events to ingest. An empty selector would select every namespace, so
	// it allows none instead.
	EdgeNamespaceSelector metav1.LabelSelector
	// MonitoringNamespaceSelector selects the namespaces whose pods (a
	// Prometheus) may scrape ingest's metrics port. Empty allows none.
	MonitoringNamespaceSelector metav1.LabelSelector
	// DNSNamespaceSelector selects the namespace of the cluster DNS.
	DNSNamespaceSelector metav1.LabelSelector
	// DNSPodSelector selects the cluster DNS pods in it.
	DNSPodSelector metav1.LabelSelector
	// IngestTrustedProxies are the CIDRs (as ParseTrustedProxies returns
	// them) of the proxies in front of ingest, the edge: ingest believes
	// X-Forwarded-For only from a peer in one of them, so a visitor cannot
	// choose the address its rate limit and location are computed from.
	// Empty: ingest uses every peer's own address.
	IngestTrustedProxies []string
	// IngestCFConnectingIP passes ingest --cf-connecting-ip: from a trusted
	// proxy, the CF-Connecting-IP header names the visitor (the edge is
	// Cloudflare's).
	IngestCFConnectingIP bool
	// IngestGateway is the platform Gateway every tenant's HTTPRoute
	// attaches to; nil renders no routes.
	IngestGateway *GatewayRef
	// IngestDomain is the DNS suffix of the tenants' default hostnames,
	// <tenant>.<IngestDomain>.
	IngestDomain string
	// GatewayNamespaceSelector selects the namespaces whose pods (the
	// Gateway's data plane) may reach ingest's public port. Empty allows
	// none.
	GatewayNamespaceSelector metav1.LabelSelector
	// GeoIP is the location database mounted into the ingest pods; its
	// zero value mounts none.
	GeoIP GeoIP
	// ImagePullSecrets name the Secrets, in each tenant namespace, that
	// the ingest and retention pods pull their images with
	// (--tenant-image-pull-secret). The operator only names them: the
	// platform puts the Secrets into the tenant namespaces (README,
	// "Images"), so no registry credential passes through the operator.
	// Empty: the pods pull with the node's credentials only.
	ImagePullSecrets []string
	// ShardLabels are the label keys an operator instance's tenant selector
	// (--tenant-selector) tests. Every child carries the tenant's values of
	// them, so an instance can select, watch and cache only its own shard's
	// children.
	ShardLabels []string
}

// ParseTrustedProxies parses the --ingest-trusted-proxies list as the
// ingest service parses its --trusted-proxies (config.ParseTrustedProxies),
// so the operator refuses at start what every ingest pod would refuse.
func ParseTrustedProxies(list string) ([]string, error) {
	prefixes, err := ingestconfig.ParseTrustedProxies(list)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range prefixes {
		out = append(out, p.String())
	}
	return out, nil
}

// DefaultSettings are the Settings of a manager started without flags:
// namespaces tenant-<name>, the released images, the edge in namespace
// millimetric-edge and the cluster DNS as kube-dns in kube-system.
func DefaultSettings() Settings {
	return Settings{
		IngestImage:     DefaultIngestImage,
		OperatorImage:   DefaultOperatorImage,
		NamespacePrefix: DefaultNamespacePrefix,
		EdgeNamespaceSelector: metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: DefaultEdgeNamespace},
		},
		MonitoringNamespaceSelector: metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: DefaultMonitoringNamespace},
		},
		DNSNamespaceSelector: metav1.LabelSelector{
			MatchLabels: map[string]string{corev1.LabelMetadataName: metav1.NamespaceSystem},
		},
		DNSPodSelector: metav1.LabelSelector{
			MatchLabels: map[string]string{"k8s-app": "kube-dns"},
		},
	}
}

// Tenant is everything the builders know about one tenant.
type Tenant struct {
	// Object is the AnalyticsTenant; its name and UID make the names and
	// owner references. It must not be nil.
	Object *v1alpha1.AnalyticsTenant
	// Spec is what is in force: Object.Spec.Effective(). Builders read this,
	// never Object.Spec.
	Spec v1alpha1.EffectiveTenantSpec
	// Region is the StorageRegion serving the tenant: placement, egress and
	// the database port. Nil means not known yet: no placement and no
	// storage egress.
	Region *v1alpha1.StorageRegion
	// Settings are the operator-wide inputs.
	Settings Settings
	// StorageCA says the tenant's credential Secrets carry the region's CA
	// certificate (key ca.crt), that is len(creds.CACert) > 0 for the
	// credentials given to StorageSecret and IngestSecret (both roles' come
	// from the same region, so they agree). Workloads then trust that CA
	// only (PGSSLROOTCERT); without it they trust the system's roots. It
	// only says whether the key is there; the certificate itself stays in
	// the Secrets.
	StorageCA bool
	// StorageCredentialsHash and IngestCredentialsHash are CredentialsHash
	// of the storage and the ingest Secret in force: the retention and the
	// ingest pod templates carry them. Empty while the Secret does not
	// exist; the annotation is then left out.
	StorageCredentialsHash string
	IngestCredentialsHash  string
}

// NamespaceName is the tenant's namespace: the prefix and the tenant's name.
func NamespaceName(t Tenant) string {
	prefix := t.Settings.NamespacePrefix
	if prefix == "" {
		prefix = DefaultNamespacePrefix
	}
	return prefix + t.Object.Name
}

// Labels are the labels on every object of the tenant: the tenant, its
// region, the standard managed-by and name labels, and the tenant's shard
// labels (Settings.ShardLabels) it has.
func Labels(t Tenant) map[string]string {
	l := map[string]string{
		LabelTenant:    t.Object.Name,
		LabelRegion:    string(t.Spec.Region),
		LabelManagedBy: ManagedBy,
		LabelName:      AppName,
	}
	for _, k := range t.Settings.ShardLabels {
		if v, ok := t.Object.Labels[k]; ok {
			l[k] = v
		}
	}
	return l
}

// componentLabels are Labels and the component's label.
func componentLabels(t Tenant, component string) map[string]string {
	l := Labels(t)
	l[LabelComponent] = component
	return l
}

// selectorLabels select a component's pods. They are a Deployment's
// immutable selector, so they hold only what never changes: the tenant and
// the component.
func selectorLabels(t Tenant, component string) map[string]string {
	return map[string]string{
		LabelTenant:    t.Object.Name,
		LabelComponent: component,
	}
}

// TenantKind is the kind of the owner reference on every child.
const TenantKind = "AnalyticsTenant"

// ownerReference makes the tenant the controller of an object, so deleting
// the tenant (once its finalizer ran) deletes the object, and so the
// operator hears of changes to it.
func ownerReference(t Tenant) metav1.OwnerReference {
	return metav1.OwnerReference{
		APIVersion:         v1alpha1.GroupVersion.String(),
		Kind:               TenantKind,
		Name:               t.Object.Name,
		UID:                t.Object.UID,
		Controller:         ptr.To(true),
		BlockOwnerDeletion: ptr.To(true),
	}
}

// objectMeta is the metadata of a namespaced object of the tenant.
func objectMeta(t Tenant, name string, labels map[string]string) metav1.ObjectMeta {
	return metav1.ObjectMeta{
		Name:            name,
		Namespace:       NamespaceName(t),
		Labels:          labels,
		OwnerReferences: []metav1.OwnerReference{ownerReference(t)},
	}
}

// Namespace is the tenant's namespace, labelled with the tenant and region
// and enforcing Pod Security "restricted" at its latest version (and
// auditing and warning at it, so a violation is also visible in audit logs
// and to kubectl users).
func Namespace(t Tenant) *corev1.Namespace {
	labels := Labels(t)
	for _, mode := range []string{"enforce", "audit", "warn"} {
		labels["pod-security.kubernetes.io/"+mode] = "restricted"
		labels["pod-security.kubernetes.io/"+mode+"-version"] = "latest"
	}
	return &corev1.Namespace{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{
			Name:            NamespaceName(t),
			Labels:          labels,
			OwnerReferences: []metav1.OwnerReference{ownerReference(t)},
		},
	}
}
