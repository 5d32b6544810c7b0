/*
Copyright 2026 Millimetric, Inc.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package version is the version the binaries were built as, stamped at
// link time:
//
//	go build -ldflags "-X github.com/millimetric/tenant-operator/internal/version.Version=v0.1.0" ./cmd
//
// The Makefile's build and docker-build targets and the Dockerfile stamp it
// (from `git describe`); an unstamped build says "dev".
package version

import "slices"

// Version is the build's version; "dev" unless stamped.
var Version = "dev"

// Line is what `<program> --version` prints: the program's name and
// Version.
func Line(program string) string {
	return program + " " + Version + "\n"
}

// Requested says whether args (without the program name) ask for the
// version: -version or --version before any "--". It is for a program whose
// own flag parsing does not know that flag, and so would refuse it.
func Requested(args []string) bool {
	if end := slices.Index(args, "--"); end >= 0 {
		args = args[:end]
	}
	return slices.ContainsFunc(args, func(a string) bool { return a == "-version" || a == "--version" })
}
