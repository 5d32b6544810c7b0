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

// Package admission tests the ValidatingAdmissionPolicy that bounds what
// the operator's ServiceAccount may write (config/admission, which the
// chart renders too) against a real API server: envtest with the
// operator's RBAC from config/rbac, and requests made as that
// ServiceAccount. It holds no code of its own.
package admission
