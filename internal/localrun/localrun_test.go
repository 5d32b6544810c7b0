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

package localrun

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
)

func TestMountPathsAreRewrittenOnceAndOnlyAsWholePaths(t *testing.T) {
	mounts := map[string]string{
		"/etc/millimetric":            "/tmp/run/config",
		"/etc/millimetric-storage-ca": "/tmp/run/storage-ca",
		"/tmp":                        "/tmp/run/tmp",
	}
	paths := []string{"/etc/millimetric-storage-ca", "/etc/millimetric", "/tmp"}
	for in, want := range map[string]string{
		"--config=/etc/millimetric/ingest.json": "--config=/tmp/run/config/ingest.json",
		"/etc/millimetric-storage-ca/ca.crt":    "/tmp/run/storage-ca/ca.crt",
		"/tmp":                                  "/tmp/run/tmp",
		"--dirs=/tmp/a,/etc/millimetric":        "--dirs=/tmp/run/tmp/a,/tmp/run/config",
		"/etc/millimetricx/file":                "/etc/millimetricx/file",
		"/var/tmp/file":                         "/var/tmp/file",
		"no path here":                          "no path here",
	} {
		if got := rewritePaths(in, paths, mounts); got != want {
			t.Errorf("rewritePaths(%q) = %q, want %q", in, got, want)
		}
	}
}

// The Service is read through a fake client: what is tested is what
// ServiceAddress makes of it, not the API server.
func TestServiceAddressIsTheClusterIPAndPortOnlyOnLoopback(t *testing.T) {
	service := func(name, clusterIP string) *corev1.Service {
		return &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Namespace: "tenant-acme", Name: name},
			Spec:       corev1.ServiceSpec{ClusterIP: clusterIP, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
		}
	}
	c := fake.NewClientBuilder().WithObjects(
		service("loopback", "127.42.0.17"), service("routable", "10.0.0.17"), service("headless", corev1.ClusterIPNone),
	).Build()
	ctx := context.Background()
	if got, err := ServiceAddress(ctx, c, "tenant-acme", "loopback", 80); err != nil || got != "127.42.0.17:80" {
		t.Errorf("ServiceAddress(loopback) = %q, %v; want 127.42.0.17:80", got, err)
	}
	for _, tc := range []struct {
		name string
		port int32
		want string
	}{
		{"routable", 80, "not a loopback address"},
		{"headless", 80, "has no ClusterIP"},
		{"loopback", 8080, "has no port 8080"},
		{"missing", 80, "not found"},
	} {
		if _, err := ServiceAddress(ctx, c, "tenant-acme", tc.name, tc.port); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ServiceAddress(%s, %d) = %v; want an error saying %q", tc.name, tc.port, err, tc.want)
		}
	}
}
