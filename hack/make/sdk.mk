# The Millimetric SDK (internal/ingest/sdk): src/mm.js, built by esbuild into
# dist/ with the flags in builds.txt. esbuild is pinned in
# hack/tools/sdk/package-lock.json and installed from the npm registry (its
# native binary is an optional dependency, @esbuild/<os>-<arch>, so no
# install script and no download site is needed); bin/esbuild is a copy of
# that binary.

ESBUILD := $(BIN)/esbuild
ESBUILD_DEPS := hack/tools/sdk/package.json hack/tools/sdk/package-lock.json
SDK_DIR := internal/ingest/sdk
# builds.txt without its comments: one line per build, the file name in dist/
# and then esbuild's flags.
SDK_BUILDS = grep -v -e '^\#' -e '^[[:space:]]*$$' $(SDK_DIR)/builds.txt

# `make tools` installs esbuild too, and `make test` needs it: sdk_test.go
# rebuilds the SDK to compare with what is committed. verify rebuilds dist/
# and so fails when the committed builds are not the source's.
tools: $(ESBUILD)
test: $(ESBUILD)
verify: sdk

##@ SDK

.PHONY: sdk
sdk: $(ESBUILD) ## Build the SDK (internal/ingest/sdk/dist) from src/mm.js with the flags in builds.txt.
	@$(SDK_BUILDS) | while read -r out flags; do \
		$(ESBUILD) $(SDK_DIR)/src/mm.js $$flags --log-level=warning --outfile=$(SDK_DIR)/dist/$$out || exit 1; \
	done

.PHONY: sdk-size
sdk-size: sdk ## Print each SDK build's size in bytes: source, minified, and minified with gzip -9.
	@printf '%-10s %8s %8s %8s\n' build source minified gzip-9
	@$(SDK_BUILDS) | while read -r out flags; do \
		printf '%-10s %8d %8d %8d\n' $$out $$(wc -c < $(SDK_DIR)/src/mm.js) \
			$$(wc -c < $(SDK_DIR)/dist/$$out) $$(gzip -9 -n -c $(SDK_DIR)/dist/$$out | wc -c); \
	done

# npm ci installs exactly the lock file's packages; --ignore-scripts because
# esbuild's postinstall only checks (or copies) the binary that the optional
# dependency already holds. The version check catches a lock file that pins
# something else than the binary copied.
$(ESBUILD): $(ESBUILD_DEPS)
	@echo ">> installing esbuild from the npm registry (hack/tools/sdk/package-lock.json) into bin/"
	cd hack/tools/sdk && npm ci --ignore-scripts --no-audit --no-fund
	platform=$$(node -p 'process.platform + "-" + process.arch') && \
	pinned=$$(node -p 'require("./hack/tools/sdk/package-lock.json").packages["node_modules/esbuild"].version') && \
	cp hack/tools/sdk/node_modules/@esbuild/$$platform/bin/esbuild $@.tmp && \
	test "$$($@.tmp --version)" = "$$pinned" && mv $@.tmp $@
