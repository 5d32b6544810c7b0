# Alerting: the Prometheus rules and Argo CD health checks the chart ships
# (dist/chart/files/alerts, dist/chart/files/health), and promtool, pinned in
# hack/tools/prometheus like every other tool, to check and unit-test the
# rules. The health checks are tested by `go test ./internal/health/`.

PROMTOOL := $(BIN)/promtool
PROMTOOL_DEPS := hack/tools/prometheus/go.mod hack/tools/prometheus/go.sum
ALERTS_DIR := dist/chart/files/alerts

# `make tools` builds promtool too, and `make test` (so CI) checks and
# tests the rules: a few seconds once promtool is built.
tools: $(PROMTOOL)
test: alerts-check

##@ Alerting

.PHONY: alerts-check
alerts-check: $(PROMTOOL) ## Check the alert rules and run their unit tests (promtool test rules).
	$(PROMTOOL) check rules $(ALERTS_DIR)/rules.yaml
	cd $(ALERTS_DIR) && $(PROMTOOL) test rules rules_test.yaml

.PHONY: tidy-prometheus-tools
tidy-prometheus-tools:
	cd hack/tools/prometheus && $(GO) mod tidy

# `make tidy` (and so `make verify`) tidies the promtool module too.
tidy: tidy-prometheus-tools

# remove_all_sd leaves out Prometheus' service discovery plugins (cloud SDKs),
# which checking and testing rules never use. The version stamp is the Go
# module's (v0.316.0 is Prometheus 3.16.0).
$(PROMTOOL): $(PROMTOOL_DEPS)
	@echo ">> building promtool into bin/ (first time only; a few minutes)"
	cd hack/tools/prometheus && \
	version=$$($(GO) list -m -f '{{.Version}}' github.com/prometheus/prometheus) && \
	$(GO) build -tags remove_all_sd -ldflags "-s -w -X github.com/prometheus/common/version.Version=$$version" \
		-o $@ github.com/prometheus/prometheus/cmd/promtool
