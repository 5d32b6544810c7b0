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

// Package imagetest runs the images `make images` built under rootful
// podman, as the operator renders their pods, against a real PostgreSQL:
// the ingest Deployment's container takes events that become rows, and
// the retention CronJob's container drops an expired partition.
//
// Its tests are behind the build tag podman and need root, podman and runc
// and the OCI layouts in $IMAGES_DIR: `make test-images` builds the images
// and runs them.
package imagetest
