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
	"hash/maphash"
	"strings"
	"sync"

	"github.com/mileusna/useragent"
)

// minUserAgentBytes is the shortest User-Agent taken for a browser's. Every
// browser sends a User-Agent of several dozen bytes; an empty or tiny one
// is a script.
const minUserAgentBytes = 10

// maxUserAgentScan bounds how much of a User-Agent is examined for bot
// patterns and families. Real ones are a few hundred bytes; the bound keeps
// an oversized header from costing more than a normal one. The visitor
// hash still uses the whole User-Agent.
const maxUserAgentScan = 1024

// botPatterns are lower-case substrings of the User-Agents of crawlers,
// HTTP libraries, headless browsers, uptime monitors and link previewers.
// The list is short on purpose: each entry is a family, not one product
// ("bot" covers Googlebot, bingbot, AhrefsBot, Twitterbot ...), and an
// entry must never match a browser people use, which the tests check.
var botPatterns = []string{
	// crawlers
	"bot", "crawl", "spider", "slurp", "scraper", "archiver", "feedfetcher",
	"facebookexternalhit", "facebookcatalog",
	// HTTP libraries and command-line clients
	"curl/", "wget", "python-requests", "python-urllib", "python-httpx", "aiohttp",
	"go-http-client", "java/", "okhttp", "apache-httpclient", "libwww-perl",
	"node-fetch", "axios/", "undici", "postmanruntime", "insomnia", "httpie",
	// headless and automated browsers, performance audits
	"headless", "phantomjs", "selenium", "webdriver", "puppeteer", "playwright",
	"lighthouse", "pagespeed", "gtmetrix", "ptst/",
	// uptime monitors and synthetic checks
	"monitor", "uptime", "pingdom", "statuscake", "site24x7", "synthetics",
	"checkly", "zabbix", "nagios", "newrelicpinger",
	// link previews
	"preview", "whatsapp", "embedly",
}

// botPatternExceptions are lower-case substrings removed before matching
// because they contain a pattern but name a device people browse with
// ("CUBOT" phones say "bot").
var botPatternExceptions = []string{"cubot"}

// botMessage says why a User-Agent was taken for a bot's, or "" when it
// was not. It never quotes the User-Agent.
func botMessage(ua useragent.UserAgent, scanned string) string {
	if len(strings.TrimSpace(scanned)) < minUserAgentBytes {
		return "user agent is missing or too short to be a browser's"
	}
	lower := strings.ToLower(scanned)
	for _, e := range botPatternExceptions {
		lower = strings.ReplaceAll(lower, e, "")
	}
	for _, p := range botPatterns {
		if strings.Contains(lower, p) {
			return "user agent is a crawler's, monitor's, script's or headless browser's"
		}
	}
	// The parser's own flag: known crawler names, and a URL in the
	// User-Agent, which is how crawlers say who they are ("+http://...").
	if ua.Bot {
		return "user agent is a crawler's, monitor's, script's or headless browser's"
	}
	return ""
}

// browserFamily maps the parser's browser name to the few families kept.
// Anything else is "Other": the parser falls back to the raw User-Agent
// for a name it does not know, which must never be stored.
func browserFamily(ua useragent.UserAgent) string {
	switch ua.Name {
	case useragent.Chrome:
		return "Chrome"
	case useragent.Firefox:
		return "Firefox"
	case useragent.Safari, useragent.MobileSafari:
		return "Safari"
	case useragent.Edge:
		return "Edge"
	case useragent.Opera, useragent.OperaMini, useragent.OperaTouch:
		return "Opera"
	case useragent.SamsungBrowser:
		return "Samsung Internet"
	}
	return "Other"
}

// osFamily maps the parser's OS to the few families kept.
func osFamily(ua useragent.UserAgent) string {
	switch ua.OS {
	case useragent.Windows:
		return "Windows"
	case useragent.MacOS:
		return "macOS"
	case useragent.IOS:
		return "iOS"
	case useragent.Android:
		return "Android"
	case useragent.Linux:
		return "Linux"
	case useragent.ChromeOS, useragent.CrOS:
		return "ChromeOS"
	}
	return "Other"
}

// deviceType is "tablet", "mobile" or "desktop". An Android device whose
// User-Agent lacks "Mobile" is a tablet: Android browsers add "Mobile" on
// phones only, which the parser does not look at. An iPad in desktop mode
// (iPadOS 13+) says "Macintosh" and counts as a desktop; nothing in the
// User-Agent tells them apart.
func deviceType(ua useragent.UserAgent, scanned string) string {
	switch {
	case ua.Tablet:
		return "tablet"
	case ua.OS == useragent.Android && !strings.Contains(scanned, "Mobile"):
		return "tablet"
	case ua.Mobile:
		return "mobile"
	}
	return "desktop"
}

// uaClass is what is kept of a User-Agent, and whether it is a bot's.
type uaClass struct {
	browser, os, device string
	bot                 string // the bot message, "" for a browser
}

// classify reduces a User-Agent (already cut to maxUserAgentScan) to its
// families. Visitors' browsers repeat a lot, and parsing is a fifth of an
// event's cost, so the answers are memoised in a small bounded table keyed
// by a seeded hash of the User-Agent, never by the User-Agent itself.
func classify(scanned string) uaClass {
	key := maphash.String(uaSeed, scanned)
	uaCache.mu.RLock()
	c, ok := uaCache.m[key]
	uaCache.mu.RUnlock()
	if ok {
		return c
	}
	ua := useragent.Parse(scanned)
	c = uaClass{browser: browserFamily(ua), os: osFamily(ua), device: deviceType(ua, scanned), bot: botMessage(ua, scanned)}
	uaCache.mu.Lock()
	if len(uaCache.m) >= uaCacheSize {
		// Dropping all is simpler than LRU and costs one parse per
		// User-Agent per uaCacheSize distinct ones.
		clear(uaCache.m)
	}
	uaCache.m[key] = c
	uaCache.mu.Unlock()
	return c
}

// uaCacheSize bounds the memoised User-Agents (about 100 bytes each).
const uaCacheSize = 4096

var (
	uaSeed  = maphash.MakeSeed()
	uaCache = struct {
		mu sync.RWMutex
		m  map[uint64]uaClass
	}{m: make(map[uint64]uaClass, uaCacheSize)}
)
