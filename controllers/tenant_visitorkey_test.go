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

package controllers_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// TestTheVisitorKeyIsMadeOnceAndKeptWhereOnlyIngestReadsIt: the tenant's
// visitor key (the HMAC key of its stored visitor ids) is made with its
// storage, kept across provisioning (a new one would make every returning
// visitor new), made again when an ingest Secret has none (one written by
// an operator from before visitor keys), rolls the ingest pods when it
// changes, and is nowhere but in the ingest Secret.
func TestTheVisitorKeyIsMadeOnceAndKeptWhereOnlyIngestReadsIt(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	withRegions(t)
	const name, ns = "vkey", "tenant-vkey"
	newTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{})
	key := func() []byte { return render.VisitorKeyOf(get(&corev1.Secret{}, ns, render.IngestSecretName)()) }
	g.Eventually(key, wait, tick).ShouldNot(BeNil())
	first := key()

	requestReconcile(t, name)
	g.Expect(key()).To(Equal(first), "a full reconcile, which provisions again, changed the visitor key")

	// An ingest Secret without a key, as an operator from before visitor
	// keys wrote it.
	secret := get(&corev1.Secret{}, ns, render.IngestSecretName)()
	before := ingestDeployment(ns)().Spec.Template.Annotations[render.AnnotationCredentialsHash]
	patch := client.MergeFrom(secret.DeepCopy())
	delete(secret.Data, render.SecretKeyVisitorKey)
	g.Expect(k8s.Patch(ctx, secret, patch)).To(Succeed())
	g.Eventually(key, wait, tick).ShouldNot(BeNil(), "the operator did not give the ingest Secret a visitor key")
	g.Expect(key()).NotTo(Equal(first))
	g.Eventually(func() string {
		return ingestDeployment(ns)().Spec.Template.Annotations[render.AnnotationCredentialsHash]
	}, wait, tick).ShouldNot(Equal(before), "a new visitor key must roll the ingest pods")

	// Only the ingest Secret holds it: not the storage Secret, the
	// Deployment, the tenant's status or its events.
	hexKey := hex.EncodeToString(key())
	status, _ := json.Marshal(getTenant(name).Status)
	deployment, _ := json.Marshal(ingestDeployment(ns)())
	storageSecret, _ := json.Marshal(get(&corev1.Secret{}, ns, render.StorageSecretName)())
	var events []string
	for _, e := range eventsAbout(name)() {
		events = append(events, e.Note)
	}
	for what, text := range map[string]string{
		"the tenant's status": string(status), "the ingest Deployment": string(deployment),
		"the storage Secret": string(storageSecret), "the tenant's events": strings.Join(events, "\n"),
	} {
		g.Expect(text).NotTo(ContainSubstring(hexKey), "%s holds the visitor key", what)
	}
}
