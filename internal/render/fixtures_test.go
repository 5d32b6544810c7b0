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
	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// testPassword, the owner's, and testIngestPassword are distinctive enough
// that finding either anywhere but in its own Secret is a leak.
const (
	testPassword       = "s3cret-P4ssw0rd-never-elsewhere"
	testIngestPassword = "1ngest-P4ssw0rd-only-in-its-secret"
)

// testVisitorKey is a tenant's visitor key; like the passwords, it must
// appear only in the ingest Secret.
var testVisitorKey = []byte("v1sitor-key-only-in-its-secret!!")

// testCA is a PEM-looking CA bundle; the builders never parse it.
const testCA = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n"

// tenantWith is tenant acme in the EU with a 90-day plan, changed by the
// given functions, served by testRegion with the default settings.
func tenantWith(changes ...func(*v1alpha1.AnalyticsTenant)) Tenant {
	obj := &v1alpha1.AnalyticsTenant{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "AnalyticsTenant"},
		ObjectMeta: metav1.ObjectMeta{
			Name:       "acme",
			UID:        "5d8f7c1e-3b1a-4f0e-9c62-0a4b7e2d9f11",
			Generation: 3,
		},
		Spec: v1alpha1.AnalyticsTenantSpec{
			RetentionDays: ptr.To[int32](90),
			Domains:       []v1alpha1.Domain{"acme.com", "*.acme.com"},
		},
	}
	for _, change := range changes {
		change(obj)
	}
	return Tenant{Object: obj, Spec: obj.Spec.Effective(), Region: testRegion(), Settings: DefaultSettings()}
}

func suspended(a *v1alpha1.AnalyticsTenant) { a.Spec.Suspend = true }

func autoscaling(minReplicas, maxReplicas int32) func(*v1alpha1.AnalyticsTenant) {
	return func(a *v1alpha1.AnalyticsTenant) {
		ingest(a).Autoscaling = &v1alpha1.AutoscalingSpec{MinReplicas: ptr.To(minReplicas), MaxReplicas: maxReplicas}
	}
}

func replicas(n int32) func(*v1alpha1.AnalyticsTenant) {
	return func(a *v1alpha1.AnalyticsTenant) { ingest(a).Replicas = ptr.To(n) }
}

func ingest(a *v1alpha1.AnalyticsTenant) *v1alpha1.IngestSpec {
	if a.Spec.Ingest == nil {
		a.Spec.Ingest = &v1alpha1.IngestSpec{}
	}
	return a.Spec.Ingest
}

// testRegion is the EU region with egress to its database network and
// placement on its nodes.
func testRegion() *v1alpha1.StorageRegion {
	return &v1alpha1.StorageRegion{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "StorageRegion"},
		ObjectMeta: metav1.ObjectMeta{Name: "eu", UID: "0c3e2f4a-6d1b-4e9a-8f27-5b9c1d3e7a20"},
		Spec: v1alpha1.StorageRegionSpec{
			Region: v1alpha1.RegionEU,
			Postgres: v1alpha1.PostgresSpec{
				Host:           "pg.eu-west-1.internal",
				Port:           ptr.To[int32](6432),
				Database:       "events",
				AdminSecretRef: v1alpha1.SecretReference{Namespace: "millimetric-system", Name: "pg-eu-admin"},
			},
			Egress: &v1alpha1.EgressSpec{
				To: []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.20.0.0/16"}}},
			},
			Placement: &v1alpha1.PlacementSpec{
				NodeSelector: map[string]string{corev1.LabelTopologyRegion: "eu-west-1"},
				Tolerations: []corev1.Toleration{{
					Key: "millimetric.ai/region", Operator: corev1.TolerationOpEqual, Value: "eu", Effect: corev1.TaintEffectNoSchedule,
				}},
			},
		},
	}
}

func testCredentials() storage.Credentials {
	return storage.Credentials{
		Host:     "pg.eu-west-1.internal",
		Port:     6432,
		Database: "events",
		SSLMode:  "verify-full",
		Schema:   "tenant_acme",
		Username: "tenant_acme",
		Password: testPassword,
		CACert:   []byte(testCA),
	}
}

// testIngestCredentials are the ingest role's credentials that go with
// testCredentials: same place and schema, another user and password.
func testIngestCredentials() storage.Credentials {
	c := testCredentials()
	c.Username, c.Password = "ingest_acme", testIngestPassword
	return c
}

// testProvisioned is what Provision would return for tenant acme.
func testProvisioned() storage.Provisioned {
	return storage.Provisioned{Owner: testCredentials(), Ingest: testIngestCredentials()}
}

// tenantVariants are tenants in every shape a builder branches on.
func tenantVariants() map[string]Tenant {
	withCA := tenantWith()
	withCA.StorageCA = true
	bare := tenantWith()
	bare.Region = &v1alpha1.StorageRegion{Spec: v1alpha1.StorageRegionSpec{Region: v1alpha1.RegionEU,
		Postgres: v1alpha1.PostgresSpec{Host: "pg", Database: "events"}}}
	unknownRegion := tenantWith()
	unknownRegion.Region = nil
	ports := tenantWith()
	ports.Region.Spec.Egress.Ports = []networkingv1.NetworkPolicyPort{{Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To(intstr.FromInt32(5433))}}
	proxies := tenantWith()
	proxies.Settings.IngestTrustedProxies = []string{"10.0.0.0/8", "fd00::/8"}
	geoImage := tenantWith()
	geoImage.Settings.GeoIP = testGeoIP(GeoIPMountImage)
	geoCopy := tenantWith()
	geoCopy.Settings.GeoIP = testGeoIP(GeoIPMountCopy)
	return map[string]Tenant{
		"a tenant with a GeoIP image volume":    geoImage,
		"a tenant with a GeoIP database copied": geoCopy,
		"a tenant with only defaults":           tenantWith(func(a *v1alpha1.AnalyticsTenant) { a.Spec = v1alpha1.AnalyticsTenantSpec{} }),
		"a tenant behind trusted proxies":       proxies,
		"a tenant on a 90-day plan":             tenantWith(),
		"a suspended tenant":                    tenantWith(suspended),
		"an autoscaled tenant":                  tenantWith(autoscaling(2, 20)),
		"a suspended autoscaled tenant":         tenantWith(autoscaling(2, 20), suspended),
		"a tenant with one replica":             tenantWith(replicas(1)),
		"a tenant with its own image and resources": tenantWith(func(a *v1alpha1.AnalyticsTenant) {
			ingest(a).Image = "registry.example.com/ingest:2.0.0"
			ingest(a).Resources = &v1alpha1.IngestResources{
				Requests: &v1alpha1.ComputeResources{CPU: "250m", Memory: "256Mi"},
				Limits:   &v1alpha1.ComputeResources{CPU: "1", Memory: "512Mi"},
			}
		}),
		"a tenant whose region has a private CA":           withCA,
		"a tenant whose region has no egress or placement": bare,
		"a tenant whose region is not known yet":           unknownRegion,
		"a tenant whose region lists its storage ports":    ports,
	}
}

// allObjects is every object the builders make for t, both credentials
// Secrets included.
func allObjects(t Tenant, creds storage.Provisioned) []client.Object {
	objs := []client.Object{
		Namespace(t),
		IngestServiceAccount(t),
		RetentionServiceAccount(t),
		IngestConfigMap(t),
		IngestDeployment(t),
		IngestService(t),
		StorageSecret(t, creds.Owner),
		IngestSecret(t, creds.Ingest, testVisitorKey),
		RetentionCronJob(t),
		ResourceQuota(t),
	}
	if hpa := IngestHPA(t); hpa != nil {
		objs = append(objs, hpa)
	}
	if pdb := IngestPDB(t); pdb != nil {
		objs = append(objs, pdb)
	}
	for _, np := range NetworkPolicies(t) {
		objs = append(objs, np)
	}
	return objs
}

// testGeoIP is a location database in an image, mounted as mount says.
func testGeoIP(mount GeoIPMount) GeoIP {
	return GeoIP{Image: "registry.example.com/geoip/dbip-city-lite:2026-12", File: "/dbip-city-lite.mmdb", Mount: mount}
}
