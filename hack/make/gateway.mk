# The Gateway API implementation that `make run` and the e2e suite route
# ingest traffic through: Traefik, pinned in hack/tools/traefik like every
# other tool and run out of cluster against the local API server
# (hack/local/gateway.sh).

TRAEFIK := $(BIN)/traefik
TRAEFIK_DEPS := hack/tools/traefik/go.mod hack/tools/traefik/go.sum

# `make tools` builds traefik too; `make run` (local-up) and `make test-e2e`
# need it.
tools: $(TRAEFIK)
local-up: $(TRAEFIK)
test-e2e: $(TRAEFIK)

.PHONY: tidy-traefik-tools
tidy-traefik-tools:
	cd hack/tools/traefik && $(GO) mod tidy

# `make tidy` (and so `make verify`) tidies the traefik module too.
tidy: tidy-traefik-tools

# Unstripped, traefik is about 245 MB; -s -w and -trimpath leave out the
# symbol table, DWARF and the build machine's paths. The version stamp is the
# Go module's.
$(TRAEFIK): $(TRAEFIK_DEPS)
	@echo ">> building traefik into bin/ (first time only; about 15 minutes of CPU)"
	cd hack/tools/traefik && \
	version=$$($(GO) list -m -f '{{.Version}}' github.com/traefik/traefik/v3) && \
	$(GO) build -trimpath -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$$version" \
		-o $@ github.com/traefik/traefik/v3/cmd/traefik
