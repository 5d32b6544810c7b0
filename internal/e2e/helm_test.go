//go:build e2e

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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// crdNames are the operator's CustomResourceDefinitions.
var crdNames = []string{"analyticstenants.analytics.millimetric.ai", "storageregions.analytics.millimetric.ai"}

var crdGVK = schema.GroupVersionKind{Group: "apiextensions.k8s.io", Version: "v1", Kind: "CustomResourceDefinition"}

// runHelm runs the pinned helm against the local cluster, as the admin,
// with its caches and configuration in a directory of the test's.
func runHelm(t testing.TB, args ...string) string {
	t.Helper()
	home := t.TempDir()
	cmd := exec.Command(helm, args...)
	cmd.Env = append(os.Environ(),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"), "HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"), "KUBECACHEDIR="+filepath.Join(home, "kube-cache"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String()
}

// chartAppVersion is the chart's appVersion: the tag of both its images.
func chartAppVersion(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var chart struct {
		AppVersion string `json:"appVersion"`
	}
	if err := yaml.Unmarshal(data, &chart); err != nil || chart.AppVersion == "" {
		t.Fatalf("Chart.yaml: no appVersion (%v)", err)
	}
	return chart.AppVersion
}

// adoptCRDs lets a release take over the CRDs the suite installed, as the
// chart's README says to when moving from config/default: helm refuses to
// install over objects it does not own. After the test the release's
// labels and annotations are taken off again, and CRDs found missing (the
// keep policy failed) are put back from config/crd, so that the suite's
// other tests still have them.
func adoptCRDs(t testing.TB, release, namespace string) {
	t.Helper()
	ctx := context.Background()
	patch := func(name string, labels, annotations map[string]any) error {
		body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels, "annotations": annotations}})
		if err != nil {
			return err
		}
		crd := &unstructured.Unstructured{}
		crd.SetGroupVersionKind(crdGVK)
		crd.SetName(name)
		return k8s.Patch(ctx, crd, client.RawPatch(types.MergePatchType, body))
	}
	for _, name := range crdNames {
		if err := patch(name, map[string]any{"app.kubernetes.io/managed-by": "Helm"},
			map[string]any{"meta.helm.sh/release-name": release, "meta.helm.sh/release-namespace": namespace}); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		for _, name := range crdNames {
			crd := &unstructured.Unstructured{}
			crd.SetGroupVersionKind(crdGVK)
			err := k8s.Get(ctx, client.ObjectKey{Name: name}, crd)
			if apierrors.IsNotFound(err) {
				t.Errorf("CRD %s is gone: putting it back from config/crd", name)
				restoreCRD(t, name)
				continue
			}
			if err != nil {
				t.Error(err)
				continue
			}
			// Whatever the release put on them: the chart's labels, helm's
			// ownership and the keep policy. config/crd has none of them.
			labels, annotations := map[string]any{}, map[string]any{}
			for k := range crd.GetLabels() {
				if strings.HasPrefix(k, "app.kubernetes.io/") || strings.HasPrefix(k, "helm.sh/") {
					labels[k] = nil
				}
			}
			for k := range crd.GetAnnotations() {
				if strings.HasPrefix(k, "meta.helm.sh/") || strings.HasPrefix(k, "helm.sh/") {
					annotations[k] = nil
				}
			}
			if err := patch(name, labels, annotations); err != nil {
				t.Error(err)
			}
		}
	})
}

// restoreCRD creates a CRD from config/crd/bases and waits until it serves.
func restoreCRD(t testing.TB, name string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot, "config", "crd", "bases", "analytics.millimetric.ai_"+strings.SplitN(name, ".", 2)[0]+".yaml"))
	if err != nil {
		t.Error(err)
		return
	}
	crd := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &crd.Object); err != nil {
		t.Error(err)
		return
	}
	if err := k8s.Create(context.Background(), crd); err != nil {
		t.Error(err)
		return
	}
	NewWithT(t).Eventually(func() bool {
		return k8s.Get(context.Background(), client.ObjectKeyFromObject(crd), crd) == nil && crdEstablished(crd)
	}, wait, tick).Should(BeTrue(), "CRD %s is not Established", name)
}

func crdEstablished(crd *unstructured.Unstructured) bool {
	conditions, _, _ := unstructured.NestedSlice(crd.Object, "status", "conditions")
	for _, c := range conditions {
		if m, ok := c.(map[string]any); ok && m["type"] == "Established" && m["status"] == "True" {
			return true
		}
	}
	return false
}

// canI asks the API server whether user may do verb on resource (group
// "core" is the core group) in namespace ("" for cluster-wide).
func canI(t testing.TB, user, verb, group, resource, subresource, namespace string) bool {
	t.Helper()
	if group == "core" {
		group = ""
	}
	review := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User: user,
		// An authenticated ServiceAccount's groups, as for a pod's token.
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + strings.Split(user, ":")[2], "system:authenticated"},
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Namespace: namespace, Verb: verb, Group: group, Resource: resource, Subresource: subresource,
		},
	}}
	if err := k8s.Create(context.Background(), review); err != nil {
		t.Fatal(err)
	}
	return review.Status.Allowed
}

// TestTheChartInstallsTheManagerWithItsRBACAndUninstallLeavesOnlyTheCRDs
// installs the chart with helm into a namespace of its own, as a platform
// team would (Pod Security restricted enforced), and uninstalls it. Its
// manager pods land on kwok's fake nodes, which run nothing, and its
// leader election id and tenant selector keep it apart from the suite's
// operators even if they did.
func TestTheChartInstallsTheManagerWithItsRBACAndUninstallLeavesOnlyTheCRDs(t *testing.T) {
	ctx := context.Background()
	g := NewWithT(t)
	const release, ns = "e2e-helm", "e2e-helm"
	const fullname = release + "-tenant-operator"
	version := chartAppVersion(t)
	operatorImage := "ghcr.io/millimetric/tenant-operator:" + version
	ingestImage := "ghcr.io/millimetric/ingest:" + version

	regionsBefore := releaseNamespace(t, release, ns)
	// --wait: the Deployment's two replicas are admitted under restricted,
	// scheduled and (kwok says) available.
	runHelm(t, "install", release, chartDir, "--namespace", ns, "--wait", "--timeout", "2m",
		"--set", "leaderElection.id=e2e-helm-chart",
		"--set", "tenants.selector=e2e.millimetric.ai/shard=helm-chart")
	manifest, err := decodeObjects([]byte(runHelm(t, "get", "manifest", release, "--namespace", ns)))
	g.Expect(err).NotTo(HaveOccurred())
	var kinds []string
	for _, o := range manifest {
		kinds = append(kinds, o.GetKind())
	}
	g.Expect(kinds).To(ContainElements("CustomResourceDefinition", "Deployment", "PodDisruptionBudget", "Service",
		"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
		"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"))

	t.Run("the manager Deployment runs the chart's image with leader election and both images defaulting to the chart's appVersion", func(t *testing.T) {
		g := NewWithT(t)
		d := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname}, d)).To(Succeed())
		g.Expect(d.Status.AvailableReplicas).To(BeEquivalentTo(2))
		g.Expect(d.Spec.Template.Spec.ServiceAccountName).To(Equal(fullname))
		c := d.Spec.Template.Spec.Containers[0]
		g.Expect(c.Name).To(Equal("manager"))
		g.Expect(c.Image).To(Equal(operatorImage))
		g.Expect(c.Args).To(ContainElements(
			"--leader-elect",
			"--leader-election-id=e2e-helm-chart",
			"--tenant-selector=e2e.millimetric.ai/shard=helm-chart",
			// The retention CronJobs run the image the manager runs.
			"--operator-image="+operatorImage,
			"--ingest-image="+ingestImage,
			"--allowed-secret-namespace="+ns,
			"--health-probe-bind-address=:8081",
			"--metrics-bind-address=:8443",
		))
		g.Expect(c.Env).To(ContainElement(HaveField("Name", "POD_NAMESPACE")))
	})

	t.Run("its ServiceAccount holds exactly config/rbac's rules, and the API server grants what they say", func(t *testing.T) {
		g := NewWithT(t)
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname}, &corev1.ServiceAccount{})).To(Succeed())
		data, err := os.ReadFile(filepath.Join(repoRoot, "config", "rbac", "role.yaml"))
		g.Expect(err).NotTo(HaveOccurred())
		var want rbacv1.ClusterRole
		g.Expect(yaml.Unmarshal(data, &want)).To(Succeed())
		role := &rbacv1.ClusterRole{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: fullname + "-manager"}, role)).To(Succeed())
		g.Expect(role.Rules).To(Equal(want.Rules))
		subject := rbacv1.Subject{Kind: "ServiceAccount", Name: fullname, Namespace: ns}
		for _, b := range []string{fullname + "-manager", fullname + "-metrics-auth"} {
			crb := &rbacv1.ClusterRoleBinding{}
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: b}, crb)).To(Succeed())
			g.Expect(crb.RoleRef.Name).To(Equal(b))
			g.Expect(crb.Subjects).To(ConsistOf(subject))
		}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Name: fullname + "-metrics-reader"}, &rbacv1.ClusterRole{})).To(Succeed())
		rb := &rbacv1.RoleBinding{}
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname + "-leader-election"}, rb)).To(Succeed())
		g.Expect(rb.Subjects).To(ConsistOf(subject))
		g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: fullname + "-leader-election"}, &rbacv1.Role{})).To(Succeed())

		user := "system:serviceaccount:" + ns + ":" + fullname
		for _, tt := range []struct {
			verb, group, resource, subresource, namespace string
			allowed                                       bool
		}{
			{"create", "batch", "cronjobs", "", "tenant-anyone", true},
			{"patch", "analytics.millimetric.ai", "analyticstenants", "status", "", true},
			{"update", "coordination.k8s.io", "leases", "", ns, true},
			{"update", "coordination.k8s.io", "leases", "", "kube-system", false},
			{"delete", "coordination.k8s.io", "leases", "", ns, false},
			// Only what the operator removes may be deleted, and nothing updated.
			{"delete", "autoscaling", "horizontalpodautoscalers", "", "tenant-anyone", true},
			{"delete", "core", "secrets", "", "tenant-anyone", false},
			{"delete", "core", "namespaces", "", "", false},
			{"update", "apps", "deployments", "", "tenant-anyone", false},
			{"update", "analytics.millimetric.ai", "analyticstenants", "", "", false},
			{"create", "core", "pods", "", "tenant-anyone", false},
			{"create", "analytics.millimetric.ai", "storageregions", "", "", false},
			{"delete", "apiextensions.k8s.io", "customresourcedefinitions", "", "", false},
		} {
			g.Expect(canI(t, user, tt.verb, tt.group, tt.resource, tt.subresource, tt.namespace)).To(Equal(tt.allowed),
				"%s %s.%s/%s in %q", tt.verb, tt.resource, tt.group, tt.subresource, tt.namespace)
		}
	})

	runHelm(t, "uninstall", release, "--namespace", ns, "--wait")

	t.Run("helm uninstall keeps the CRDs and the objects of their kinds", func(t *testing.T) {
		g := NewWithT(t)
		for _, name := range crdNames {
			crd := &unstructured.Unstructured{}
			crd.SetGroupVersionKind(crdGVK)
			g.Expect(k8s.Get(ctx, client.ObjectKey{Name: name}, crd)).To(Succeed(), "CRD %s", name)
			g.Expect(crd.GetDeletionTimestamp()).To(BeNil(), "CRD %s is being deleted", name)
			g.Expect(crd.GetAnnotations()).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		}
		regions := &analyticsv1alpha1.StorageRegionList{}
		g.Expect(k8s.List(ctx, regions)).To(Succeed())
		g.Expect(regions.Items).To(HaveLen(len(regionsBefore.Items)))
	})

	t.Run("helm uninstall leaves no other object of the release", func(t *testing.T) {
		g := NewWithT(t)
		for _, o := range manifest {
			if o.GetKind() == "CustomResourceDefinition" {
				continue
			}
			left := &unstructured.Unstructured{}
			left.SetGroupVersionKind(o.GroupVersionKind())
			g.Eventually(func() bool {
				return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKey{Namespace: o.GetNamespace(), Name: o.GetName()}, left))
			}, wait, tick).Should(BeTrue(), "%s %s/%s is left", o.GetKind(), o.GetNamespace(), o.GetName())
		}
		// What the objects made (ReplicaSets, pods) goes too, and so does
		// helm's record of the release.
		instance := client.MatchingLabels{"app.kubernetes.io/instance": release}
		for _, list := range []client.ObjectList{&appsv1.ReplicaSetList{}, &corev1.PodList{}, &corev1.ServiceList{}, &corev1.ServiceAccountList{},
			&rbacv1.RoleList{}, &rbacv1.RoleBindingList{}} {
			g.Eventually(func() int {
				if err := k8s.List(ctx, list, client.InNamespace(ns), instance); err != nil {
					return -1
				}
				return meta.LenList(list)
			}, wait, tick).Should(BeZero(), "%T of the release are left in %s", list, ns)
		}
		for _, list := range []client.ObjectList{&rbacv1.ClusterRoleList{}, &rbacv1.ClusterRoleBindingList{}} {
			g.Expect(k8s.List(ctx, list, instance)).To(Succeed())
			g.Expect(meta.LenList(list)).To(BeZero(), "%T of the release are left", list)
		}
		secrets := &corev1.SecretList{}
		g.Expect(k8s.List(ctx, secrets, client.InNamespace(ns), client.MatchingLabels{"owner": "helm", "name": release})).To(Succeed())
		g.Expect(secrets.Items).To(BeEmpty(), "helm's release record is left")
	})
}

// releaseNamespace creates the release's namespace with Pod Security
// restricted enforced, as a platform team would, has the CRDs adopted by
// the release, and uninstalls the release and removes the namespace when
// the test ends. It returns the StorageRegions there were before, which
// the release must leave alone.
func releaseNamespace(t *testing.T, release, ns string) *analyticsv1alpha1.StorageRegionList {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	namespace := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns,
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"}}}
	g.Expect(k8s.Create(ctx, namespace)).To(Succeed())
	t.Cleanup(func() {
		_ = k8s.Delete(ctx, namespace)
		NewWithT(t).Eventually(func() bool {
			return apierrors.IsNotFound(k8s.Get(ctx, client.ObjectKeyFromObject(namespace), &corev1.Namespace{}))
		}, 2*wait, tick).Should(BeTrue(), "namespace %s is still there", ns)
	})
	regionsBefore := &analyticsv1alpha1.StorageRegionList{}
	g.Expect(k8s.List(ctx, regionsBefore)).To(Succeed())
	adoptCRDs(t, release, ns)
	t.Cleanup(func() { runHelm(t, "uninstall", release, "--namespace", ns, "--ignore-not-found", "--wait") })
	return regionsBefore
}
