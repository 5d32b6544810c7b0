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

// Package sdk holds the Millimetric SDK, the tracker script a customer's
// page loads from its tenant's ingest host, as built: the bytes the ingest
// service serves are embedded here from dist/, which `make sdk` builds from
// src/mm.js with the pinned esbuild and the flags in builds.txt, and which
// is committed so that `go build` needs no npm. The tests check that the
// committed builds are what esbuild makes from the source.
//
// There are two builds. The default one ignores Global Privacy Control;
// mm.gpc.js sends nothing when the browser says navigator.globalPrivacyControl
// is true. Honouring GPC is the tenant's choice, made in its spec rather than
// in the page's markup, so the server picks the build: For(respectGPC).
//
// What the script sends (the event contract the ingest service decodes) is
// described in README.md beside this file.
package sdk
