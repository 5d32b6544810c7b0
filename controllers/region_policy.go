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
	"fmt"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// RegionPolicy is what the operator lets a StorageRegion ask of it. Whoever
// may write a StorageRegion chooses a Secret for the operator to read and a
// host for it to send that Secret's password to; without a policy that is
// any Secret in the cluster, to any host, even in clear text.
type RegionPolicy struct {
	// AllowedSecretNamespace is the only namespace admin Secrets are read
	// from: the operator's own, where only the platform team writes.
	AllowedSecretNamespace string
	// AllowInsecure accepts the sslModes that do not check the server's
	// certificate: disable, which sends everything in clear text, and
	// require, which encrypts to whichever server answers. For local
	// development only.
	AllowInsecure bool
}

// regionRefusal is why a policy refuses a StorageRegion: a reason for its
// Ready condition and a message a person can act on.
type regionRefusal struct {
	reason, msg string
}

func (e *regionRefusal) Error() string { return e.msg }

// admit refuses a StorageRegion the policy does not allow, before any
// Secret is read or any connection is made; nil means allowed.
func (p RegionPolicy) admit(region *analyticsv1alpha1.StorageRegion) *regionRefusal {
	pg := region.Spec.Postgres.Effective()
	if ns := pg.AdminSecretRef.Namespace; ns != p.AllowedSecretNamespace {
		return &regionRefusal{analyticsv1alpha1.ReasonSecretNotAllowed, fmt.Sprintf(
			"adminSecretRef names a Secret in namespace %q, but the operator reads admin Secrets only from %q (--allowed-secret-namespace): move Secret %s there",
			ns, p.AllowedSecretNamespace, pg.AdminSecretRef.Name)}
	}
	if p.AllowInsecure {
		return nil
	}
	switch pg.SSLMode {
	case analyticsv1alpha1.SSLModeDisable:
		return &regionRefusal{analyticsv1alpha1.ReasonInsecureConnection,
			"sslMode disable would send every tenant's events, and to a server that asks for it the administrator's password, in clear text; use verify-full (or verify-ca) with the server's CA in the admin Secret's ca.crt (the operator accepts disable and require only with --allow-insecure-storage, for local development)"}
	case analyticsv1alpha1.SSLModeVerifyCA, analyticsv1alpha1.SSLModeVerifyFull:
		return nil
	default:
		// require, and any mode that checks no certificate.
		return &regionRefusal{analyticsv1alpha1.ReasonInsecureConnection, fmt.Sprintf(
			"sslMode %s encrypts but checks no certificate, so whoever can intercept the connection can pose as the database and receive every tenant's events; use verify-full (or verify-ca) with the server's CA in the admin Secret's ca.crt (the operator accepts disable and require only with --allow-insecure-storage, for local development)",
			pg.SSLMode)}
	}
}
