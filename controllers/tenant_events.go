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

package controllers

import (
	"context"

	"sigs.k8s.io/controller-runtime/pkg/log"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
)

// Event reasons of the tenant reconciler, besides the condition reasons.
const (
	eventProvisioned  = "Provisioned"
	eventPurged       = "Purged"
	eventRetained     = "Retained"
	eventRetainFailed = "RetainFailed"
	eventAdopted      = "Adopted"
	eventPurgeFailed  = "PurgeFailed"
)

// event records an event about the tenant, if there is a recorder, and
// logs it: the operator's log then tells the same story as the events.
// Notes never carry credentials.
func (r *TenantReconciler) event(ctx context.Context, tenant *analyticsv1alpha1.AnalyticsTenant, eventType, reason, action, note string) {
	log.FromContext(ctx).Info(note, "event", reason, "type", eventType)
	if r.Recorder != nil {
		r.Recorder.Eventf(tenant, nil, eventType, reason, action, "%s", note)
	}
}
