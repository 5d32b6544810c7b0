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
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// probe answers a GET of the operator's health endpoint: its status code
// and body, or the error.
func (o *operator) probeGet(path string) (int, string, error) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d%s?verbose", o.probe, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), nil
}

// withoutRule runs the manager as a ServiceAccount of its own, bound to the
// chart's manager ClusterRole less the rules that grant resource: what a
// chart that forgot one rule would install.
func withoutRule(t *testing.T, account, resource string) (kubeconfig string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	objs, err := helmTemplate(chartRelease, systemNamespace)
	g.Expect(err).NotTo(HaveOccurred())
	var manager *rbacv1.ClusterRole
	for _, u := range objs {
		if u.GetKind() == "ClusterRole" && strings.HasSuffix(u.GetName(), "-manager") {
			manager = &rbacv1.ClusterRole{}
			g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, manager)).To(Succeed())
		}
	}
	g.Expect(manager).NotTo(BeNil(), "the chart renders no manager ClusterRole")
	var rules []rbacv1.PolicyRule
	removed := false
	for _, r := range manager.Rules {
		if i := slices.Index(r.Resources, resource); i >= 0 {
			r.Resources = slices.Delete(slices.Clone(r.Resources), i, i+1)
			removed = true
			if len(r.Resources) == 0 {
				continue
			}
		}
		rules = append(rules, r)
	}
	g.Expect(removed).To(BeTrue(), "no rule of the chart's manager ClusterRole grants %s", resource)

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: account}}
	role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: account}, Rules: rules}
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: account},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: account},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: systemNamespace, Name: account}},
	}
	for _, obj := range []client.Object{sa, role, binding} {
		g.Expect(k8s.Create(ctx, obj)).To(Succeed())
		t.Cleanup(func() { _ = k8s.Delete(context.Background(), obj) })
	}
	kubeconfig = filepath.Join(logDir, account+".kubeconfig")
	g.Expect(writeImpersonatingKubeconfig(os.Getenv("KUBECONFIG"), kubeconfig,
		fmt.Sprintf("system:serviceaccount:%s:%s", systemNamespace, account))).To(Succeed())
	return kubeconfig
}

// A manager whose informers cannot sync reconciles nothing: /readyz says
// so, instead of answering a ping. Both operators here run without leader
// election, so each starts its controllers, and so their informers, at once.
func TestTheManagerIsReadyOnlyOnceItsInformersHaveSynced(t *testing.T) {
	t.Run("with the chart's RBAC it is ready", func(t *testing.T) {
		g := NewWithT(t)
		op := startOperator(t, "full-rbac", "--leader-elect=false")
		g.Eventually(func() (int, error) {
			code, _, err := op.probeGet("/readyz")
			return code, err
		}, wait, tick).Should(Equal(http.StatusOK))
	})

	t.Run("without the rule to list CronJobs it is alive and never ready", func(t *testing.T) {
		g := NewWithT(t)
		kubeconfig := withoutRule(t, "e2e-no-cronjobs", "cronjobs")
		op := startOperator(t, "no-cronjobs", "--leader-elect=false", "--kubeconfig="+kubeconfig)
		// controller-runtime gives a controller's informers two minutes to
		// sync before it fails the manager; for all of that, not ready.
		g.Consistently(func() (int, error) {
			code, _, err := op.probeGet("/readyz")
			return code, err
		}, 30*time.Second, time.Second).Should(Equal(http.StatusInternalServerError))
		code, body, err := op.probeGet("/readyz")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusInternalServerError))
		g.Expect(body).To(ContainSubstring("informers-synced failed"))
		code, _, err = op.probeGet("/healthz")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(code).To(Equal(http.StatusOK), "liveness must not restart a manager that waits for its RBAC")
		log, err := os.ReadFile(op.log)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(string(log)).To(ContainSubstring("cronjobs"), "the log does not say which kind cannot be listed")
	})
}
