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

// Package geoiptest writes small MaxMind-format City databases for tests,
// so that no binary database is committed and every test says which
// addresses it expects where.
package geoiptest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// DatabaseType is the type written in the test databases' metadata.
const DatabaseType = "Millimetric-Test-City"

// Entry is one network of a test database, written in the GeoIP2-City
// layout. Empty fields are left out of the record, as in the real
// databases, where many networks have a country but no city.
type Entry struct {
	// Prefix is the network, IPv4 or IPv6.
	Prefix netip.Prefix
	// Country is the ISO 3166-1 alpha-2 code (country.iso_code), "DE".
	Country string
	// Subdivision is the first subdivision's ISO code without the
	// country, as MaxMind writes it (subdivisions[0].iso_code), "BE".
	Subdivision string
	// City is the city's English name (city.names.en), "Berlin".
	City string
}

// Write builds a City database of entries under t.TempDir() and returns
// its path. Reserved networks (192.0.2.0/24, 2001:db8::/32, ...) are
// allowed, so tests can use documentation addresses. It fails the test on
// any error.
func Write(t testing.TB, entries []Entry) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "city.mmdb")
	WriteFile(t, path, entries)
	return path
}

// WriteFile builds a City database of entries at path, as Write does, for
// tests that need the file somewhere in particular (to replace a database
// in place, say).
func WriteFile(t testing.TB, path string, entries []Entry) {
	t.Helper()
	if err := Build(path, entries); err != nil {
		t.Fatalf("geoiptest: %v", err)
	}
}

// Build writes a City database of entries at path, as WriteFile does, and
// returns any error instead of failing a test: `make run` writes its local
// database with it (hack/local/geoip).
func Build(path string, entries []Entry) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            DatabaseType,
		Description:             map[string]string{"en": "Millimetric test City database"},
		IncludeReservedNetworks: true,
		Languages:               []string{"en"},
		RecordSize:              24,
	})
	if err != nil {
		return fmt.Errorf("new tree: %w", err)
	}
	for _, e := range entries {
		if err := tree.Insert(ipNet(e.Prefix), record(e)); err != nil {
			return fmt.Errorf("insert %s: %w", e.Prefix, err)
		}
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := tree.WriteTo(f); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}

// ipNet converts a netip.Prefix to the net.IPNet mmdbwriter takes, keeping
// an IPv4 prefix in its 4-byte form so the writer places it in the IPv4
// subtree.
func ipNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{
		IP:   p.Addr().AsSlice(),
		Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
	}
}

// record is e as a GeoIP2-City record.
func record(e Entry) mmdbtype.Map {
	rec := mmdbtype.Map{}
	if e.Country != "" {
		rec["country"] = mmdbtype.Map{"iso_code": mmdbtype.String(e.Country)}
	}
	if e.Subdivision != "" {
		rec["subdivisions"] = mmdbtype.Slice{
			mmdbtype.Map{"iso_code": mmdbtype.String(e.Subdivision)},
		}
	}
	if e.City != "" {
		rec["city"] = mmdbtype.Map{"names": mmdbtype.Map{"en": mmdbtype.String(e.City)}}
	}
	return rec
}
