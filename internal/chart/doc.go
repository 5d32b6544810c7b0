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

// Package chart holds no code: its tests render the Helm chart in dist/chart
// with the pinned helm (bin/helm, or $HELM) and check what it installs
// against the generated manifests in config/: the ClusterRole's rules are
// exactly config/rbac/role.yaml's, the CRDs are config/crd/bases', and the
// manager runs restricted, highly available and with the flags its values
// ask for. They also build config/default with the pinned kustomize
// (bin/kustomize): its images, and its monitoring as secure as the chart's
// once its commented-out parts are turned on.
package chart
