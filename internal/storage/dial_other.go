//go:build !linux

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

package storage

import "syscall"

// setTCPUserTimeout does nothing where there is no TCP_USER_TIMEOUT: the
// operator and its jobs run on Linux, other systems only for development.
func setTCPUserTimeout(string, string, syscall.RawConn) error { return nil }
