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
	"fmt"
	"path"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/utils/ptr"
)

// GeoIPMount is how the location database reaches the ingest pods.
type GeoIPMount string

const (
	// GeoIPMountImage mounts the database's OCI image as a read-only
	// image volume (a pod's volumes[].image, Kubernetes 1.33 and later
	// with the ImageVolume feature on): nothing is copied, and the file
	// is shared by the node's pods.
	GeoIPMountImage GeoIPMount = "image"
	// GeoIPMountCopy runs the database's image as an init container that
	// copies the file, with cp, into an emptyDir the ingest container
	// reads: for clusters without image volumes. The image must have cp.
	GeoIPMountCopy GeoIPMount = "copy"
)

// GeoIPDir is where the ingest container finds the location database.
const GeoIPDir = "/var/lib/millimetric/geoip"

// geoIPVolumeName names the database's volume and its init container.
const geoIPVolumeName = "geoip"

// geoIPCopyLimit bounds the emptyDir the copy goes into: DB-IP's and
// MaxMind's city databases are 60 to 130 MB.
var geoIPCopyLimit = resource.MustParse("512Mi")

// GeoIP is the MaxMind-format location database (a City database: GeoLite2
// City, DB-IP Lite City, or a commercial one) mounted into every ingest pod.
// The zero value mounts none, and ingest then knows no location.
type GeoIP struct {
	// Image is the OCI image holding the database file.
	Image string
	// File is the database's path inside Image, e.g. /dbip-city-lite.mmdb.
	File string
	// Mount is how the file reaches the pods; empty means GeoIPMountImage.
	Mount GeoIPMount
}

// Enabled says a database is configured.
func (g GeoIP) Enabled() bool { return g.Image != "" }

// Check refuses a database configuration the pods could not use: an image
// without a file, a file that is not an absolute path to a file, or an
// unknown mount.
func (g GeoIP) Check() error {
	switch {
	case g.Image == "" && g.File == "":
		return nil
	case g.Image == "":
		return fmt.Errorf("--ingest-geoip-file %q is set without --ingest-geoip-image", g.File)
	case g.File == "":
		return fmt.Errorf("--ingest-geoip-image %q is set without --ingest-geoip-file, the database's path inside it", g.Image)
	case !path.IsAbs(g.File) || path.Clean(g.File) != g.File || g.File == "/":
		return fmt.Errorf("--ingest-geoip-file %q must be the absolute, clean path of the database file inside the image, such as /dbip-city-lite.mmdb", g.File)
	case strings.ContainsAny(g.Image, " \t\n"):
		return fmt.Errorf("--ingest-geoip-image %q is not an image reference", g.Image)
	}
	switch g.Mount {
	case "", GeoIPMountImage, GeoIPMountCopy:
		return nil
	}
	return fmt.Errorf("--ingest-geoip-mount %q: must be %s or %s", g.Mount, GeoIPMountImage, GeoIPMountCopy)
}

// GeoIPPath is the database's path in the ingest container ("" without
// one): under GeoIPDir, the whole image's file system when mounted as an
// image volume, the file alone when copied.
func GeoIPPath(t Tenant) string {
	g := t.Settings.GeoIP
	switch {
	case !g.Enabled():
		return ""
	case g.Mount == GeoIPMountCopy:
		return GeoIPDir + "/" + path.Base(g.File)
	default:
		return GeoIPDir + g.File
	}
}

// geoIPVolume is the database's volume, the ingest container's mount of it,
// and (copy mount) the init container that fills it; nothing without a
// database.
func geoIPVolume(t Tenant) ([]corev1.Volume, []corev1.VolumeMount, []corev1.Container) {
	g := t.Settings.GeoIP
	if !g.Enabled() {
		return nil, nil, nil
	}
	mount := corev1.VolumeMount{Name: geoIPVolumeName, MountPath: GeoIPDir, ReadOnly: true}
	if g.Mount != GeoIPMountCopy {
		return []corev1.Volume{{Name: geoIPVolumeName, VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{
			Reference: g.Image, PullPolicy: corev1.PullIfNotPresent,
		}}}}, []corev1.VolumeMount{mount}, nil
	}
	copier := corev1.Container{
		Name:            geoIPVolumeName,
		Image:           g.Image,
		ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"cp", g.File, GeoIPPath(t)},
		// The same as ingest's: a quota with limits asks them of every
		// container, and an init container's do not add to the pod's.
		Resources:       *t.Spec.Resources.DeepCopy(),
		SecurityContext: containerSecurityContext(),
		VolumeMounts:    []corev1.VolumeMount{{Name: geoIPVolumeName, MountPath: GeoIPDir}},
	}
	return []corev1.Volume{{Name: geoIPVolumeName, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
		SizeLimit: ptr.To(geoIPCopyLimit),
	}}}}, []corev1.VolumeMount{mount}, []corev1.Container{copier}
}
