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
	"slices"
	"testing"
)

func TestRolloutGate(t *testing.T) {
	woken := func(g *rolloutGate) []string {
		var out []string
		for {
			select {
			case e := <-g.wake:
				out = append(out, e.Object.GetName())
			default:
				return out
			}
		}
	}
	t.Run("at most max tenants hold a slot; the others are queued in the order they asked", func(t *testing.T) {
		g := newRolloutGate(2)
		for _, tenant := range []string{"a", "b"} {
			if !g.admit(tenant) {
				t.Fatalf("%s was refused a free slot", tenant)
			}
		}
		for _, tenant := range []string{"c", "d", "c"} {
			if g.admit(tenant) {
				t.Fatalf("%s was admitted while a and b roll", tenant)
			}
		}
		if !g.admit("a") {
			t.Error("a tenant holding a slot was refused its own rollout")
		}
		if rolling, queued := g.counts(); rolling != 2 || queued != 2 {
			t.Errorf("rolling %d, queued %d; want 2 and 2 (c asked twice)", rolling, queued)
		}
	})
	t.Run("a slot given back wakes the first tenant waiting, which then takes it", func(t *testing.T) {
		g := newRolloutGate(2)
		g.admit("a")
		g.admit("b")
		g.admit("c")
		g.admit("d")
		g.done("a")
		if got := woken(g); !slices.Equal(got, []string{"c"}) {
			t.Errorf("woken %q, want [c]", got)
		}
		if !g.admit("c") || g.admit("d") {
			t.Error("c did not get the freed slot, or d got one too")
		}
	})
	t.Run("giving back a slot a tenant does not hold changes nothing", func(t *testing.T) {
		g := newRolloutGate(1)
		g.admit("a")
		g.admit("b")
		g.done("b") // b gone while queued: no longer queued, nobody woken
		g.done("x")
		if got := woken(g); len(got) != 0 {
			t.Errorf("woken %q, want nobody", got)
		}
		if rolling, queued := g.counts(); rolling != 1 || queued != 0 {
			t.Errorf("rolling %d, queued %d; want 1 and 0", rolling, queued)
		}
	})
	t.Run("with no limit every tenant is admitted and none is counted", func(t *testing.T) {
		g := newRolloutGate(0)
		for i := range 100 {
			if !g.admit(string(rune('a' + i%26))) {
				t.Fatal("refused with no limit")
			}
		}
		if rolling, _ := g.counts(); rolling != 0 {
			t.Errorf("rolling %d, want 0", rolling)
		}
	})
}
