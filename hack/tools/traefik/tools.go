//go:build tools

// Package traefik records the traefik command so that go.mod pins it.
package traefik

import _ "github.com/traefik/traefik/v3/cmd/traefik"
