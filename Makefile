# Millimetric tenant operator.
#
# Every tool is built from pinned Go module versions into bin/ on first use
# (hack/tools/go.mod, hack/tools/lint/go.mod): no download site is needed,
# only the Go module proxy.

# Images the manager and the ingest service are built and deployed as;
# they are released together, under one tag. The defaults are the
# operator's own (render.DefaultImageTag, the chart's appVersion);
# internal/chart's TestImageDefaultsAgreeEverywhere checks they agree.
IMG ?= ghcr.io/millimetric/tenant-operator:0.1.0
INGEST_IMG ?= ghcr.io/millimetric/ingest:0.1.0

# The version stamped into the binaries (`manager --version`, `ingest
# --version`): the nearest tag, the commit, and -dirty for uncommitted
# changes; "dev" outside a git checkout.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
VERSION_LDFLAGS := -X github.com/millimetric/tenant-operator/internal/version.Version=$(VERSION)

BIN := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)
# envtest looks for etcd and kube-apiserver here.
export KUBEBUILDER_ASSETS := $(BIN)

GO ?= go
GOTEST_FLAGS ?= -count=1

K8S_VERSION := v1.37.2
# kubectl refuses to parse a version without the stamp.
K8S_LDFLAGS := -s -w \
	-X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 \
	-X k8s.io/component-base/version.gitMinor=37 \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/client-go/pkg/version.gitMajor=1 \
	-X k8s.io/client-go/pkg/version.gitMinor=37

TOOLS_DEPS := hack/tools/go.mod hack/tools/go.sum

CONTROLLER_GEN := $(BIN)/controller-gen
KUSTOMIZE := $(BIN)/kustomize
GOLANGCI_LINT := $(BIN)/golangci-lint
KUBECTL := $(BIN)/kubectl
CLUSTER_BINS := $(BIN)/etcd $(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(KUBECTL) $(BIN)/kwok $(BIN)/kwokctl
TOOLS := $(CONTROLLER_GEN) $(KUSTOMIZE) $(GOLANGCI_LINT) $(CLUSTER_BINS)

.DEFAULT_GOAL := help

# Targets of a concern of their own (the Helm chart, alerting) live in
# hack/make/*.mk, each pinning its tools like the ones below.
-include $(wildcard hack/make/*.mk)

##@ General

.PHONY: help
help: ## Show this help.
	@awk 'BEGIN {FS = ":.*##"; printf "Usage:\n  make \033[36m<target>\033[0m\n"} /^[a-zA-Z_0-9-]+:.*?##/ { printf "  \033[36m%-16s\033[0m %s\n", $$1, $$2 } /^##@/ { printf "\n\033[1m%s\033[0m\n", substr($$0, 5) } ' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: $(CONTROLLER_GEN) ## Generate the CRDs and RBAC from the markers.
	$(CONTROLLER_GEN) rbac:roleName=manager-role crd paths="./api/..." paths="./controllers/..." output:crd:artifacts:config=config/crd/bases

.PHONY: generate
generate: $(CONTROLLER_GEN) ## Generate the deepcopy functions.
	$(CONTROLLER_GEN) object:headerFile="hack/boilerplate.go.txt" paths="./api/..."

.PHONY: fmt
fmt: ## Format the code.
	$(GO) fmt ./...

.PHONY: vet
vet: ## Vet the code, the end-to-end tests included.
	$(GO) vet -tags e2e ./...

.PHONY: lint
lint: $(GOLANGCI_LINT) ## Run golangci-lint.
	$(GOLANGCI_LINT) run ./...

.PHONY: tidy
tidy: ## Tidy every module.
	$(GO) mod tidy
	cd hack/tools && $(GO) mod tidy
	cd hack/tools/lint && $(GO) mod tidy

.PHONY: verify
verify: manifests generate fmt tidy vet lint ## Regenerate everything and fail on any diff or new file.
	@if [ -n "$$(git status --porcelain --untracked-files=all)" ]; then \
		echo "verify: generated or formatted files differ from what is committed:"; \
		git status --porcelain --untracked-files=all; git --no-pager diff --stat; exit 1; \
	fi
	@echo "verify: everything generated is up to date"

.PHONY: test
test: manifests generate $(CLUSTER_BINS) $(KUSTOMIZE) ## Run the unit and integration tests (real kube-apiserver, real PostgreSQL).
	$(GO) test $(GOTEST_FLAGS) ./...

.PHONY: bench
bench: ## Run the benchmarks and print their figures.
	$(GO) test -run '^$$' -bench . -benchmem ./...

.PHONY: bench-ingest
bench-ingest: ## Events/s over HTTP into PostgreSQL beside a plain COPY floor, and p99 latency at half the peak (real PostgreSQL).
	$(GO) test -run '^$$' -bench Ingest -benchtime 1x ./internal/ingest/app/

.PHONY: bench-retention
bench-retention: ## Time dropping expired day partitions against DELETE of the same rows (real PostgreSQL).
	$(GO) test -run '^$$' -bench Retention -benchtime 3x ./internal/storage/

##@ Build

.PHONY: build
build: generate ## Build the manager and ingest binaries, stamped with VERSION.
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(BIN)/manager ./cmd
	$(GO) build -ldflags '$(VERSION_LDFLAGS)' -o $(BIN)/ingest ./cmd/ingest

.PHONY: run-kubeconfig
run-kubeconfig: manifests generate ## Run the manager against the cluster in your kubeconfig.
	$(GO) run ./cmd

.PHONY: docker-build
docker-build: ## Build the manager and ingest images, stamped with VERSION (needs a Docker engine).
	docker build --build-arg VERSION=$(VERSION) --target manager -t $(IMG) .
	docker build --build-arg VERSION=$(VERSION) --target ingest -t $(INGEST_IMG) .

##@ Local

LOCAL_KUBECONFIG = $(CURDIR)/.run/kwok/clusters/millimetric/kubeconfig.yaml

.PHONY: local-up
local-up: export KUBECACHEDIR := $(CURDIR)/.run/kwok/kube-cache
local-up: manifests $(CLUSTER_BINS) $(KUSTOMIZE) ## Start the local control plane, PostgreSQL and the gateway (Traefik), install the CRDs, apply the sample regions and tenants.
	hack/local/cluster.sh up
	hack/local/postgres.sh up
	$(KUSTOMIZE) build config/crd | $(KUBECTL) --kubeconfig $(LOCAL_KUBECONFIG) apply --server-side -f -
	hack/local/regions.sh
	hack/local/gateway.sh up

# The GeoIP database the local ingest processes locate visitors with
# (hack/local/geoip).
LOCAL_GEOIP_DB = $(CURDIR)/.run/geoip/city.mmdb
# The tenants' default ingest host names are <tenant>.$(LOCAL_INGEST_DOMAIN),
# routed by the local gateway (hack/local/gateway.sh); curl and browsers
# resolve *.localhost to loopback.
LOCAL_INGEST_DOMAIN = millimetric.localhost

.PHONY: run
run: generate local-up ## Run the manager against a local control plane and PostgreSQL with the samples applied ('make down' removes them).
	$(GO) build -o $(BIN)/ingest ./cmd/ingest
	$(GO) run ./hack/local/geoip $(LOCAL_GEOIP_DB)
	@echo ">> operator: running against $(LOCAL_KUBECONFIG); Ctrl-C stops it, 'make down' removes the cluster, the database, the gateway and the ingest processes"
	@echo ">> ingest: one process per non-suspended tenant on its Service's address once the operator has made its objects; the gateway: $$(hack/local/gateway.sh env | sed -n 's/^GATEWAY_URL=//p')"
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(GO) run ./hack/local/ingest up $(BIN)/ingest --geoip-db=$(LOCAL_GEOIP_DB) & \
	KUBECONFIG=$(LOCAL_KUBECONFIG) $(GO) run ./cmd --metrics-bind-address=0 --health-probe-bind-address=127.0.0.1:18081 --zap-encoder=console --zap-time-encoding=iso8601 \
		--ingest-gateway=millimetric-edge/ingest/http --ingest-domain=$(LOCAL_INGEST_DOMAIN) --ingest-trusted-proxies=127.0.0.1/32 \
		$(if $(filter disable require,$(LOCAL_PG_SSLMODE)),--allow-insecure-storage)

.PHONY: down
down: ## Stop the local ingest processes and the gateway, delete the local control plane and PostgreSQL.
	$(GO) run ./hack/local/ingest down
	hack/local/gateway.sh down
	CLUSTER_NAME=millimetric-e2e hack/local/gateway.sh down
	hack/local/cluster.sh down
	CLUSTER_NAME=millimetric-e2e hack/local/cluster.sh down
	hack/local/postgres.sh down
	hack/local/regions.sh clean
	rm -rf .run/geoip

.PHONY: test-e2e
test-e2e: manifests generate $(CLUSTER_BINS) $(KUSTOMIZE) ## End-to-end tests on a local control plane of their own; E2E_ARGS='-run Leader' narrows them.
	hack/local/test-e2e.sh -v $(E2E_ARGS)

##@ Deployment

.PHONY: install
install: manifests $(KUSTOMIZE) $(KUBECTL) ## Install the CRDs into the cluster in your kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) apply --server-side -f -

.PHONY: uninstall
uninstall: manifests $(KUSTOMIZE) $(KUBECTL) ## Remove the CRDs from the cluster in your kubeconfig.
	$(KUSTOMIZE) build config/crd | $(KUBECTL) delete --ignore-not-found -f -

.PHONY: deploy
deploy: manifests $(KUSTOMIZE) $(KUBECTL) ## Deploy the operator (image IMG; tenants' ingest INGEST_IMG, their retention IMG) to the cluster in your kubeconfig.
	cd config/manager && $(KUSTOMIZE) edit set image controller=$(IMG) ingest=$(INGEST_IMG)
	$(KUSTOMIZE) build config/default | $(KUBECTL) apply --server-side -f -

.PHONY: undeploy
undeploy: $(KUSTOMIZE) $(KUBECTL) ## Remove the operator from the cluster in your kubeconfig.
	$(KUSTOMIZE) build config/default | $(KUBECTL) delete --ignore-not-found -f -

##@ Tools

.PHONY: tools
tools: $(TOOLS) ## Build every pinned tool into bin/ (first time: about 10 minutes).

# Each tool is rebuilt when its pinning module changes.
$(BIN)/kube-apiserver $(BIN)/kube-controller-manager $(BIN)/kube-scheduler $(BIN)/kubectl: $(TOOLS_DEPS)
	@echo ">> building $(@F) $(K8S_VERSION) from source into bin/ (first time only; the Kubernetes binaries take several minutes)"
	cd hack/tools && $(GO) build -ldflags '$(K8S_LDFLAGS)' -o $@ k8s.io/kubernetes/cmd/$(@F)

$(BIN)/etcd: $(TOOLS_DEPS)
	@echo ">> building etcd from source into bin/ (first time only)"
	cd hack/tools && $(GO) build -ldflags '-s -w' -o $@ go.etcd.io/etcd/server/v3

$(BIN)/kwok $(BIN)/kwokctl: $(TOOLS_DEPS)
	@echo ">> building $(@F) from source into bin/ (first time only)"
	cd hack/tools && $(GO) build -ldflags '-s -w' -o $@ sigs.k8s.io/kwok/cmd/$(@F)

$(CONTROLLER_GEN): $(TOOLS_DEPS)
	@echo ">> building controller-gen into bin/"
	cd hack/tools && $(GO) build -o $@ sigs.k8s.io/controller-tools/cmd/controller-gen

$(KUSTOMIZE): $(TOOLS_DEPS)
	@echo ">> building kustomize into bin/"
	cd hack/tools && $(GO) build -o $@ sigs.k8s.io/kustomize/kustomize/v5

$(GOLANGCI_LINT): hack/tools/lint/go.mod hack/tools/lint/go.sum
	@echo ">> building golangci-lint into bin/"
	cd hack/tools/lint && $(GO) build -o $@ github.com/golangci/golangci-lint/v2/cmd/golangci-lint
