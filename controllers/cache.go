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
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
)

// CacheOptions limits the manager's cache to what the operator owns: the
// kinds it creates only when they carry its managed-by label, the
// AnalyticsTenants of its shard (all when shard is empty), and no managed
// fields. Its memory so grows with the tenants, not with the cluster.
func CacheOptions(shard labels.Selector) cache.Options {
	owned := labels.SelectorFromSet(labels.Set{render.LabelManagedBy: render.ManagedBy})
	byObject := map[client.Object]cache.ByObject{}
	for _, obj := range OwnedObjects() {
		byObject[obj] = cache.ByObject{Label: owned}
	}
	if shard != nil && !shard.Empty() {
		byObject[&analyticsv1alpha1.AnalyticsTenant{}] = cache.ByObject{Label: shard}
	}
	return cache.Options{ByObject: byObject, DefaultTransform: cache.TransformStripManagedFields()}
}
