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

// clickIDs are the query parameters ad platforms append to a landing
// page's URL, in the order Reduce prefers them when several are present,
// with the attribution each implies when the URL has no utm_source or
// utm_medium of its own. Only the name is recorded (which platform sent the
// visitor); the value identifies one click, so it is kept only if the
// tenant allowlisted the parameter, like any other.
var clickIDs = []struct {
	param, source, medium string
}{
	{"gclid", "google", "cpc"},       // Google Ads
	{"gbraid", "google", "cpc"},      // Google Ads, iOS app campaigns
	{"wbraid", "google", "cpc"},      // Google Ads, iOS web campaigns
	{"dclid", "google", "display"},   // Google Display & Video 360
	{"fbclid", "facebook", "social"}, // Meta: added to organic links too, so not "paid"
	{"msclkid", "bing", "cpc"},       // Microsoft Advertising
	{"ttclid", "tiktok", "cpc"},      // TikTok
	{"twclid", "twitter", "cpc"},     // X
	{"li_fat_id", "linkedin", "cpc"}, // LinkedIn
	{"epik", "pinterest", "cpc"},     // Pinterest
	{"ScCid", "snapchat", "cpc"},     // Snapchat
	{"rdt_cid", "reddit", "cpc"},     // Reddit
	{"yclid", "yandex", "cpc"},       // Yandex
}

// page is what is kept of the page URL.
type page struct {
	hostname    string
	path        string
	utm         [5]string // source, medium, campaign, term, content
	clickIDType string
	// source and medium are the attribution: from utm_source (else the
	// source or ref parameter) and utm_medium when allowlisted and sent,
	// else from the click id.
	source, medium string
}

// sourceParams name the attribution source, in the order they are
// believed: utm_source, then the shorter source and ref that sites put on
// their own links ("?ref=producthunt"). Like any parameter, each counts
// only when the tenant allowlisted it (the default allowlist has all three).
var sourceParams = []string{"utm_source", "source", "ref"}

// utmParams are the UTM parameters in the order of page.utm.
var utmParams = [5]string{"utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content"}

// reducePage parses an absolute URL and keeps its host, its path and the
// allowlisted query parameters. Any scheme with a host is a page, as
// Plausible has it for apps ("app://localhost/login" is the page
// "/login" on "localhost"); the scheme itself is not kept. A URL without
// a host (data:, about:blank, a bare path) names no page and is refused.
//
// Userinfo is dropped without looking at it, and so is the fragment,
// unless the site routes by it (hashRouting) and it is a route: it starts
// with "/" or "!/". Then its path, up to any "?", follows the page's path
// ("/app#/pricing"); a fragment's own query is never kept, as nothing
// allowlists it. The path loses its ";" parameters and is scrubbed of
// personal data (scrubPath), and so are the kept query values (scrub).
func reducePage(raw string, p Policy, hashRouting bool) (page, *Refusal) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return page{}, refuse(ReasonInvalid, "url must be an absolute URL with a host")
	}
	host := normalizeHost(u.Hostname())
	if host == "" || !cleanText(host) {
		return page{}, refuse(ReasonInvalid, "url must have a host name of UTF-8 text")
	}
	kept := page{hostname: host, path: scrubPath(u.EscapedPath())}
	if kept.path == "" {
		kept.path = "/"
	}
	if hashRouting {
		kept.path += fragmentRoute(u.EscapedFragment())
	}

	query, keep := allowedQuery(u.RawQuery, p)
	if len(keep) > 0 {
		kept.path += "?" + keep.Encode()
	}
	for i, name := range utmParams {
		if v := keep.Get(name); cleanText(v) {
			kept.utm[i] = v
		}
	}
	// As Plausible reads a source: utm_source, then source, then ref.
	for _, name := range sourceParams {
		if v := keep.Get(name); v != "" && cleanText(v) {
			kept.source = strings.ToLower(v)
			break
		}
	}
	kept.medium = strings.ToLower(kept.utm[1])
	for _, c := range clickIDs {
		if _, ok := query[c.param]; ok {
			kept.clickIDType = c.param
			if kept.source == "" {
				kept.source = c.source
			}
			if kept.medium == "" {
				kept.medium = c.medium
			}
			break
		}
	}
	return kept, nil
}

// allowedQuery reads a raw query and returns all of it, and the
// parameters the tenant allowlisted, with their values scrubbed. A
// malformed pair (a bad escape, a ';') is skipped by ParseQuery, which
// returns the pairs it could read: a pair we cannot read is one we do not
// keep.
func allowedQuery(rawQuery string, p Policy) (all, keep url.Values) {
	all, _ = url.ParseQuery(rawQuery)
	keep = url.Values{}
	for key, values := range all {
		if !p.allowsParam(key) {
			continue
		}
		scrubbed := make([]string, len(values))
		for i, v := range values {
			scrubbed[i] = scrub(v)
		}
		keep[key] = scrubbed
	}
	return all, keep
}

// reduceURLValue is what is kept of a props value that is an absolute
// http(s) URL (props.url of an outbound-link or file-download click, say),
// reduced as the page URL is: scheme, host (scrubbed: an address written
// as the host is as likely a visitor's as a server's), the path without
// ";" parameters and scrubbed, and only the allowlisted query parameters,
// scrubbed; never userinfo, a port or the fragment. ok is false when v is
// not such a URL.
func reduceURLValue(v string, p Policy) (reduced string, ok bool) {
	if len(v) < len("http://x") || !strings.EqualFold(v[:4], "http") {
		return "", false
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", false
	}
	host := scrub(normalizeHost(u.Hostname()))
	path := scrubPath(u.EscapedPath())
	if path == "" {
		path = "/"
	}
	if _, keep := allowedQuery(u.RawQuery, p); len(keep) > 0 {
		path += "?" + keep.Encode()
	}
	return u.Scheme + "://" + host + path, true
}

// fragmentRoute is "#" and the route of a hash-routed page's fragment, as
// escaped in the URL and scrubbed as a path is, or "" when the fragment is
// not a route. Only a
// fragment that starts with "/" or "!/" is one: anything else (an anchor,
// "#access_token=..." of OAuth's implicit flow) is dropped unread.
func fragmentRoute(fragment string) string {
	if !strings.HasPrefix(fragment, "/") && !strings.HasPrefix(fragment, "!/") {
		return ""
	}
	if i := strings.IndexByte(fragment, '?'); i >= 0 {
		fragment = fragment[:i]
	}
	return "#" + scrubPath(fragment)
}

// referrerHost is the referrer's host, lower case and without port, or ""
// when there is none, it cannot be read, or it is the page's own host
// (navigation within the site is not a source). Hosts are kept as they are
// ("www." is not stripped): the dashboard may group them, the row should
// not guess. A referrer over MaxReferrerBytes is read up to that length,
// as Plausible cuts it: only its host is kept, which comes first.
func referrerHost(raw, pageHost string) string {
	if raw == "" {
		return ""
	}
	if len(raw) > MaxReferrerBytes {
		raw = raw[:MaxReferrerBytes]
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
