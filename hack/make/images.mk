# The manager and ingest images, built without a container engine: the
# binaries cross-compiled here (CGO_ENABLED=0, stamped with VERSION like
# `make build`), assembled with go-containerregistry (pinned in
# hack/images/go.mod) onto a base made of this repository's files and
# Debian's ca-certificates, and written as OCI image layouts. Included by
# the Makefile; uses its GO, VERSION and VERSION_LDFLAGS. See README,
# "Images".

# Not bin/: in a worktree that is a directory shared with other checkouts.
IMAGES_DIR ?= $(CURDIR)/out/images
IMAGE_ARCHES ?= amd64 arm64
# Every timestamp in the images: the commit's time, so the same commit
# gives the same digests.
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
IMAGE_REVISION ?= $(shell git rev-parse HEAD 2>/dev/null)
# make images-push REGISTRY=registry.example.com/millimetric [IMAGE_TAG=...]
REGISTRY ?=
IMAGE_TAG ?= $(VERSION)
# The tool runs from its own module, so the operator's go.mod does not
# carry go-containerregistry.
IMAGES_TOOL = cd hack/images && $(GO) run .

# `make tidy` (and so `make verify`) tidies the images module, and `make
# test` runs its tests (layout, SBOM, reproducibility, push to an
# in-process registry): seconds.
tidy: tidy-images
vet: vet-images
lint: lint-images
test: test-images-tool

.PHONY: tidy-images vet-images lint-images
tidy-images:
	cd hack/images && $(GO) mod tidy
vet-images:
	cd hack/images && $(GO) vet ./...
	$(GO) vet -tags podman ./internal/imagetest/...
# The podman test is behind its build tag, which `make lint` does not set.
lint-images: $(GOLANGCI_LINT)
	cd hack/images && $(GOLANGCI_LINT) run ./...
	$(GOLANGCI_LINT) run --build-tags podman ./internal/imagetest/...

##@ Images

.PHONY: images
images: ## Build the manager and ingest images for linux/amd64 and linux/arm64 as OCI layouts in IMAGES_DIR (out/images), with SBOMs; no container engine.
	@set -e; for arch in $(IMAGE_ARCHES); do \
		echo ">> building manager and ingest for linux/$$arch"; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(VERSION_LDFLAGS)' \
			-o $(IMAGES_DIR)/bin/linux_$$arch/manager ./cmd; \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '-s -w $(VERSION_LDFLAGS)' \
			-o $(IMAGES_DIR)/bin/linux_$$arch/ingest ./cmd/ingest; \
	done
	$(IMAGES_TOOL) build -bin-dir $(IMAGES_DIR)/bin -out $(IMAGES_DIR) -arches $(subst $(images_space),$(images_comma),$(strip $(IMAGE_ARCHES))) \
		-version $(VERSION) -revision '$(IMAGE_REVISION)' -epoch $(SOURCE_DATE_EPOCH)

.PHONY: images-push
images-push: images ## Push both images to REGISTRY (REGISTRY/tenant-operator:IMAGE_TAG, REGISTRY/ingest:IMAGE_TAG) with docker's or podman's login.
	@test -n "$(REGISTRY)" || { echo "images-push: set REGISTRY, e.g. make images-push REGISTRY=registry.example.com/millimetric"; exit 2; }
	$(IMAGES_TOOL) push -layout $(IMAGES_DIR)/manager -ref $(REGISTRY)/tenant-operator:$(IMAGE_TAG)
	$(IMAGES_TOOL) push -layout $(IMAGES_DIR)/ingest -ref $(REGISTRY)/ingest:$(IMAGE_TAG)

.PHONY: test-images-tool
test-images-tool: ## Test hack/images: the layouts, the base, the SBOMs, reproducibility, a push to an in-process registry.
	cd hack/images && $(GO) test $(GOTEST_FLAGS) ./...

.PHONY: test-images
test-images: images ## Run both images under rootful podman as the operator renders their pods, against a real PostgreSQL (needs root and podman).
	IMAGES_DIR=$(IMAGES_DIR) $(GO) test $(GOTEST_FLAGS) -tags podman -v -run . ./internal/imagetest/

images_comma := ,
images_space := $(subst ,, )
