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

// Package browsertest starts headless Chromium (Debian's package, which
// .ci/run installs) for the tests of what a visitor's browser runs: the
// SDK's own tests and the end-to-end suite's.
package browsertest

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"testing"

	"github.com/chromedp/chromedp"
)

// Chromium is Debian's chromium package's binary.
const Chromium = "/usr/bin/chromium"

// DesktopUA is a desktop Chrome's User-Agent. Headless Chromium's own says
// HeadlessChrome, which the ingest service rightly drops as a bot's.
const DesktopUA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36"

// Start starts Chromium with a fresh, empty profile (its own user data
// directory: no storage, no cookies) and returns its first tab; the
// browser ends with the test. Every *.test host name resolves to this
// machine, so each host:port a test serves is an origin of its own.
func Start(t testing.TB) context.Context {
	t.Helper()
	if _, err := os.Stat(Chromium); errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s is missing: apt-get install chromium", Chromium)
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(Chromium),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		// Without these, Chromium dials Google's services, which a closed
		// network refuses many times a second.
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.UserAgent(DesktopUA),
		chromedp.Flag("host-resolver-rules", "MAP *.test 127.0.0.1"),
	)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting %s: %v", Chromium, err)
	}
	return ctx
}
