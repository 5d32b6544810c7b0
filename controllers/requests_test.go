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
	"net/http"
	"testing"
)

func TestRequestKind(t *testing.T) {
	for _, tc := range []struct {
		method, url, want string
	}{
		{http.MethodGet, "https://api/api/v1/namespaces/x/secrets/admin", requestRead},
		{http.MethodGet, "https://api/apis/apps/v1/deployments?labelSelector=a%3Db&limit=500", requestRead},
		{http.MethodGet, "https://api/apis/apps/v1/deployments?allowWatchBookmarks=true&resourceVersion=7&watch=true", requestWatch},
		{http.MethodGet, "https://api/apis/apps/v1/deployments?watch=1", requestWatch},
		{http.MethodGet, "https://api/apis/apps/v1/deployments?watch=false", requestRead},
		{http.MethodPatch, "https://api/apis/apps/v1/namespaces/x/deployments/ingest?fieldManager=m", requestWrite},
		{http.MethodPost, "https://api/api/v1/namespaces", requestWrite},
		{http.MethodDelete, "https://api/api/v1/namespaces/x", requestWrite},
	} {
		req, err := http.NewRequest(tc.method, tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := requestKind(req); got != tc.want {
			t.Errorf("%s %s: %s, want %s", tc.method, tc.url, got, tc.want)
		}
	}
}
