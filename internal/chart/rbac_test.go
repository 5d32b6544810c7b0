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

package chart

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	rbacv1 "k8s.io/api/rbac/v1"
)

// grants expands rules into group/resource -> sorted verbs.
func grants(rules []rbacv1.PolicyRule) map[string][]string {
	out := map[string][]string{}
	for _, r := range rules {
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				key := g + "/" + res
				if g == "" {
					key = "core/" + res
				}
				for _, v := range r.Verbs {
					if !slices.Contains(out[key], v) {
						out[key] = append(out[key], v)
					}
				}
				slices.Sort(out[key])
			}
		}
	}
	return out
}

// TestTheManagerMayDoOnlyWhatItsCodeDoes holds the operator's RBAC to the
// calls its code makes, resource by resource. A verb added to a marker (or
// to config/rbac) without code that needs it fails here; so does one the
// code stops needing, until it is taken out.
func TestTheManagerMayDoOnlyWhatItsCodeDoes(t *testing.T) {
	// Read by the manager's cache (get, list, watch); written by
	// server-side apply, a patch the API server also authorizes as a
	// create while the object does not exist.
	child := []string{"create", "get", "list", "patch", "watch"}
	tests := []struct {
		name, file string
		want       map[string][]string
	}{
		{"the manager's ClusterRole", "role.yaml", map[string][]string{
			// The cache, and the finalizer, added and removed by a merge patch.
			"analytics.millimetric.ai/analyticstenants": {"get", "list", "patch", "watch"},
			// Status is written by a merge patch, only when it changed.
			"analytics.millimetric.ai/analyticstenants/status": {"patch"},
			"analytics.millimetric.ai/storageregions/status":   {"patch"},
			// Setting blockOwnerDeletion on a child's owner reference to a
			// tenant (OwnerReferencesPermissionEnforcement).
			"analytics.millimetric.ai/analyticstenants/finalizers": {"update"},
			// The cache, and the region-data finalizer, added and removed by
			// a merge patch (no owner reference names a region, so no
			// update of storageregions/finalizers).
			"analytics.millimetric.ai/storageregions": {"get", "list", "patch", "watch"},
			"core/namespaces":                         child,
			"core/serviceaccounts":                    child,
			"core/configmaps":                         child,
			"core/services":                           child,
			"core/resourcequotas":                     child,
			"core/secrets":                            child,
			"apps/deployments":                        child,
			"networking.k8s.io/networkpolicies":       child,
			"batch/cronjobs":                          child,
			// Removed when the operator is started without a gateway.
			"gateway.networking.k8s.io/httproutes": {"create", "delete", "get", "list", "patch", "watch"},
			// Listed uncached while ingest is not available, to tell a
			// pod stuck on its image or on no node (Stalled).
			"core/pods": {"list"},
			// Removed when autoscaling is turned off, and when one replica
			// is wanted: the only deletes the operator makes.
			"autoscaling/horizontalpodautoscalers": {"create", "delete", "get", "list", "patch", "watch"},
			"policy/poddisruptionbudgets":          {"create", "delete", "get", "list", "patch", "watch"},
			"events.k8s.io/events":                 {"create", "patch"},
		}},
		{"the leader election Role", "leader_election_role.yaml", map[string][]string{
			// client-go's lease lock: read, create, renew.
			"coordination.k8s.io/leases": {"create", "get", "update"},
			// The leader's changes, recorded as events on the Lease.
			"core/events": {"create", "patch"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := grants(configRules(t, tt.file))
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("config/rbac/%s grants other verbs than the code uses (-used +granted):\n%s", tt.file, diff)
			}
			for key, verbs := range got {
				if slices.Contains(verbs, "update") && !strings.HasSuffix(key, "/finalizers") && key != "coordination.k8s.io/leases" {
					t.Errorf("%s is granted update; the operator writes by server-side apply and patches", key)
				}
			}
		})
	}
}
