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

package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// regionStores keeps one open store (connection pool) per StorageRegion, so
// reconciles share connections instead of dialling the database each time.
// A store is replaced when the region's connection settings or admin
// credentials change (at the next get, which the StorageRegion watch brings
// at once), and closed when its StorageRegion goes (drop). The lock guards
// the map only: dialling and closing, which wait on the network, happen
// outside it, so one region's slow database never stalls another's
// reconciles.
type regionStores struct {
	open OpenStoreFunc

	mu     sync.Mutex
	stores map[string]pooledStore
}

type pooledStore struct {
	fingerprint string
	store       RegionStore
}

func newRegionStores(open OpenStoreFunc) *regionStores {
	return &regionStores{open: open, stores: map[string]pooledStore{}}
}

// get returns the open store of the named region for cfg.
func (r *regionStores) get(ctx context.Context, region string, cfg storage.AdminConfig) (RegionStore, error) {
	fp := fingerprint(cfg)
	r.mu.Lock()
	p, ok := r.stores[region]
	r.mu.Unlock()
	if ok && p.fingerprint == fp {
		return p.store, nil
	}

	store, err := r.open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	current, ok := r.stores[region]
	if ok && current.fingerprint == fp {
		// Another reconcile opened the same meanwhile: use that one.
		r.mu.Unlock()
		store.Close()
		return current.store, nil
	}
	r.stores[region] = pooledStore{fingerprint: fp, store: store}
	r.mu.Unlock()
	if ok {
		// Replaced: settings or credentials changed. A reconcile still
		// using it fails and retries with the new one.
		current.store.Close()
	}
	return store, nil
}

// drop closes the store of the named region, if one is open: its
// StorageRegion was deleted or changed. The next get opens a new one.
func (r *regionStores) drop(region string) {
	r.mu.Lock()
	p, ok := r.stores[region]
	delete(r.stores, region)
	r.mu.Unlock()
	if ok {
		p.store.Close()
	}
}

// close closes every store; for the manager's shutdown.
func (r *regionStores) close() {
	r.mu.Lock()
	stores := r.stores
	r.stores = map[string]pooledStore{}
	r.mu.Unlock()
	for _, p := range stores {
		p.store.Close()
	}
}

// fingerprint identifies connection settings without keeping the password
// in memory twice.
func fingerprint(cfg storage.AdminConfig) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00%s\x00%s\x00%s\x00", cfg.Host, cfg.Port, cfg.Database, cfg.SSLMode, cfg.Username, cfg.Password)
	h.Write(cfg.CACert)
	return hex.EncodeToString(h.Sum(nil))
}
