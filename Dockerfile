# Build the manager and ingest binaries: static, no cgo. The builder runs on
# the build machine's platform and cross-compiles for the target's
# (`docker buildx build --platform linux/arm64,linux/amd64 ...`), so no
# emulated Go toolchain is needed.
FROM --platform=$BUILDPLATFORM golang:1.26 AS builder
ARG TARGETOS
ARG TARGETARCH
# The version `manager --version` and `ingest --version` print; the
# Makefile's docker-build passes `git describe`.
ARG VERSION=dev

WORKDIR /workspace
# Cache the module downloads in their own layer.
COPY go.mod go.sum ./
RUN go mod download

COPY cmd/ cmd/
COPY api/ api/
COPY controllers/ controllers/
COPY internal/ internal/

ENV CGO_ENABLED=0
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/millimetric/tenant-operator/internal/version.Version=${VERSION}" -o manager ./cmd
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/millimetric/tenant-operator/internal/version.Version=${VERSION}" -o ingest ./cmd/ingest

# The ingest service every tenant's Deployment runs (the operator's
# --ingest-image): `docker build --target ingest -t ghcr.io/millimetric/ingest:TAG .`
# Released with the operator, under the same tag.
FROM gcr.io/distroless/static:nonroot AS ingest
WORKDIR /
COPY --from=builder /workspace/ingest .
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/ingest"]

# The manager runs both the operator and, as `manager retention`, the
# retention Jobs, so one small image serves both. The default target.
FROM gcr.io/distroless/static:nonroot AS manager
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532

ENTRYPOINT ["/manager"]
