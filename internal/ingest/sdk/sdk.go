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

package sdk

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"strings"
)

// The builds, as `make sdk` wrote them. Naming the files (rather than
// embedding dist/) makes a missing build fail to compile.
var (
	//go:embed dist/mm.js
	defaultBody []byte
	//go:embed dist/mm.gpc.js
	gpcBody []byte
)

// Script is one build of the SDK.
type Script struct {
	// Name is the build's stable file name: "mm.js" or "mm.gpc.js".
	Name string
	// Versioned is the name of this exact build, for a URL that can be
	// cached as immutable: Name with the first 10 hex digits of the
	// body's SHA-256 before ".js" ("mm.0123456789.js").
	Versioned string
	// Body is the minified script. It is shared: callers must not modify it.
	Body []byte
	// ETag is a quoted strong entity tag for Body: the first 32 hex digits
	// of its SHA-256, in double quotes.
	ETag string
}

// builds are the two builds, made once: index 0 ignores Global Privacy
// Control, index 1 honours it.
var builds = [2]Script{newScript("mm.js", defaultBody), newScript("mm.gpc.js", gpcBody)}

// newScript names and tags a build by the SHA-256 of its body, so that its
// versioned name and ETag change exactly when its bytes do.
func newScript(name string, body []byte) Script {
	sum := sha256.Sum256(body)
	digest := hex.EncodeToString(sum[:])
	return Script{
		Name:      name,
		Versioned: strings.TrimSuffix(name, ".js") + "." + digest[:10] + ".js",
		Body:      body,
		ETag:      `"` + digest[:32] + `"`,
	}
}

// For returns the build a tenant is served: the GPC-honouring build when
// respectGPC.
func For(respectGPC bool) Script {
	if respectGPC {
		return builds[1]
	}
	return builds[0]
}

// All returns both builds, the default one first.
func All() []Script {
	return []Script{builds[0], builds[1]}
}
