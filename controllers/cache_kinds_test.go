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
	"reflect"
	"testing"

	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/children"
)

// The cache holds exactly the kinds of children.Kinds (those the API
// server serves) besides tenants and regions: a kind cached but not in the
// table would be cached whole and never slimmed or compared, one in the
// table but not cached would be read from the API server at every
// reconcile.
func TestTheCacheHoldsExactlyTheKindsOfTheChildrenTable(t *testing.T) {
	for _, gatewayAPI := range []bool{true, false} {
		cached := map[reflect.Type]bool{}
		for obj := range controllers.CacheOptions(labels.Everything(), systemNamespace, gatewayAPI).ByObject {
			switch obj.(type) {
			case *analyticsv1alpha1.AnalyticsTenant, *analyticsv1alpha1.StorageRegion:
				continue
			}
			cached[reflect.TypeOf(obj)] = true
		}
		table := map[reflect.Type]bool{}
		for _, obj := range children.Served(gatewayAPI) {
			table[reflect.TypeOf(obj)] = true
			if !cached[reflect.TypeOf(obj)] {
				t.Errorf("gatewayAPI=%t: %T is in children.Kinds but not cached", gatewayAPI, obj)
			}
			if _, err := apiutil.GVKForObject(obj, scheme); err != nil {
				t.Errorf("%T is not in the scheme: %v", obj, err)
			}
		}
		for typ := range cached {
			if !table[typ] {
				t.Errorf("gatewayAPI=%t: %s is cached but not in children.Kinds", gatewayAPI, typ)
			}
		}
		if len(table) != len(cached) {
			t.Errorf("gatewayAPI=%t: %d kinds in the table, %d cached", gatewayAPI, len(table), len(cached))
		}
	}
}
