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

package main

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

const (
	// floorFieldOwner applies the floor's objects.
	floorFieldOwner = "bench-scale-floor"
	// floorManagedBy replaces the operator's managed-by label on the
	// floor's objects, so that no operator caches them.
	floorManagedBy = "bench-scale-floor"
)

// floor applies, for N stand-in tenants, the child objects the operator
// would make (the same internal/render builders), with server-side apply
// straight through the API server, until every ingest Deployment is
// available; then deletes their namespaces. It returns both times.
func (b *bench) floor(ctx context.Context) (ready, deleted time.Duration, writes int, err error) {
	namespaces := make([]string, b.c.n)
	for i := range namespaces {
		namespaces[i] = render.DefaultNamespacePrefix + fmt.Sprintf("%s%05d", floorPrefix, i)
	}
	writes = len(b.floorObjects(floorPrefix+"00000", 0))
	start := time.Now()
	if err := parallel(ctx, b.c.workers, b.c.n, func(ctx context.Context, i int) error {
		for _, obj := range b.floorObjects(fmt.Sprintf("%s%05d", floorPrefix, i), i) {
			if err := b.apply(ctx, obj); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return 0, 0, 0, err
	}
	var last time.Time
	err = waitFor(ctx, fmt.Sprintf("the floor's %d Deployments to be available", b.c.n), convergeTimeout(b.c.n), func() (bool, string) {
		available, at, waiting := b.tr.availableDeployments(namespaces)
		last = at
		progress(available, b.c.n, "floor Deployments available")
		return available == b.c.n, fmt.Sprintf("%d of %d available; not yet: %s", available, b.c.n, waiting)
	})
	if err != nil {
		return 0, 0, 0, err
	}
	ready = last.Sub(start)
	logf("floor: available in %s; deleting its namespaces", secs(ready))
	start = time.Now()
	if err := parallel(ctx, 8, b.c.n, func(ctx context.Context, i int) error {
		return client.IgnoreNotFound(b.k8s.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespaces[i]}}))
	}); err != nil {
		return 0, 0, 0, err
	}
	deleted, err = b.waitGone(ctx, "floor namespaces", namespaces, true, start)
	return ready, deleted, writes, err
}

// floorObjects are what the operator applies for a tenant, in the order
// of its phases (isolation, storage's Secrets, ingest, retention), without
// owner references: the stand-in tenant does not exist, and the garbage
// collector would delete what names it.
func (b *bench) floorObjects(name string, i int) []client.Object {
	at := b.tenant(name, i)
	spec := at.Spec.Effective()
	t := render.Tenant{Object: at, Spec: spec, Region: b.regions[spec.Region], Settings: render.DefaultSettings()}
	// Stand-in names: no database is provisioned for the floor.
	schema, ingestRole := fmt.Sprintf("t_floor%d", i), fmt.Sprintf("i_floor%d", i)
	creds := func(user string) storage.Credentials {
		return storage.Credentials{Host: b.c.pgHost, Port: int32(b.c.pgPort), Database: "events", SSLMode: storage.SSLModeDisable,
			Schema: schema, Username: user, Password: "not-a-password-" + name}
	}
	storageSecret := render.StorageSecret(t, creds(schema))
	ingestSecret := render.IngestSecret(t, creds(ingestRole), make([]byte, event.VisitorKeySize))
	t.StorageCredentialsHash = render.CredentialsHash(storageSecret)
	t.IngestCredentialsHash = render.CredentialsHash(ingestSecret)

	objs := []client.Object{render.Namespace(t)}
	for _, np := range render.NetworkPolicies(t) {
		objs = append(objs, np)
	}
	objs = append(objs, render.ResourceQuota(t), storageSecret, ingestSecret,
		render.IngestServiceAccount(t), render.IngestConfigMap(t), render.IngestService(t), render.IngestDeployment(t))
	if hpa := render.IngestHPA(t); hpa != nil {
		objs = append(objs, hpa)
	}
	if pdb := render.IngestPDB(t); pdb != nil {
		objs = append(objs, pdb)
	}
	objs = append(objs, render.RetentionServiceAccount(t), render.RetentionCronJob(t))
	for _, o := range objs {
		o.SetOwnerReferences(nil)
		l := o.GetLabels()
		l[render.LabelManagedBy] = floorManagedBy
		o.SetLabels(l)
	}
	return objs
}

// apply is server-side apply of the whole object, as the operator's
// applier sends it.
func (b *bench) apply(ctx context.Context, obj client.Object) error {
	gvk, err := apiutil.GVKForObject(obj, scheme)
	if err != nil {
		return err
	}
	u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return err
	}
	delete(u, "status")
	if m, ok := u["metadata"].(map[string]any); ok {
		delete(m, "creationTimestamp")
	}
	desired := &unstructured.Unstructured{Object: u}
	desired.SetGroupVersionKind(gvk)
	ac := client.ApplyConfigurationFromUnstructured(desired)
	if err := b.k8s.Apply(ctx, ac, client.FieldOwner(floorFieldOwner), client.ForceOwnership); err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}
