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
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// rbacKinds are the kinds of the chart's objects that say what the manager
// may do: exactly these are installed for the suite's operators. The
// ValidatingAdmissionPolicy limits, whatever the RBAC grants, where the
// manager's writes land.
var rbacKinds = []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
	"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}

// chartRBACFieldOwner applies the chart's RBAC; a later run with other rules
// (a rule removed from a copy of the chart, E2E_CHART) replaces them.
const chartRBACFieldOwner = "e2e-chart-rbac"

// runAsTheChartsServiceAccount installs the chart's ServiceAccount, RBAC and
// admission policy, rendered by the pinned helm for release chartRelease in
// systemNamespace, and writes operatorKubeconfig: the admin's kubeconfig
// impersonating that ServiceAccount. The API server then authorizes and
// admits every request of the operators as it would a pod's of the chart's
// Deployment, so a rule the operator needs and the chart lacks, or a write
// the policy refuses, fails a scenario. It checks that the impersonation
// holds (the identity is the ServiceAccount's, and listing Nodes, which no
// rule grants, is forbidden) and waits until the API server enforces the
// policy.
func runAsTheChartsServiceAccount() error {
	ctx := context.Background()
	objs, err := helmTemplate(chartRelease, systemNamespace)
	if err != nil {
		return err
	}
	var account string
	var installed []string
	for _, u := range objs {
		if !slices.Contains(rbacKinds, u.GetKind()) {
			continue
		}
		if err := k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner(chartRBACFieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying the chart's %s %s: %w", u.GetKind(), u.GetName(), err)
		}
		installed = append(installed, u.GetKind()+"/"+u.GetName())
		if u.GetKind() == "ServiceAccount" {
			account = fmt.Sprintf("system:serviceaccount:%s:%s", u.GetNamespace(), u.GetName())
		}
	}
	if account == "" {
		return fmt.Errorf("the chart (%s) renders no ServiceAccount", chartDir)
	}

	operatorKubeconfig = filepath.Join(logDir, "operator.kubeconfig")
	if err := writeImpersonatingKubeconfig(os.Getenv("KUBECONFIG"), operatorKubeconfig, account); err != nil {
		return err
	}
	impersonated, err := clientcmd.BuildConfigFromFlags("", operatorKubeconfig)
	if err != nil {
		return err
	}
	c, err := client.New(impersonated, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	review := &authenticationv1.SelfSubjectReview{}
	if err := c.Create(ctx, review); err != nil {
		return fmt.Errorf("SelfSubjectReview as %s: %w", account, err)
	}
	if got := review.Status.UserInfo.Username; got != account {
		return fmt.Errorf("the operator's kubeconfig authenticates as %q, not %q", got, account)
	}
	if err := c.List(ctx, &corev1.NodeList{}, client.Limit(1)); !apierrors.IsForbidden(err) {
		return fmt.Errorf("listing Nodes as %s: want Forbidden (no rule of the chart grants it), got %w", account, err)
	}
	// The API server loads a new policy in the background. RBAC grants
	// this write; only the policy refuses it.
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, Name: "e2e-policy-probe"}}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(250 * time.Millisecond) {
		err := c.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if apierrors.IsForbidden(err) && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			break
		}
		if time.Now().After(deadline) && err == nil {
			return fmt.Errorf("the chart's admission policy is not enforced after a minute: %s may create a ConfigMap in default", account)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the chart's admission policy is not enforced after a minute: a ConfigMap in default as %s: %w", account, err)
		}
	}
	operatorClient = c
	fmt.Fprintf(os.Stderr, "e2e: operators run as %s (%s) with the chart's RBAC and admission policy from %s: %s\n",
		account, operatorKubeconfig, chartDir, strings.Join(installed, ", "))
	return nil
}

// helmTemplate renders the chart (chartDir) for a release in a namespace
// with the pinned helm and returns its objects.
func helmTemplate(release, namespace string, args ...string) ([]*unstructured.Unstructured, error) {
	cmd := exec.Command(helm, append([]string{"template", release, chartDir, "--namespace", namespace}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("helm template %s: %w: %s", chartDir, err, stderr.String())
	}
	return decodeObjects(out)
}

// decodeObjects reads a multi-document YAML stream into objects, skipping
// empty documents.
func decodeObjects(stream []byte) ([]*unstructured.Unstructured, error) {
	var objs []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(stream), 4096)
	for {
		u := &unstructured.Unstructured{}
		err := dec.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			return objs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

// writeImpersonatingKubeconfig writes to path the kubeconfig at from with
// its current context's user impersonating user (the kubeconfig's `as`).
// Relative file paths in it are resolved first, so the copy works from
// anywhere.
func writeImpersonatingKubeconfig(from, path, user string) error {
	cfg, err := (&clientcmd.ClientConfigLoadingRules{ExplicitPath: from}).Load()
	if err != nil {
		return fmt.Errorf("reading %s: %w", from, err)
	}
	current, ok := cfg.Contexts[cfg.CurrentContext]
	if !ok {
		return fmt.Errorf("%s has no current context", from)
	}
	auth, ok := cfg.AuthInfos[current.AuthInfo]
	if !ok {
		return fmt.Errorf("%s: context %s names no known user", from, cfg.CurrentContext)
	}
	impersonating := auth.DeepCopy()
	impersonating.Impersonate = user
	name := current.AuthInfo + "-as-operator"
	cfg.AuthInfos[name] = impersonating
	current.AuthInfo = name
	return clientcmd.WriteToFile(*cfg, path)
}
