# The scale benchmark (issue 12): the operator at N tenants on a local
# control plane of its own, beside the floor of the same objects applied
# straight through the API server, and PostgreSQL at N tenants. Included by
# the Makefile; uses its BIN, GO and CLUSTER_BINS. See README, "Scale".

# N tenants; BENCH_ARGS passes flags to hack/bench-scale (e.g.
# BENCH_ARGS='-window 60s -samples 50'; `go run ./hack/bench-scale operator
# -h` lists them).
N ?= 100
REPLICAS ?= 2
WORKERS ?= 4
BENCH_ARGS ?=

##@ Scale

.PHONY: bench-scale
bench-scale: manifests generate $(CLUSTER_BINS) $(KUSTOMIZE) ## The operator at N tenants (default 100) beside the floor: time to Ready, RSS and heap per tenant, work at rest, spec-change latency, deletion, CPU.
	N=$(N) REPLICAS=$(REPLICAS) WORKERS=$(WORKERS) hack/bench-scale/run.sh operator $(BENCH_ARGS)

.PHONY: bench-scale-pg
bench-scale-pg: ## PostgreSQL at N tenants (default 100) on 365-day plans: provisioning time, relations, one day's retention run across all.
	N=$(N) WORKERS=$(WORKERS) hack/bench-scale/run.sh pg $(BENCH_ARGS)
