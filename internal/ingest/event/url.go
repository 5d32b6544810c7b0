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

package event

import (
	"net/url"
	"strings"
	"unicode/utf8"
)

// clickIDParams are the query parameters ad platforms append to a landing
// page's URL, in the order Reduce prefers them when several are present.
// Only the name is recorded (which platform sent the visitor); the value
// identifies one click, so it is kept only if the tenant allowlisted the
// parameter, like any other.
var clickIDParams = []string{
	"gclid",     // Google Ads
	"gbraid",    // Google Ads, iOS app campaigns
	"wbraid",    // Google Ads, iOS web campaigns
	"dclid",     // Google Display & Video 360
	"fbclid",    // Meta
	"msclkid",   // Microsoft Advertising
	"ttclid",    // TikTok
	"twclid",    // X
	"li_fat_id", // LinkedIn
	"epik",      // Pinterest
	"ScCid",     // Snapchat
	"rdt_cid",   // Reddit
	"yclid",     // Yandex
}

// page is what is kept of the page URL.
type page struct {
	hostname    string
	path        string
	utm         [5]string // source, medium, campaign, term, content
	clickIDType string
}

// utmParams are the UTM parameters in the order of page.utm.
var utmParams = [5]string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}

// reducePage parses an absolute http(s) URL and keeps its host, its path
// and the allowlisted query parameters. The fragment and userinfo are
// dropped without looking at them.
func reducePage(raw string, p Policy) (page, *Refusal) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return page{}, refuse(ReasonInvalid, "url must be an absolute http or https URL with a host")
	}
	host := normalizeHost(u.Hostname())
	if host == "" || !cleanText(host) {
		return page{}, refuse(ReasonInvalid, "url must have a host name of UTF-8 text")
	}
	kept := page{hostname: host, path: u.EscapedPath()}
	if kept.path == "" {
		kept.path = "/"
	}

	// A malformed pair (a bad escape, a ';') is skipped by ParseQuery,
	// which returns the pairs it could read: a pair we cannot read is one
	// we do not keep.
	query, _ := url.ParseQuery(u.RawQuery)
	keep := url.Values{}
	for key, values := range query {
		if p.allowsParam(key) {
			keep[key] = values
		}
	}
	if len(keep) > 0 {
		kept.path += "?" + keep.Encode()
	}
	for i, name := range utmParams {
		if v := keep.Get(name); cleanText(v) {
			kept.utm[i] = v
		}
	}
	for _, name := range clickIDParams {
		if _, ok := query[name]; ok {
			kept.clickIDType = name
			break
		}
	}
	return kept, nil
}

// referrerHost is the referrer's host, lower case and without port, or ""
// when there is none, it cannot be read, or it is the page's own host
// (navigation within the site is not a source). Hosts are kept as they are
// ("www." is not stripped): the dashboard may group them, the row should
// not guess.
func referrerHost(raw, pageHost string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return ""
	}
	host := normalizeHost(u.Hostname())
	if host == pageHost || !cleanText(host) {
		return ""
	}
	return host
}

// cleanText says whether s can be stored in a PostgreSQL text column: valid
// UTF-8 without NUL. One row PostgreSQL rejects fails the COPY of its
// whole batch, so such values are refused or dropped here.
func cleanText(s string) bool {
	return utf8.ValidString(s) && !strings.ContainsRune(s, 0)
}
