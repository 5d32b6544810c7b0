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

// Package geoip looks visitors' addresses up in a MaxMind-format City
// database (GeoIP2-City, GeoLite2-City, or any database with their
// layout, such as DB-IP's City Lite) for the ingest service's Reduce.
//
// Only three values are read from a record: country.iso_code,
// subdivisions[0].iso_code and city.names.en. The region is written as the
// full ISO 3166-2 code, country first ("DE-BE"), because subdivision codes
// alone repeat across countries ("BE" is Berlin in Germany, Bern in
// Switzerland): a region column that can be grouped on by itself is worth
// the three bytes.
package geoip

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"

	"github.com/oschwald/maxminddb-golang/v2"

	"github.com/millimetric/tenant-operator/internal/ingest/event"
)

// DB is an open City database. It is safe for concurrent use, except
// Close, which must come after every Lookup.
type DB struct {
	path   string
	reader *maxminddb.Reader
}

// The ingest service passes a *DB where Reduce takes an event.Geo.
var _ event.Geo = (*DB)(nil)

// cityRecord is the part of a City record Lookup reads; the decoder skips
// the rest (coordinates, postal code, names in other languages), which the
// policy's "coarse geographic data" does not need.
type cityRecord struct {
	Country struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"country"`
	Subdivisions []struct {
		ISOCode string `maxminddb:"iso_code"`
	} `maxminddb:"subdivisions"`
	City struct {
		Names struct {
			English string `maxminddb:"en"`
		} `maxminddb:"names"`
	} `maxminddb:"city"`
}

// Open opens the City database at path. The file is memory-mapped; do not
// rewrite it in place while it is open (write a new file and rename it).
// Its errors name the path and what is wrong with the file.
func Open(path string) (*DB, error) {
	reader, err := maxminddb.Open(path)
	if err != nil {
		var invalid maxminddb.InvalidDatabaseError
		var pathErr *fs.PathError
		switch {
		case errors.As(err, &invalid):
			return nil, fmt.Errorf("geoip: %s is not a valid MaxMind DB file: %w", path, err)
		case errors.As(err, &pathErr):
			// Already "open /x: no such file or directory".
			return nil, fmt.Errorf("geoip: %w", err)
		default: // "file is empty", which does not name the file
			return nil, fmt.Errorf("geoip: open %s: %w", path, err)
		}
	}
	db := &DB{path: path, reader: reader}
	if reader.Metadata.IPVersion != 6 {
		// An IPv4-only database answers every IPv6 visitor with an error,
		// which would look like "location unknown" for half the traffic.
		_ = reader.Close()
		return nil, fmt.Errorf("geoip: %s is an IPv%d database; a City database covering IPv4 and IPv6 is needed",
			path, reader.Metadata.IPVersion)
	}
	return db, nil
}

// Path is the file the database was opened from, for logs and metrics.
func (db *DB) Path() string { return db.path }

// Type is the database's type from its metadata ("GeoLite2-City"), for
// logs and metrics.
func (db *DB) Type() string { return db.reader.Metadata.DatabaseType }

// Lookup returns addr's location and true, or false when the database has
// no country for it. An IPv4-mapped IPv6 address is looked up as the IPv4
// address it is. A lookup error (a corrupt record) is reported as unknown:
// the event is still worth counting, and the error's text would hold the
// address, which must not reach a log.
func (db *DB) Lookup(addr netip.Addr) (event.Location, bool) {
	var rec cityRecord
	if err := db.reader.Lookup(addr.Unmap()).Decode(&rec); err != nil {
		return event.Location{}, false
	}
	country := rec.Country.ISOCode
	if country == "" {
		return event.Location{}, false
	}
	loc := event.Location{Country: country, City: rec.City.Names.English}
	if len(rec.Subdivisions) > 0 && rec.Subdivisions[0].ISOCode != "" {
		loc.Region = country + "-" + rec.Subdivisions[0].ISOCode
	}
	return loc, true
}

// Close unmaps the database. Lookups after Close report unknown.
func (db *DB) Close() error {
	if err := db.reader.Close(); err != nil {
		return fmt.Errorf("geoip: close %s: %w", db.path, err)
	}
	return nil
}
