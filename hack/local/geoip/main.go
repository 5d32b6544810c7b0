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

// Command geoip writes the GeoIP database `make run` gives the local ingest
// processes (--geoip-db), so that events sent locally get a location: a
// MaxMind-format City database (internal/ingest/geoip/geoiptest) of the
// loopback addresses local requests come from.
//
//	go run ./hack/local/geoip FILE
//
// 127.0.0.0/8 and ::1 are Berlin (DE-BE), except 127.1.0.0/16, which is
// San Francisco (US-CA): `curl --interface 127.1.0.1 ...` is a visitor
// from there.
package main

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"

	"github.com/millimetric/tenant-operator/internal/ingest/geoip/geoiptest"
)

// entries are the local database's networks, broadest first: a narrower
// network inserted later takes its addresses over.
var entries = []geoiptest.Entry{
	{Prefix: netip.MustParsePrefix("127.0.0.0/8"), Country: "DE", Subdivision: "BE", City: "Berlin"},
	{Prefix: netip.MustParsePrefix("::1/128"), Country: "DE", Subdivision: "BE", City: "Berlin"},
	{Prefix: netip.MustParsePrefix("127.1.0.0/16"), Country: "US", Subdivision: "CA", City: "San Francisco"},
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: geoip FILE")
		os.Exit(2)
	}
	path := os.Args[1]
	err := os.MkdirAll(filepath.Dir(path), 0o700)
	if err == nil {
		err = geoiptest.Build(path, entries)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "!! geoip: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf(">> geoip: %s: 127.0.0.0/8 and ::1 in Berlin (DE-BE), 127.1.0.0/16 in San Francisco (US-CA)\n", path)
}
