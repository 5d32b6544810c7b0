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
	"fmt"
	"sort"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// Keys of a StorageRegion's admin Secret.
const (
	AdminSecretUsernameKey = "username"
	AdminSecretPasswordKey = "password"
	AdminSecretCAKey       = "ca.crt"
)

// RegionStore is a region's storage with the connection pool behind it.
type RegionStore interface {
	storage.Store
	Close()
}

// OpenStoreFunc opens a region's storage as its administrator.
type OpenStoreFunc func(ctx context.Context, cfg storage.AdminConfig) (RegionStore, error)

// OpenPostgres is the OpenStoreFunc of the real PostgreSQL storage.
func OpenPostgres(ctx context.Context, cfg storage.AdminConfig) (RegionStore, error) {
	return storage.Open(ctx, cfg)
}

// secretMissingError says which admin Secret or key is missing, without any
// value of it.
type secretMissingError struct{ msg string }

func (e *secretMissingError) Error() string { return e.msg }

// regionClaims lists the StorageRegions, not being deleted, that claim
// region, sorted by name. Both reconcilers decide from it: more than one
// claim makes the region unusable.
func regionClaims(ctx context.Context, c client.Reader, region analyticsv1alpha1.Region) ([]analyticsv1alpha1.StorageRegion, error) {
	var list analyticsv1alpha1.StorageRegionList
	if err := c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("listing StorageRegions: %w", err)
	}
	claims := make([]analyticsv1alpha1.StorageRegion, 0, 1)
	for _, sr := range list.Items {
		if sr.Spec.Region == region && sr.DeletionTimestamp.IsZero() {
			claims = append(claims, sr)
		}
	}
	sort.Slice(claims, func(i, j int) bool { return claims[i].Name < claims[j].Name })
	return claims, nil
}

// adminConfig reads the region's admin Secret and returns how to connect as
// the region's administrator. It reads the cache, which holds the Secrets
// of the one namespace admin Secrets may be in (CacheOptions), so a
// reconcile costs no request; a Secret the cache does not have (just
// created, not seen yet) is looked for once in the API server (uncached)
// before it is called missing.
func adminConfig(ctx context.Context, cached, uncached client.Reader, region *analyticsv1alpha1.StorageRegion) (storage.AdminConfig, error) {
	pg := region.Spec.Postgres.Effective()
	ref := types.NamespacedName{Namespace: pg.AdminSecretRef.Namespace, Name: pg.AdminSecretRef.Name}
	secret := &corev1.Secret{}
	err := cached.Get(ctx, ref, secret)
	if apierrors.IsNotFound(err) && uncached != nil {
		err = uncached.Get(ctx, ref, secret)
	}
	if err != nil {
		if apierrors.IsNotFound(err) {
			return storage.AdminConfig{}, &secretMissingError{fmt.Sprintf("admin Secret %s not found: create it with keys %q and %q", ref, AdminSecretUsernameKey, AdminSecretPasswordKey)}
		}
		return storage.AdminConfig{}, fmt.Errorf("reading admin Secret %s: %w", ref, err)
	}
	for _, key := range []string{AdminSecretUsernameKey, AdminSecretPasswordKey} {
		if len(secret.Data[key]) == 0 {
			return storage.AdminConfig{}, &secretMissingError{fmt.Sprintf("admin Secret %s has no %q key", ref, key)}
		}
	}
	return storage.AdminConfig{
		Host:     pg.Host,
		Port:     pg.Port,
		Database: pg.Database,
		SSLMode:  string(pg.SSLMode),
		Username: string(secret.Data[AdminSecretUsernameKey]),
		Password: string(secret.Data[AdminSecretPasswordKey]),
		CACert:   secret.Data[AdminSecretCAKey],
	}, nil
}
