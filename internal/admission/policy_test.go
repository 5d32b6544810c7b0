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

package admission

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/testenv"
)

const (
	// systemNamespace, serviceAccount and the prefix tenant- are
	// config/default's, which config/admission's policy names.
	systemNamespace = "millimetric-system"
	serviceAccount  = "tenant-operator-controller-manager"
	// tenantNamespace is a namespace as the operator makes it.
	tenantNamespace = "tenant-acme"
)

var (
	scheme = runtime.NewScheme()
	// admin is envtest's administrator; operator is the operator's
	// ServiceAccount (impersonated), with config/rbac's rules bound to it.
	admin, operator client.Client
	// acme is the tenant tenantNamespace belongs to.
	acme *analyticsv1alpha1.AnalyticsTenant
)

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(analyticsv1alpha1.AddToScheme(scheme))
	env, cfg, err := testenv.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := 1
	if err := setUp(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "setting up:", err)
	} else {
		code = m.Run()
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping envtest:", err)
	}
	os.Exit(code)
}

// readObjects reads every object of a YAML file of the repository.
func readObjects(path ...string) ([]*unstructured.Unstructured, error) {
	data, err := os.ReadFile(filepath.Join(append([]string{testenv.RepoRoot()}, path...)...))
	if err != nil {
		return nil, err
	}
	var out []*unstructured.Unstructured
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return out, nil
		} else if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(path...), err)
		}
		if len(u.Object) > 0 {
			out = append(out, u)
		}
	}
}

// setUp installs the policy and its binding as config/admission has them,
// config/rbac's roles bound to the operator's ServiceAccount as
// config/default binds them, the operator's namespace, a tenant and its
// namespace as the operator makes it, and waits until the policy is
// enforced.
func setUp(cfg *rest.Config) error {
	ctx := context.Background()
	var err error
	if admin, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	var objs []*unstructured.Unstructured
	for _, file := range []string{"policy.yaml", "binding.yaml"} {
		o, err := readObjects("config", "admission", file)
		if err != nil {
			return err
		}
		objs = append(objs, o...)
	}
	for _, file := range []string{"role.yaml", "leader_election_role.yaml"} {
		o, err := readObjects("config", "rbac", file)
		if err != nil {
			return err
		}
		objs = append(objs, o...)
	}
	subject := []rbacv1.Subject{{Kind: "ServiceAccount", Name: serviceAccount, Namespace: systemNamespace}}
	if err := admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: systemNamespace}}); err != nil {
		return err
	}
	for _, o := range objs {
		if o.GetKind() == "Role" {
			o.SetNamespace(systemNamespace)
		}
		if err := admin.Create(ctx, o); err != nil {
			return fmt.Errorf("creating %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		ref := rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: o.GetKind(), Name: o.GetName()}
		switch o.GetKind() {
		case "ClusterRole":
			err = admin.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.GetName()}, RoleRef: ref, Subjects: subject})
		case "Role":
			err = admin.Create(ctx, &rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Name: o.GetName(), Namespace: systemNamespace}, RoleRef: ref, Subjects: subject})
		}
		if err != nil {
			return err
		}
	}

	acme = &analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: "acme"},
		Spec: analyticsv1alpha1.AnalyticsTenantSpec{Domains: []analyticsv1alpha1.Domain{"acme.com"}}}
	if err := admin.Create(ctx, acme); err != nil {
		return err
	}
	if err := admin.Create(ctx, tenantNamespaceOf(acme)); err != nil {
		return err
	}

	impersonated := rest.CopyConfig(cfg)
	impersonated.Impersonate = rest.ImpersonationConfig{
		UserName: "system:serviceaccount:" + systemNamespace + ":" + serviceAccount,
		Groups:   []string{"system:serviceaccounts", "system:serviceaccounts:" + systemNamespace, "system:authenticated"},
	}
	if operator, err = client.New(impersonated, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	// The API server loads a new policy in the background.
	probe := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "probe"}}
	deadline := time.Now().Add(time.Minute)
	for {
		err := operator.Create(ctx, probe.DeepCopy(), client.DryRunAll)
		if err != nil && strings.Contains(err.Error(), "ValidatingAdmissionPolicy") {
			return nil
		}
		if time.Now().After(deadline) && err == nil {
			return errors.New("the policy is not enforced after a minute: the operator may create a ConfigMap in default")
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the policy is not enforced after a minute: creating a ConfigMap in default as the operator: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tenantNamespaceOf is the namespace internal/render makes for tenant.
func tenantNamespaceOf(tenant *analyticsv1alpha1.AnalyticsTenant) *corev1.Namespace {
	return render.Namespace(render.Tenant{Object: tenant, Spec: tenant.Spec.Effective(), Settings: render.DefaultSettings()})
}

// patchLabels is a merge patch of an object's labels.
func patchLabels(labels map[string]any) client.Patch {
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": labels}})
	if err != nil {
		panic(err)
	}
	return client.RawPatch(types.MergePatchType, body)
}

// TestTheOperatorWritesOnlyIntoItsOwnNamespaces is the policy's truth
// table: each write as the operator's ServiceAccount (a server-side dry
// run, which admission sees as the real write), allowed or denied by the
// policy with its message. RBAC grants every one of them.
func TestTheOperatorWritesOnlyIntoItsOwnNamespaces(t *testing.T) {
	ctx := context.Background()
	newNamespace := func(tenant string, change func(*corev1.Namespace)) func() error {
		return func() error {
			ns := tenantNamespaceOf(&analyticsv1alpha1.AnalyticsTenant{ObjectMeta: metav1.ObjectMeta{Name: tenant, UID: acme.UID}})
			if change != nil {
				change(ns)
			}
			return operator.Create(ctx, ns, client.DryRunAll)
		}
	}
	configMapIn := func(namespace string) func() error {
		return func() error {
			return operator.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "x"}}, client.DryRunAll)
		}
	}
	secretIn := func(namespace string, typ corev1.SecretType) func() error {
		return func() error {
			return operator.Create(ctx, &corev1.Secret{
				ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "x",
					Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}},
				Type: typ,
			}, client.DryRunAll)
		}
	}
	patchNamespace := func(name string, labels map[string]any) func() error {
		return func() error {
			return operator.Patch(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, patchLabels(labels), client.DryRunAll)
		}
	}
	const (
		outsideNamespaces = "the tenant operator writes only into tenant namespaces"
		onlyTenantNS      = "the tenant operator creates and changes only tenant namespaces"
		noToken           = "the tenant operator makes no Secret of type kubernetes.io/service-account-token"
	)
	// Someone else's namespace named like a tenant's.
	foreign := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-foreign"}}
	// Someone else's namespace with the operator's labels copied, but no
	// AnalyticsTenant controlling it.
	copied := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "tenant-copied", Labels: map[string]string{
		render.LabelTenant: "copied", render.LabelManagedBy: render.ManagedBy,
	}}}
	for _, ns := range []*corev1.Namespace{foreign, copied} {
		// Kept, not deleted, at the end: envtest has no namespace
		// controller, so a deleted one would stay Terminating. A second
		// run (-count=2) finds them as this one made them (every write
		// below is refused).
		if err := admin.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name   string
		write  func() error
		denied string // "" when the write must be allowed
	}{
		{"a tenant namespace as internal/render makes it may be created", newNamespace("globex", nil), ""},
		{"a namespace without the tenant prefix may not be created", newNamespace("globex", func(ns *corev1.Namespace) {
			ns.Name = "globex"
		}), onlyTenantNS},
		{"a tenant namespace whose tenant label is another tenant's may not be created", newNamespace("globex", func(ns *corev1.Namespace) {
			ns.Labels[render.LabelTenant] = "initech"
		}), onlyTenantNS},
		{"a tenant namespace not enforcing Pod Security restricted may not be created", newNamespace("globex", func(ns *corev1.Namespace) {
			ns.Labels["pod-security.kubernetes.io/enforce"] = "privileged"
		}), onlyTenantNS},
		{"a tenant namespace no AnalyticsTenant controls may not be created", newNamespace("globex", func(ns *corev1.Namespace) {
			ns.OwnerReferences = nil
		}), onlyTenantNS},
		{"a tenant namespace an AnalyticsTenant owns but does not control may not be created", newNamespace("globex", func(ns *corev1.Namespace) {
			ns.OwnerReferences[0].Controller = nil
		}), onlyTenantNS},
		{"a tenant namespace may be relabelled", patchNamespace(tenantNamespace, map[string]any{"team": "analytics"}), ""},
		{"a tenant namespace may not be relaxed to Pod Security privileged",
			patchNamespace(tenantNamespace, map[string]any{"pod-security.kubernetes.io/enforce": "privileged"}), onlyTenantNS},
		{"kube-system may not be relabelled as a tenant namespace", patchNamespace("kube-system", map[string]any{
			render.LabelManagedBy: render.ManagedBy, render.LabelTenant: "system",
		}), onlyTenantNS},
		{"a namespace named like a tenant's may not be taken over", patchNamespace(foreign.Name, map[string]any{
			render.LabelManagedBy: render.ManagedBy, render.LabelTenant: "foreign",
		}), onlyTenantNS},
		{"a namespace with copied labels but no controlling tenant may not be changed",
			patchNamespace(copied.Name, map[string]any{"team": "analytics"}), onlyTenantNS},

		{"a ConfigMap may be written into a tenant namespace", configMapIn(tenantNamespace), ""},
		{"a ConfigMap may not be written into default", configMapIn("default"), outsideNamespaces},
		{"a ConfigMap may not be written into kube-system", configMapIn("kube-system"), outsideNamespaces},
		{"a ConfigMap may not be written into the operator's own namespace", configMapIn(systemNamespace), outsideNamespaces},
		{"a ConfigMap may not be written into a namespace named like a tenant's that the operator did not label",
			configMapIn(foreign.Name), outsideNamespaces},
		{"a Deployment may not be written into kube-system", func() error {
			d := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
				"metadata": map[string]any{"namespace": "kube-system", "name": "x"},
				"spec": map[string]any{"selector": map[string]any{"matchLabels": map[string]any{"a": "b"}},
					"template": map[string]any{"metadata": map[string]any{"labels": map[string]any{"a": "b"}},
						"spec": map[string]any{"containers": []any{map[string]any{"name": "x", "image": "x"}}}}}}}
			return operator.Create(ctx, d, client.DryRunAll)
		}, outsideNamespaces},
		{"the leader election Lease may be written into the operator's own namespace", func() error {
			return operator.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "x"}}, client.DryRunAll)
		}, ""},

		{"an Opaque Secret may be written into a tenant namespace", secretIn(tenantNamespace, corev1.SecretTypeOpaque), ""},
		{"a service-account-token Secret may not be written into a tenant namespace",
			secretIn(tenantNamespace, corev1.SecretTypeServiceAccountToken), noToken},
		{"a service-account-token Secret may not be written into kube-system, where nothing may be written",
			secretIn("kube-system", corev1.SecretTypeServiceAccountToken), outsideNamespaces},

		{"an AnalyticsTenant's finalizers may be patched", func() error {
			return operator.Patch(ctx, acme.DeepCopy(), client.RawPatch(types.MergePatchType,
				[]byte(`{"metadata":{"finalizers":["`+analyticsv1alpha1.TenantFinalizer+`"]}}`)), client.DryRunAll)
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.write()
			switch {
			case tt.denied == "" && err != nil:
				t.Errorf("denied: %v", err)
			case tt.denied != "" && err == nil:
				t.Errorf("allowed; the policy must deny it saying %q", tt.denied)
			case tt.denied != "" && (!apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "ValidatingAdmissionPolicy") ||
				!strings.Contains(err.Error(), tt.denied)):
				t.Errorf("want the policy's Forbidden saying %q, got %v", tt.denied, err)
			}
		})
	}
}

// TestThePolicyLeavesEveryoneElseAlone: the administrator writes where the
// operator may not.
func TestThePolicyLeavesEveryoneElseAlone(t *testing.T) {
	ctx := context.Background()
	for _, obj := range []client.Object{
		&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "x",
			Annotations: map[string]string{corev1.ServiceAccountNameKey: "default"}}, Type: corev1.SecretTypeServiceAccountToken},
	} {
		if err := admin.Create(ctx, obj, client.DryRunAll); err != nil {
			t.Errorf("the administrator may not create %T in default: %v", obj, err)
		}
	}
}
