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

// Package memlimit sets the Go runtime's soft memory limit from the
// container's memory limit, so that as the operator's cache grows towards
// the limit the garbage collector works harder instead of the kernel
// killing the pod; and the collector's target (GOGC) to GCPercent.
package memlimit

import (
	"os"
	"runtime/debug"
	"strconv"
	"strings"
)

// Fraction of the container's limit given to the Go runtime; the rest is
// left for what the runtime does not count (the binary's text, thread
// stacks of the OS) and for the collector to get ahead.
const Fraction = 0.9

// cgroupFiles are where cgroup v2 and v1 say the memory limit.
var cgroupFiles = []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"}

// Set sets the runtime's memory limit to Fraction of the container's and
// returns it, or returns 0 and changes nothing when GOMEMLIMIT is set
// (the operator's choice wins) or the container has no limit.
func Set() int64 {
	if os.Getenv("GOMEMLIMIT") != "" {
		return 0
	}
	limit := containerLimit(cgroupFiles)
	if limit <= 0 {
		return 0
	}
	soft := int64(float64(limit) * Fraction)
	debug.SetMemoryLimit(soft)
	return soft
}

// containerLimit is the first limit the files state, 0 for none ("max",
// or the huge number cgroup v1 uses for no limit).
func containerLimit(files []string) int64 {
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		v := strings.TrimSpace(string(b))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 || n >= 1<<60 {
			return 0
		}
		return n
	}
	return 0
}

// GCPercent is the operator's GOGC unless the environment sets one. Most of
// the operator's heap is its cache, which lives as long as the process; at
// Go's default of 100 the heap, and the resident memory with it, grows to
// twice the cache before a collection, and the runtime keeps a tenth more
// than that from the OS. At 50 it grows by half. make bench-scale N=1000
// measured 25 as well: 3 KiB less RSS per tenant at rest, for 44% more CPU
// per tenant converged (README, Scale), so 50 it is; near the container's
// limit the memory limit (Set) makes the collector work harder anyway.
const GCPercent = 50

// SetGCPercent sets the collector's target to GCPercent and returns true,
// or changes nothing and returns false when GOGC is set.
func SetGCPercent() bool {
	if os.Getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(GCPercent)
	return true
}
