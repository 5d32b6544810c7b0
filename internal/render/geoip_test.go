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
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
)

func volumeNamed(spec corev1.PodSpec, name string) *corev1.Volume {
	for i := range spec.Volumes {
		if spec.Volumes[i].Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

func hasMount(c corev1.Container, m corev1.VolumeMount) bool {
	return slices.ContainsFunc(c.VolumeMounts, func(v corev1.VolumeMount) bool { return cmp.Diff(m, v) == "" })
}

func TestTheLocationDatabaseIsMountedAsAnImageVolume(t *testing.T) {
	tenant := tenantWith()
	tenant.Settings.GeoIP = testGeoIP(GeoIPMountImage)
	spec := IngestDeployment(tenant).Spec.Template.Spec
	v := volumeNamed(spec, "geoip")
	if v == nil || v.Image == nil {
		t.Fatalf("no image volume geoip: %+v", spec.Volumes)
	}
	if diff := cmp.Diff(corev1.ImageVolumeSource{Reference: "registry.example.com/geoip/dbip-city-lite:2026-12", PullPolicy: corev1.PullIfNotPresent}, *v.Image); diff != "" {
		t.Errorf("image volume (-want +got):\n%s", diff)
	}
	if len(spec.InitContainers) != 0 {
		t.Errorf("an image volume needs no init container: %v", spec.InitContainers)
	}
	c := spec.Containers[0]
	if !hasMount(c, corev1.VolumeMount{Name: "geoip", MountPath: GeoIPDir, ReadOnly: true}) {
		t.Errorf("ingest does not mount it read-only at %s: %v", GeoIPDir, c.VolumeMounts)
	}
	if !slices.Contains(c.Args, "--geoip-db="+GeoIPDir+"/dbip-city-lite.mmdb") {
		t.Errorf("args %v do not name the mounted database", c.Args)
	}
}

func TestTheLocationDatabaseIsCopiedByAnInitContainerWhereImageVolumesAreMissing(t *testing.T) {
	tenant := tenantWith()
	tenant.Settings.GeoIP = testGeoIP(GeoIPMountCopy)
	tenant.Settings.GeoIP.File = "/usr/share/geoip/dbip-city-lite.mmdb"
	spec := IngestDeployment(tenant).Spec.Template.Spec
	v := volumeNamed(spec, "geoip")
	if v == nil || v.EmptyDir == nil || v.EmptyDir.SizeLimit == nil {
		t.Fatalf("no bounded emptyDir geoip: %+v", spec.Volumes)
	}
	if len(spec.InitContainers) != 1 {
		t.Fatalf("%d init containers, want the copy", len(spec.InitContainers))
	}
	init := spec.InitContainers[0]
	if init.Image != tenant.Settings.GeoIP.Image {
		t.Errorf("init image %q", init.Image)
	}
	if diff := cmp.Diff([]string{"cp", "/usr/share/geoip/dbip-city-lite.mmdb", GeoIPDir + "/dbip-city-lite.mmdb"}, init.Command); diff != "" {
		t.Errorf("copy command (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]corev1.VolumeMount{{Name: "geoip", MountPath: GeoIPDir}}, init.VolumeMounts); diff != "" {
		t.Errorf("the init container writes the emptyDir (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(spec.Containers[0].Resources, init.Resources); diff != "" {
		t.Errorf("the init container's resources are not ingest's, which a quota with limits asks of it (-ingest +init):\n%s", diff)
	}
	c := spec.Containers[0]
	if !hasMount(c, corev1.VolumeMount{Name: "geoip", MountPath: GeoIPDir, ReadOnly: true}) {
		t.Errorf("ingest does not mount it read-only: %v", c.VolumeMounts)
	}
	if !slices.Contains(c.Args, "--geoip-db="+GeoIPDir+"/dbip-city-lite.mmdb") {
		t.Errorf("args %v do not name the copied database", c.Args)
	}
}

func TestWithoutADatabaseNothingIsMountedAndIngestKnowsNoLocation(t *testing.T) {
	spec := IngestDeployment(tenantWith()).Spec.Template.Spec
	if volumeNamed(spec, "geoip") != nil || len(spec.InitContainers) > 0 {
		t.Error("a GeoIP volume without a database configured")
	}
	for _, a := range spec.Containers[0].Args {
		if strings.HasPrefix(a, "--geoip-db") {
			t.Errorf("arg %q without a database", a)
		}
	}
}

func TestGeoIPCheck(t *testing.T) {
	tests := []struct {
		name    string
		g       GeoIP
		wantErr string
	}{
		{"no database is fine", GeoIP{}, ""},
		{"an image and an absolute file are fine", testGeoIP(""), ""},
		{"copy is fine", testGeoIP(GeoIPMountCopy), ""},
		{"an image without a file is refused", GeoIP{Image: "geo:1"}, "without --ingest-geoip-file"},
		{"a file without an image is refused", GeoIP{File: "/a.mmdb"}, "without --ingest-geoip-image"},
		{"a relative file is refused", GeoIP{Image: "geo:1", File: "a.mmdb"}, "absolute"},
		{"an unclean file is refused", GeoIP{Image: "geo:1", File: "/x/../a.mmdb"}, "absolute, clean"},
		{"an unknown mount is refused", GeoIP{Image: "geo:1", File: "/a.mmdb", Mount: "hostPath"}, "must be image or copy"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.g.Check()
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Errorf("err = %v, want one saying %q", err, tt.wantErr)
			}
		})
	}
}
