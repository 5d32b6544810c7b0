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

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/rest"
)

// Values of the request label of millimetric_api_requests_total.
const (
	requestRead  = "read"
	requestWatch = "watch"
	requestWrite = "write"
)

// apiRequests tells the operator's watches from its reads. client-go's
// rest_client_requests_total labels a request by HTTP method only, and a
// watch is a GET: an informer renews its watch every 5 to 10 minutes, so an
// operator that reads nothing past its cache still shows a GET or two a
// minute there.
var apiRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "millimetric_api_requests_total",
	Help: "Requests the operator sent to the Kubernetes API server, by kind: watch (an informer's watch, started or " +
		"renewed), read (any other GET: a list, or a read the cache could not answer) and write (any other method).",
}, []string{"request"})

func init() {
	// Registered with the others (Collectors).
	for _, r := range []string{requestRead, requestWatch, requestWrite} {
		apiRequests.WithLabelValues(r)
	}
}

// CountRequests makes every client built from cfg count its requests in
// millimetric_api_requests_total.
func CountRequests(cfg *rest.Config) {
	cfg.Wrap(func(rt http.RoundTripper) http.RoundTripper {
		return requestCounter{next: rt}
	})
}

type requestCounter struct{ next http.RoundTripper }

func (c requestCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	apiRequests.WithLabelValues(requestKind(req)).Inc()
	return c.next.RoundTrip(req)
}

// requestKind is the request label of req.
func requestKind(req *http.Request) string {
	if req.Method != http.MethodGet {
		return requestWrite
	}
	if w := req.URL.Query().Get("watch"); w == "true" || w == "1" {
		return requestWatch
	}
	return requestRead
}
