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

package app_test

import (
	"encoding/hex"
	"io"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/millimetric/tenant-operator/internal/ingest/app"
	"github.com/millimetric/tenant-operator/internal/ingest/config"
)

// The operator passes --trusted-proxies and, with its
// --ingest-cf-connecting-ip, --cf-connecting-ip: the names are the
// contract between the two.
func TestTheClientAddressFlagsAreParsed(t *testing.T) {
	cfgPath := writeFile(t, "ingest.json", []byte(`{"tenant":"flags","region":"EU","domains":["acme.test"],"geoPrecision":"City"}`))
	env := map[string]string{
		"PGHOST": "db.example", "PGDATABASE": "millimetric", "PGUSER": "tenant_flags", "PGPASSWORD": "unused-here",
		config.EnvVisitorKey: hex.EncodeToString(newVisitorKey(t)),
	}
	getenv := func(name string) string { return env[name] }
	tests := []struct {
		name           string
		args           []string
		wantProxies    []netip.Prefix
		wantCFHeader   bool
		wantErrMessage string
	}{
		{"by default no proxy is trusted and CF-Connecting-IP is not read", nil, nil, false, ""},
		{"the Gateway's pods and Cloudflare's edge, with CF-Connecting-IP",
			[]string{"--trusted-proxies=10.42.0.0/16, 173.245.48.0/20,2400:cb00::/32", "--cf-connecting-ip"},
			[]netip.Prefix{netip.MustParsePrefix("10.42.0.0/16"), netip.MustParsePrefix("173.245.48.0/20"), netip.MustParsePrefix("2400:cb00::/32")}, true, ""},
		{"a bare address is refused", []string{"--trusted-proxies=10.42.0.7"}, nil, false, "--trusted-proxies"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts, err := app.Parse(append([]string{"--config=" + cfgPath}, tc.args...), getenv, io.Discard)
			if tc.wantErrMessage != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErrMessage) {
					t.Fatalf("err = %v, want it to name %s", err, tc.wantErrMessage)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opts.TrustedProxies, tc.wantProxies) || opts.CFConnectingIP != tc.wantCFHeader {
				t.Errorf("trusted proxies %v, CF-Connecting-IP %t; want %v, %t", opts.TrustedProxies, opts.CFConnectingIP, tc.wantProxies, tc.wantCFHeader)
			}
		})
	}
}
