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

package geoip_test

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/maxmind/mmdbwriter"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
	"github.com/millimetric/tenant-operator/internal/ingest/geoip"
	"github.com/millimetric/tenant-operator/internal/ingest/geoip/geoiptest"
)

// openTestDB opens a database with a city in Berlin (IPv4 and IPv6), a
// network known only to its country, and nothing else.
func openTestDB(t *testing.T) *geoip.DB {
	t.Helper()
	path := geoiptest.Write(t, []geoiptest.Entry{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "DE", Subdivision: "BE", City: "Berlin"},
		{Prefix: netip.MustParsePrefix("2001:db8:1::/48"), Country: "FR", Subdivision: "IDF", City: "Paris"},
		{Prefix: netip.MustParsePrefix("198.51.100.0/24"), Country: "US"},
	})
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db
}

func TestLookup(t *testing.T) {
	db := openTestDB(t)
	tests := []struct {
		name   string
		addr   string
		want   event.Location
		wantOK bool
	}{
		{
			name:   "an IPv4 address in a city network has its country, region and city",
			addr:   "192.0.2.44",
			want:   event.Location{Country: "DE", Region: "DE-BE", City: "Berlin"},
			wantOK: true,
		},
		{
			name:   "an IPv6 address in a city network has its country, region and city",
			addr:   "2001:db8:1:2::7",
			want:   event.Location{Country: "FR", Region: "FR-IDF", City: "Paris"},
			wantOK: true,
		},
		{
			name:   "an IPv4-mapped IPv6 address is looked up as its IPv4 address",
			addr:   "::ffff:192.0.2.44",
			want:   event.Location{Country: "DE", Region: "DE-BE", City: "Berlin"},
			wantOK: true,
		},
		{
			name:   "a network known only to its country has no region or city",
			addr:   "198.51.100.9",
			want:   event.Location{Country: "US"},
			wantOK: true,
		},
		{
			name: "an IPv4 address outside every network is unknown",
			addr: "203.0.113.1",
		},
		{
			name: "an IPv6 address outside every network is unknown",
			addr: "2001:db8:2::1",
		},
		{
			name: "the zero address is unknown",
			addr: "",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var addr netip.Addr
			if tt.addr != "" {
				addr = netip.MustParseAddr(tt.addr)
			}
			got, ok := db.Lookup(addr)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Lookup(%s) = %+v, %v; want %+v, %v", tt.addr, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func TestLookupAfterCloseIsUnknown(t *testing.T) {
	path := geoiptest.Write(t, []geoiptest.Entry{
		{Prefix: netip.MustParsePrefix("192.0.2.0/24"), Country: "DE"},
	})
	db, err := geoip.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if loc, ok := db.Lookup(netip.MustParseAddr("192.0.2.1")); ok {
		t.Errorf("Lookup after Close = %+v, true; want unknown", loc)
	}
}

func TestOpenMetadata(t *testing.T) {
	db := openTestDB(t)
	if db.Type() != geoiptest.DatabaseType {
		t.Errorf("Type() = %q, want %q", db.Type(), geoiptest.DatabaseType)
	}
	if !strings.HasSuffix(db.Path(), "city.mmdb") {
		t.Errorf("Path() = %q, want the file opened", db.Path())
	}
}

func TestOpenBadFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	tests := []struct {
		name     string
		path     string
		wantText string
	}{
		{
			name:     "a missing file is refused, naming the file",
			path:     filepath.Join(dir, "missing.mmdb"),
			wantText: "no such file",
		},
		{
			name:     "an empty file is refused as empty",
			path:     write("empty.mmdb", nil),
			wantText: "empty",
		},
		{
			name:     "a file that is not a MaxMind DB is refused as such",
			path:     write("text.mmdb", []byte("this is not a database\n")),
			wantText: "not a valid MaxMind DB file",
		},
		{
			name:     "a directory is refused",
			path:     dir,
			wantText: "geoip",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			db, err := geoip.Open(tt.path)
			if err == nil {
				_ = db.Close()
				t.Fatalf("Open(%s) succeeded, want an error", tt.path)
			}
			if !strings.Contains(err.Error(), tt.path) || !strings.Contains(err.Error(), tt.wantText) {
				t.Errorf("Open(%s) error = %q, want it to name the file and say %q", tt.path, err, tt.wantText)
			}
		})
	}
}

func TestOpenIPv4OnlyDatabase(t *testing.T) {
	tree, err := mmdbwriter.New(mmdbwriter.Options{DatabaseType: "Test-City", IPVersion: 4, IncludeReservedNetworks: true})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "v4.mmdb")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tree.WriteTo(f); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := geoip.Open(path)
	if err == nil {
		_ = db.Close()
		t.Fatal("Open of an IPv4-only database succeeded; it would leave every IPv6 visitor unlocated")
	}
	if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "IPv4") {
		t.Errorf("Open error = %q, want it to name the file and say it is IPv4-only", err)
	}
}

// TestReduceWithDatabase checks the two packages together: the location
// Reduce keeps comes from the database at the tenant's precision.
func TestReduceWithDatabase(t *testing.T) {
	db := openTestDB(t)
	key := make([]byte, event.VisitorKeySize)
	raw := event.Raw{Name: "pageview", URL: "https://acme.com/", Domain: "acme.com"}
	req := event.Request{
		Addr:       netip.MustParseAddr("192.0.2.44"),
		UserAgent:  "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
		ReceivedAt: time.Date(2026, 5, 17, 10, 0, 0, 0, time.UTC),
	}
	p := event.Policy{Domains: []string{"acme.com"}, GeoPrecision: event.PrecisionRegion}
	kept, err := event.Reduce(raw, req, p, db, key)
	if err != nil {
		t.Fatalf("Reduce: %v", err)
	}
	got := event.Location{Country: kept.Country, Region: kept.Region, City: kept.City}
	if want := (event.Location{Country: "DE", Region: "DE-BE"}); got != want {
		t.Errorf("kept location = %+v, want %+v", got, want)
	}
}
