//go:build tools

// Package prometheus records promtool so that go.mod pins it.
package prometheus

import _ "github.com/prometheus/prometheus/cmd/promtool"
