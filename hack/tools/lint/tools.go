//go:build tools

// Package lint records golangci-lint so that go.mod pins it.
package lint

import _ "github.com/golangci/golangci-lint/v2/cmd/golangci-lint"
