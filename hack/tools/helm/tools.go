//go:build tools

// Package helm records the helm command so that go.mod pins it. Helm has a
// module of its own: its Kubernetes libraries would otherwise be resolved
// together with the Kubernetes binaries' in hack/tools and move them.
package helm

import _ "helm.sh/helm/v3/cmd/helm"
