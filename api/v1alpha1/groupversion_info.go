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

// Package v1alpha1 holds the Millimetric tenant API: AnalyticsTenant, one per
// customer, and StorageRegion, one per storage region.
//
// Specs carry no server-side defaults: a spec reads back exactly as it was
// applied, so GitOps tools never see a diff they did not make. The values in
// force are resolved by AnalyticsTenantSpec.Effective and
// StorageRegionSpec.Effective and published in status.
//
// +kubebuilder:object:generate=true
// +groupName=analytics.millimetric.ai
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is the group and version of every kind in this package.
	GroupVersion = schema.GroupVersion{Group: "analytics.millimetric.ai", Version: "v1alpha1"}

	// SchemeBuilder registers this package's kinds with a runtime.Scheme.
	// The package depends only on apimachinery and the core API types, so
	// clients can import it cheaply.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds this package's kinds to a runtime.Scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&AnalyticsTenant{}, &AnalyticsTenantList{},
		&StorageRegion{}, &StorageRegionList{},
	)
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
