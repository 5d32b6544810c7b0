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

// Command ingest is the ingest service every tenant's Deployment runs: it
// takes events over HTTP, keeps what the privacy policy allows of them, and
// writes them into the tenant's schema. See internal/ingest/app.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/millimetric/tenant-operator/internal/ingest/app"
	"github.com/millimetric/tenant-operator/internal/version"
)

func main() {
	// Before app.Main, whose flags would refuse it and which needs a
	// configuration and credentials.
	if version.Requested(os.Args[1:]) {
		fmt.Print(version.Line("ingest"))
		os.Exit(app.ExitOK)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	code := app.Main(ctx, os.Args[1:], os.Getenv, os.Stderr)
	stop()
	os.Exit(code)
}
