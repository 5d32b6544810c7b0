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

package storage_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/millimetric/tenant-operator/internal/storage"
)

// TestAStorageCallToADatabaseThatStopsAnsweringEndsAtItsDeadline: every
// Store call through a connection that goes silent (a black hole: nothing
// answered, nothing closed) returns at the store's call deadline with
// ConnectionFailed and a message that says so, even when its caller gave
// it no deadline of its own.
func TestAStorageCallToADatabaseThatStopsAnsweringEndsAtItsDeadline(t *testing.T) {
	proxy := srv.NewProxy(t)
	cfg := srv.AdminConfig("EU")
	cfg.Port = int32(proxy.Port)
	const deadline = 2 * time.Second
	st := openStore(t, cfg, storage.WithCallTimeout(deadline))
	name, _ := provision(t, st, "blackhole")
	t.Cleanup(func() { _ = openStore(t, srv.AdminConfig("EU")).Purge(context.Background(), name) })
	proxy.BlackHole()

	for _, call := range []struct {
		name string
		do   func(ctx context.Context) error
	}{
		{"Ping", st.Ping},
		{"Provision", func(ctx context.Context) error {
			_, err := st.Provision(ctx, name, storage.ProvisionOptions{})
			return err
		}},
		{"Verify", func(ctx context.Context) error { _, err := st.Verify(ctx, name); return err }},
		{"Purge", func(ctx context.Context) error { return st.Purge(ctx, name) }},
		{"CountTenants", func(ctx context.Context) error { _, err := st.CountTenants(ctx); return err }},
		{"Retained", func(ctx context.Context) error { _, err := st.Retained(ctx); return err }},
		{"SweepRetained", func(ctx context.Context) error { _, err := st.SweepRetained(ctx, time.Now()); return err }},
	} {
		t.Run(call.name, func(t *testing.T) {
			start := time.Now()
			done := make(chan error, 1)
			go func() { done <- call.do(context.Background()) }()
			select {
			case err := <-done:
				took := time.Since(start)
				if took > deadline+3*time.Second {
					t.Errorf("returned after %s, want about the %s deadline", took.Round(time.Millisecond), deadline)
				}
				if storage.ReasonFor(err) != storage.ReasonConnectionFailed || !strings.Contains(err.Error(), "did not answer within 2s") {
					t.Errorf("after %s: %v (reason %s); want ConnectionFailed saying the database did not answer within 2s",
						took.Round(time.Millisecond), err, storage.ReasonFor(err))
				}
			case <-time.After(20 * time.Second):
				proxy.Cut() // so the call, and the store's Close, end
				t.Fatalf("still waiting on the silent database after 20s")
			}
		})
	}
}
