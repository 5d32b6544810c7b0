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
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// SSLMode is how the operator and tenant workloads protect their connection
// to PostgreSQL, with libpq's meaning.
// +kubebuilder:validation:Enum=disable;require;verify-ca;verify-full
type SSLMode string

const (
	// SSLModeDisable sends everything in clear text. Only for local development.
	SSLModeDisable SSLMode = "disable"
	// SSLModeRequire encrypts but does not check the server's certificate.
	SSLModeRequire SSLMode = "require"
	// SSLModeVerifyCA encrypts and checks the certificate's issuer.
	SSLModeVerifyCA SSLMode = "verify-ca"
	// SSLModeVerifyFull encrypts and checks the issuer and host name. Default.
	SSLModeVerifyFull SSLMode = "verify-full"
)

// StorageRegionSpec says where one region's PostgreSQL is and how tenant
// workloads reach it.
// +kubebuilder:validation:XValidation:rule="self.region == oldSelf.region",message="region is immutable: tenants' data lives where it was provisioned; create a new StorageRegion for another region"
type StorageRegionSpec struct {
	// Region this database serves. At most one StorageRegion may serve each
	// region; tenants of a region claimed twice are not provisioned.
	// +required
	Region Region `json:"region"`

	// Postgres is the region's database server and the admin credentials the
	// operator provisions tenants with.
	// +required
	Postgres PostgresSpec `json:"postgres"`

	// Egress lists where tenant workloads may connect to reach this storage.
	// It becomes the storage rule of every tenant's egress NetworkPolicy.
	// Without it tenant workloads cannot reach the database at all.
	// +optional
	Egress *EgressSpec `json:"egress,omitempty"`

	// Placement keeps tenant compute in the region too, when set.
	// +optional
	Placement *PlacementSpec `json:"placement,omitempty"`
}

// PostgresSpec locates a PostgreSQL database and its admin credentials.
//
// Host and database say where every tenant's data of the region is: they
// cannot be changed unless movedFrom names the values they had, which says
// the platform team has moved the data there.
// +kubebuilder:validation:XValidation:rule="(self.host == oldSelf.host && self.database == oldSelf.database) || (has(self.movedFrom) && self.movedFrom.host == oldSelf.host && self.movedFrom.database == oldSelf.database)",message="host and database say where every tenant's data of the region is, so they cannot change: the operator moves no data. Once the data is moved (pg_dump and restore, a replica's promotion), say so: set postgres.movedFrom to the host and database it was moved from, with the new host and database"
type PostgresSpec struct {
	// Host name or IP address of the server. It cannot be changed unless
	// movedFrom says the data was moved.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z0-9_.:-]+$')",message="host must be a bare host name or IP address (letters, digits, '.', '-', '_' and ':'), without scheme, path, spaces or commas: the driver reads a comma-separated host as a list of servers"
	Host string `json:"host"`

	// Port of the server. Defaults to 5432.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=65535
	Port *int32 `json:"port,omitempty"`

	// Database that holds one schema per tenant: a name of letters, digits,
	// '_' and '-', starting with a letter or '_'. It cannot be changed
	// unless movedFrom says the data was moved.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[A-Za-z_][A-Za-z0-9_-]*$')",message="database must be a name of letters, digits, '_' and '-' that starts with a letter or '_': spaces, quotes, '=' and other characters are read differently in libpq connection strings and PostgreSQL identifiers"
	Database string `json:"database"`

	// SSLMode for every connection to this server, the operator's and the
	// tenants'. Defaults to verify-full.
	// +optional
	SSLMode SSLMode `json:"sslMode,omitempty"`

	// AdminSecretRef names the Secret with the admin credentials: keys
	// username and password, and ca.crt when the server's CA is private.
	// +required
	AdminSecretRef SecretReference `json:"adminSecretRef"`

	// MovedFrom says the region's data was moved here, by the platform team,
	// from another server or database: set it to the host and database this
	// StorageRegion named before, in the same change that sets the new
	// host and database. Without it, or naming other values, that change is
	// refused: it would repoint every tenant of the region at a database
	// that does not hold their data. The operator moves nothing: move the
	// data first (every tenant_* schema and role, and the operator's own
	// tables), then say so here. It may stay afterwards; the next move
	// names the values it replaces.
	// +optional
	MovedFrom *PostgresLocation `json:"movedFrom,omitempty"`
}

// PostgresLocation is where a region's data was: a server and a database.
type PostgresLocation struct {
	// Host the data was moved from: the StorageRegion's host before the move.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Host string `json:"host"`

	// Database the data was moved from: the StorageRegion's database
	// before the move.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Database string `json:"database"`
}

// SecretReference names a Secret in a namespace.
type SecretReference struct {
	// Namespace of the Secret: a DNS label.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?$')",message="namespace must be a namespace name: lowercase letters, digits and '-', starting and ending with a letter or digit"
	Namespace string `json:"namespace"`

	// Name of the Secret: a DNS subdomain.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:XValidation:rule="self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",message="name must be a Secret name: lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a letter or digit"
	Name string `json:"name"`
}

// EgressSpec is where tenant workloads may connect to reach the storage.
type EgressSpec struct {
	// To lists the peers (IP blocks, or pods and namespaces) of the storage.
	// Each names something: an IP block of the storage's addresses (not
	// every address, 0.0.0.0/0 or ::/0), or a pod or namespace selector;
	// at most 10 peers (the API server bounds what its rules cost).
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	// +kubebuilder:validation:XValidation:rule="self.all(p, has(p.ipBlock) || has(p.namespaceSelector) || has(p.podSelector))",message="each egress peer must name the storage: an ipBlock, a namespaceSelector or a podSelector"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.ipBlock) || (isCIDR(p.ipBlock.cidr) && cidr(p.ipBlock.cidr).prefixLength() > 0))",message="each egress ipBlock must be a CIDR of the storage's addresses such as 10.20.0.0/16: a /0 block (0.0.0.0/0, ::/0) lets every tenant workload reach any address"
	To []networkingv1.NetworkPolicyPeer `json:"to,omitempty"`

	// Ports lists the storage's ports. Empty means the postgres port. Each
	// names a port (an entry without one opens every port of its
	// protocol), and a range (endPort) spans at most 100 ports. A port
	// given as a number must be one: the operator decodes it as a 32-bit
	// integer, and a larger one would make every StorageRegion
	// undecodable, so the API server refuses it.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.port) || type(p.port) != int || (p.port >= 1 && p.port <= 65535))",message="each egress port must be a port number from 1 to 65535, or a port name"
	// +kubebuilder:validation:XValidation:rule="self.all(p, has(p.port))",message="each egress port must name the storage's port: an entry without a port opens every port of its protocol (leave ports out for the postgres port)"
	// +kubebuilder:validation:XValidation:rule="self.all(p, !has(p.endPort) || (has(p.port) && type(p.port) == int && p.endPort >= p.port && p.endPort - p.port < 100))",message="an egress port range (endPort) must start at a port number and span at most 100 ports"
	Ports []networkingv1.NetworkPolicyPort `json:"ports,omitempty"`
}

// PlacementSpec pins tenant pods to the region's nodes.
type PlacementSpec struct {
	// NodeSelector added to every tenant pod.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// Tolerations added to every tenant pod. Each names the taint key it
	// tolerates: one without a key (operator Exists) tolerates every taint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:XValidation:rule="self.all(t, has(t.key) && t.key != '')",message="each toleration must name the taint key it tolerates: a toleration without a key (operator Exists) tolerates every taint, the control plane's and NoExecute ones included"
	Tolerations []corev1.Toleration `json:"tolerations,omitempty"`
}

// StorageRegionStatus is what the operator last observed of the region.
type StorageRegionStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// Tenants is how many tenants have a schema in this region's database
	// (retained ones included), as of the last check; unset until the
	// database has been reached.
	// +optional
	Tenants *int32 `json:"tenants,omitempty"`

	// Retained is how many deleted tenants' schemas the region holds under
	// deletionPolicy Retain, as of the last check.
	// +optional
	Retained *int32 `json:"retained,omitempty"`

	// NextRetainedExpiry is when the first of those holds ends and its
	// schema and roles are purged; unset when none is held.
	// +optional
	NextRetainedExpiry *metav1.Time `json:"nextRetainedExpiry,omitempty"`

	// Conditions: Ready is True when the admin connection works and no other
	// StorageRegion claims the same region.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// StorageRegion is one region's PostgreSQL, where the tenants that chose the
// region keep their events. Written by the platform team.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=sr,categories=millimetric
// +kubebuilder:printcolumn:name="Region",type=string,JSONPath=`.spec.region`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Tenants",type=integer,JSONPath=`.status.tenants`
// +kubebuilder:printcolumn:name="Retained",type=integer,JSONPath=`.status.retained`,priority=1
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`,priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type StorageRegion struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the region's database, written by the platform team.
	// +required
	Spec StorageRegionSpec `json:"spec"`

	// Status is what the operator observed. Before the operator has seen
	// the object, the API server defaults it to observedGeneration -1, so
	// kstatus (Flux, cli-utils) reads a new object as InProgress rather than
	// Current (Flux's own APIs do the same).
	// +optional
	// +kubebuilder:default={"observedGeneration":-1}
	Status StorageRegionStatus `json:"status,omitempty"`
}

// StorageRegionList is a list of StorageRegions.
//
// +kubebuilder:object:root=true
type StorageRegionList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the StorageRegions.
	Items []StorageRegion `json:"items"`
}

// Reasons of a StorageRegion's Ready condition when the operator's region
// policy (its flags) refuses the region; nothing is read or connected to.
const (
	// ReasonSecretNotAllowed: adminSecretRef names a Secret outside the
	// namespace the operator reads admin Secrets from.
	ReasonSecretNotAllowed = "SecretNotAllowed"
	// ReasonInsecureConnection: sslMode disable or require, which check no
	// server certificate, and which the operator was not started to allow.
	ReasonInsecureConnection = "InsecureConnection"
)
