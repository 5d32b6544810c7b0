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

# The base both images start from, as `make images` assembles it
# (hack/images): /etc/passwd and /etc/group with nonroot (65532),
# nsswitch.conf, the CA bundle made of Debian's ca-certificates package's
# certificates and its copyright file, /tmp (1777) and nonroot's home. No
# base image is pulled for it; the builder's ca-certificates is the
# package it is made of.
COPY hack/images/go.mod hack/images/go.sum hack/images/
RUN cd hack/images && go mod download
COPY hack/images/ hack/images/
RUN cd hack/images && go run . base -root /base

ENV CGO_ENABLED=0
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/millimetric/tenant-operator/internal/version.Version=${VERSION}" -o manager ./cmd
RUN GOOS=${TARGETOS:-linux} GOARCH=${TARGETARCH} go build -trimpath \
      -ldflags "-s -w -X github.com/millimetric/tenant-operator/internal/version.Version=${VERSION}" -o ingest ./cmd/ingest

# The ingest service every tenant's Deployment runs (the operator's
# --ingest-image): `docker build --target ingest -t ghcr.io/millimetric/ingest:TAG .`
# Released with the operator, under the same tag. The same files, user,
# environment and entrypoint as `make images`' ingest image; that one also
# carries its SBOM in /usr/share/sbom (with buildx, --sbom=true attests one).
FROM scratch AS ingest
COPY --from=builder /base/ /
COPY --from=builder --chown=65532:65532 /base/home/nonroot/ /home/nonroot/
COPY --from=builder /workspace/ingest /ingest
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/ingest"]

# The manager runs both the operator and, as `manager retention`, the
# retention Jobs, so one small image serves both. The default target.
FROM scratch AS manager
COPY --from=builder /base/ /
COPY --from=builder --chown=65532:65532 /base/home/nonroot/ /home/nonroot/
COPY --from=builder /workspace/manager /manager
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
WORKDIR /
USER 65532:65532
ENTRYPOINT ["/manager"]
