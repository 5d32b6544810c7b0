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
	"k8s.io/utils/ptr"

	ingestconfig "github.com/millimetric/tenant-operator/internal/ingest/config"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// PodUID is the user and group tenant containers run as: distroless's
// "nonroot", which owns nothing in the image.
const PodUID int64 = 65532

// Keys of the credentials Secrets (StorageSecret, IngestSecret).
const (
	SecretKeyHost     = "host"
	SecretKeyPort     = "port"
	SecretKeyDatabase = "database"
	SecretKeySSLMode  = "sslmode"
	SecretKeySchema   = "schema"
	SecretKeyUsername = "username"
	SecretKeyPassword = "password"
	// SecretKeyCACert holds the region's CA bundle (PEM), only when the
	// region has a private CA.
	SecretKeyCACert = "ca.crt"
	// SecretKeyVisitorKey holds the tenant's visitor key, hex-encoded, in
	// the ingest Secret only: the HMAC key under which ingest stores the
	// browsers' mm_aid (event.VisitorID). It never reaches the database.
	SecretKeyVisitorKey = "visitor-key"
)

// EnvVisitorKey is the ingest container's variable with the visitor key,
// from SecretKeyVisitorKey of the ingest Secret.
const EnvVisitorKey = ingestconfig.EnvVisitorKey

// Environment variables tenant containers connect to storage with, each
// from its own credentials Secret. They are libpq's names, which the
// retention subcommand and the ingest service read through
// storage.CredentialsFromEnv: one list for both sides.
const (
	EnvPGHost        = storage.EnvHost
	EnvPGPort        = storage.EnvPort
	EnvPGDatabase    = storage.EnvDatabase
	EnvPGUser        = storage.EnvUser
	EnvPGPassword    = storage.EnvPassword
	EnvPGSSLMode     = storage.EnvSSLMode
	EnvPGSchema      = storage.EnvSchema
	EnvPGSSLRootCert = storage.EnvSSLRootCert
)

// StorageCADir is where tenant containers find the region's CA certificate,
// file SecretKeyCACert, when their credentials Secret has one. It is outside
// /etc/millimetric, where ingest's ConfigMap is mounted read-only, because a
// mount point cannot be made inside a read-only mount.
const StorageCADir = "/etc/millimetric-storage-ca"

const storageCAVolumeName = "storage-ca"

// storageEnv connects a container to the tenant's storage with the
// credentials in Secret secretName: every value is a reference to that
// Secret, so no credential is ever in a pod spec, and a container can only
// ever read the one role's credentials it is given. PGSSLROOTCERT is set
// only when the Secret has a CA certificate: the retention subcommand fails
// when the file it names is missing, and the builders cannot see the
// Secret, so the reconciler says (Tenant.StorageCA).
func storageEnv(t Tenant, secretName string) []corev1.EnvVar {
	fromSecret := func(name, key string) corev1.EnvVar {
		return corev1.EnvVar{
			Name: name,
			ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
				LocalObjectReference: corev1.LocalObjectReference{Name: secretName},
				Key:                  key,
			}},
		}
	}
	env := []corev1.EnvVar{
		fromSecret(EnvPGHost, SecretKeyHost),
		fromSecret(EnvPGPort, SecretKeyPort),
		fromSecret(EnvPGDatabase, SecretKeyDatabase),
		fromSecret(EnvPGUser, SecretKeyUsername),
		fromSecret(EnvPGPassword, SecretKeyPassword),
		fromSecret(EnvPGSSLMode, SecretKeySSLMode),
		fromSecret(EnvPGSchema, SecretKeySchema),
	}
	if t.StorageCA {
		env = append(env, corev1.EnvVar{Name: EnvPGSSLRootCert, Value: StorageCADir + "/" + SecretKeyCACert})
	}
	return env
}

// storageCAVolume projects only the ca.crt of Secret secretName, never its
// password. It is optional, so it mounts an empty directory when the region
// has no private CA, and, not using subPath, it follows the Secret when the
// CA is rotated.
func storageCAVolume(secretName string) corev1.Volume {
	return corev1.Volume{
		Name: storageCAVolumeName,
		VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  secretName,
			Items:       []corev1.KeyToPath{{Key: SecretKeyCACert, Path: SecretKeyCACert}},
			DefaultMode: ptr.To[int32](0o444),
			Optional:    ptr.To(true),
		}},
	}
}

func storageCAVolumeMount() corev1.VolumeMount {
	return corev1.VolumeMount{Name: storageCAVolumeName, MountPath: StorageCADir, ReadOnly: true}
}

// imagePullSecrets are the tenant pods' references to
// Settings.ImagePullSecrets, in the order given; nil when there are none,
// so a pod spec without them is the one rendered before they existed.
func imagePullSecrets(t Tenant) []corev1.LocalObjectReference {
	var refs []corev1.LocalObjectReference
	for _, name := range t.Settings.ImagePullSecrets {
		refs = append(refs, corev1.LocalObjectReference{Name: name})
	}
	return refs
}

// podSecurityContext is what Pod Security "restricted" asks of a pod, with a
// fixed non-root user so volumes are readable by it.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(PodUID),
		RunAsGroup:     ptr.To(PodUID),
		FSGroup:        ptr.To(PodUID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// containerSecurityContext is what Pod Security "restricted" asks of a
// container, and a read-only root file system.
func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
	}
}

// placement keeps tenant pods on the region's nodes when the region says
// where they are.
func placement(t Tenant) (map[string]string, []corev1.Toleration) {
	if t.Region == nil || t.Region.Spec.Placement == nil {
		return nil, nil
	}
	p := t.Region.Spec.Placement.DeepCopy()
	if len(p.NodeSelector) == 0 {
		p.NodeSelector = nil
	}
	if len(p.Tolerations) == 0 {
		p.Tolerations = nil
	}
	return p.NodeSelector, p.Tolerations
}
