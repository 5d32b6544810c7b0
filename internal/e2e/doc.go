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

// Package e2e tests the operator as a process against a local control plane
// (etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kwok's
// fake nodes, from hack/local) and a local PostgreSQL: the behaviour that
// needs real controllers, such as Deployments becoming available, CronJobs
// firing Jobs, namespaces being garbage-collected and Pod Security admission.
//
// The operators run as the Helm chart's ServiceAccount, with exactly the
// chart's RBAC installed and a kubeconfig that impersonates that account
// (impersonation_test.go), so a rule the operator needs and the chart lacks
// fails a scenario.
//
// The tests are behind the e2e build tag; `make test-e2e` brings up the
// cluster and the database, builds the manager, and runs them with:
//
//	KUBECONFIG         the local cluster (as its admin)
//	E2E_MANAGER        the manager binary
//	E2E_INGEST         the ingest binary
//	E2E_HELM           the pinned helm binary
//	E2E_CHART          the chart to take the RBAC from and install; default dist/chart
//	E2E_PG_HOST, E2E_PG_PORT, E2E_PG_USER, E2E_PG_PASSWORD_FILE
//	                   the local PostgreSQL's superuser
//	E2E_LOG_DIR        where the operators' logs (and their kubeconfig) go
//	E2E_CAPTURE_HEALTH 1: the health walk writes the objects it meets into
//	                   internal/health/testdata
package e2e
