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
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Limits on the body's strings, so that a row has a bounded size:
// Plausible's, where it has one.
const (
	// MaxNameChars is the longest event name, in characters, as Plausible
	// counts it.
	MaxNameChars = 120
	// MaxURLBytes is the longest page URL; a longer one is refused, as
	// Plausible refuses it.
	MaxURLBytes = 2000
	// MaxReferrerBytes is the most of a referrer URL that is read; a
	// longer one is cut, as Plausible cuts it, not refused.
	MaxReferrerBytes = 2000
	// MaxDomainBytes is the longest domain field, all its comma-separated
	// domains together; a longer one is dropped and the page's host
	// stands for it.
	MaxDomainBytes = 1000
	// MaxTitleBytes is the most of a document title that is kept; a
	// longer one is cut (at a character boundary), not refused.
	MaxTitleBytes = 300
)

// MaxBodyBytes is the size of the largest body whose every field is within
// the limits Reduce keeps, written as Plausible's tracker writes it (props
// JSON-encoded inside a string, so with their quotes escaped), with room
// for the keys Reduce does not read: the body limit the server needs so
// that no event Reduce would keep is refused as too large. A title is sent
// whole and cut by Reduce, so the body has the room of a URL for it.
const MaxBodyBytes = bodyOverheadBytes +
	utf8.UTFMax*MaxNameChars + MaxURLBytes + MaxReferrerBytes + MaxDomainBytes + titleRoomBytes + MaxAnonymousIDBytes +
	MaxPropsKeys*(MaxPropKeyBytes+MaxPropValueBytes+propOverheadBytes)

const (
	// bodyOverheadBytes is the room for the body's keys, quotes, commas
	// and braces, and for the keys Reduce ignores ("v", "i", "sw", ...).
	bodyOverheadBytes = 512
	// propOverheadBytes is the room for one property's punctuation inside
	// a JSON string: \"key\":\"value\", is ten bytes besides key and value.
	propOverheadBytes = 10
	// titleRoomBytes is the room for a title in the body.
	titleRoomBytes = MaxURLBytes
)

// EngagementEvent is the name of the event Plausible's tracker sends after
// a pageview, and again each time the page is hidden with something new
// to say: how far the visitor scrolled ("sd", a percentage, the most so
// far) and how long they were engaged ("e", milliseconds since the
// previous engagement event of the page). It is recorded on the
// pageview's page (its URL is the pageview's) as engagement, with
// Kept.EngagedMs and Kept.ScrollDepth, and is neither a pageview nor a
// custom event: the aggregates must count it as neither. Like Plausible,
// Reduce refuses an engagement event with neither value.
const EngagementEvent = "engagement"

// MaxEngagementMs bounds an engagement event's engaged time: 30 days, past
// which Plausible takes the value for one of its old tracker's bugs and
// ignores it. An int4 column could not hold it; engagement_ms is a bigint.
const MaxEngagementMs = 30 * 24 * 60 * 60 * 1000

// MaxScrollDepth is the deepest scroll, in percent; a deeper one is taken
// as MaxScrollDepth, as Plausible takes it.
const MaxScrollDepth = 100

// Request is what the HTTP layer knows of the request besides the body.
type Request struct {
	// Addr is the client's address, already chosen from the TCP peer or a
	// trusted proxy's forwarding headers. It is required. Reduce uses it for the
	// location only (the HTTP layer has already used it for the rate
	// limit), and for nothing else: not for the visitor's identity.
	Addr netip.Addr
	// UserAgent is the User-Agent header: the browser's, or the one the
	// Events API caller forwarded.
	UserAgent string
	// Header is the request's headers, or nil. Reduce does not use them
	// today: see the package documentation for why missing headers are not
	// a bot signal.
	Header http.Header
	// ReceivedAt is when the request arrived. It is required; the row's
	// day partition is its UTC day.
	ReceivedAt time.Time
	// GlobalPrivacyControl is whether the request carried "Sec-GPC: 1",
	// the browser's Global Privacy Control signal.
	GlobalPrivacyControl bool
}

// Location is a place at some precision; "" means unknown.
type Location struct {
	// Country is the ISO 3166-1 alpha-2 code, "DE".
	Country string
	// Region is the ISO 3166-2 code of the first-level subdivision,
	// country included, "DE-BE".
	Region string
	// City is the city's English name, "Berlin".
	City string
}

// Geo looks an address up. A nil Geo means every location is unknown, so
// the ingest service runs without a database.
type Geo interface {
	// Lookup returns the address's location and whether it knows any.
	Lookup(addr netip.Addr) (Location, bool)
}

// Kept is everything stored of an event: one row of the tenant's events
// table. Every field is derived from the request by a rule that drops what
// the privacy policy does not allow; none holds the address or the raw
// User-Agent.
type Kept struct {
	// ReceivedAt is when the request arrived, in UTC.
	ReceivedAt time.Time
	// Name is the event name, as sent (an integer as its decimal text),
	// scrubbed.
	Name string
	// Hostname is the page URL's host, lower case, without port; "" in
	// the odd case where it is the visitor's own address.
	Hostname string
	// Path is the URL's path, escaped as sent, without fragment or ";"
	// parameters, scrubbed segment by segment, followed by only the
	// allowlisted query parameters, sorted by name, scrubbed and
	// re-encoded; "/" when the path is empty.
	Path string
	// Referrer is the referrer's host only, lower case, without port; ""
	// when there is none, it is the page's own host, or it is the
	// visitor's own address.
	Referrer string
	// UTMSource is utm_source's first value, scrubbed, when the tenant
	// allowlisted it; so are the other four.
	UTMSource string
	// UTMMedium is utm_medium's first value, when allowlisted.
	UTMMedium string
	// UTMCampaign is utm_campaign's first value, when allowlisted.
	UTMCampaign string
	// UTMTerm is utm_term's first value, when allowlisted.
	UTMTerm string
	// UTMContent is utm_content's first value, when allowlisted.
	UTMContent string
	// ClickIDType is the name of the ad click id in the URL ("gclid",
	// "fbclid", "msclkid", ...), whether or not allowlisted; never its
	// value.
	ClickIDType string
	// Source is the attribution source, lower case: utm_source, else the
	// source parameter, else ref, each when allowlisted and sent; else the
	// click id's platform ("google" for gclid); else "". The referrer is a
	// source of its own (Referrer), which the roll-up falls back on.
	Source string
	// Medium is the attribution medium, lower case: utm_medium when
	// allowlisted and sent, else the click id's ("cpc" for gclid), else "".
	Medium string
	// Title is the document title, scrubbed, at most MaxTitleBytes, or "".
	Title string
	// Browser is the browser family: "Chrome", "Firefox", "Safari",
	// "Edge", "Opera", "Samsung Internet" or "Other".
	Browser string
	// OS is the operating system family: "Windows", "macOS", "iOS",
	// "Android", "Linux", "ChromeOS" or "Other".
	OS string
	// Device is "desktop", "mobile" or "tablet".
	Device string
	// Country is the visitor's country (ISO 3166-1 alpha-2), or "".
	Country string
	// Region is the visitor's region (ISO 3166-2, "DE-BE") at Region or
	// City precision, or "".
	Region string
	// City is the visitor's city at City precision, or "".
	City string
	// VisitorID is the keyed hash of the event's anonymous id (see
	// VisitorID), when HasVisitorID.
	VisitorID int64
	// HasVisitorID is whether the event came with an anonymous id. Events
	// without one (Plausible's script, callers that send none) have no
	// visitor: the address is never used in its place.
	HasVisitorID bool
	// Props is the custom properties as a compact JSON object with sorted
	// keys, or nil: what reduceProps keeps, scrubbed.
	Props []byte
	// EngagedMs is an engagement event's engaged time in milliseconds,
	// when HasEngagedMs.
	EngagedMs int64
	// HasEngagedMs is whether the event is an engagement event that said
	// how long the visitor was engaged.
	HasEngagedMs bool
	// ScrollDepth is an engagement event's scroll depth, 0 to
	// MaxScrollDepth percent, when HasScrollDepth.
	ScrollDepth int16
	// HasScrollDepth is whether the event is an engagement event that said
	// how far the visitor scrolled.
	HasScrollDepth bool

	// Dropped are the parts of the event that were dropped while the rest
	// was kept, for the answer and a metric; they are not stored.
	Dropped []DroppedPart
}

// Reduce decides what is kept of one event. It is the only function that
// sees the address and the raw User-Agent, and it lets neither out: not in
// Kept, not in an error.
//
// It returns the Kept row, or a *Refusal saying why the event is not kept.
// Any other error means the caller broke the contract (a visitor key of the
// wrong size, no address, no receive time): a bug in the server, not in the
// event, so it is not the client's to hear about. visitorKey is the
// tenant's, VisitorKeySize bytes. geo may be nil.
//
// Checks run from the cheapest to the most telling: the body's shape
// (ReasonInvalid), then the domain (ReasonForeignDomain, before the bot
// check so that another site's bots are not counted against this tenant),
// then the visitor's choice (ReasonOptedOut), then the User-Agent
// (ReasonBot).
func Reduce(raw Raw, req Request, p Policy, geo Geo, visitorKey []byte) (Kept, error) {
	if err := CheckVisitorKey(visitorKey); err != nil {
		return Kept{}, fmt.Errorf("event: %w", err)
	}
	if !req.Addr.IsValid() {
		return Kept{}, errors.New("event: the request has no client address")
	}
	if req.ReceivedAt.IsZero() {
		return Kept{}, errors.New("event: the request has no receive time")
	}

	if r := checkName(raw.Name); r != nil {
		return Kept{}, r
	}
	switch {
	case raw.URL == "":
		return Kept{}, refuse(ReasonInvalid, "url is required")
	case len(raw.URL) > MaxURLBytes:
		return Kept{}, refuse(ReasonInvalid, fmt.Sprintf("url must be at most %d bytes", MaxURLBytes))
	}
	if raw.AnonymousID != "" && !ValidAnonymousID(raw.AnonymousID) {
		return Kept{}, refuse(ReasonInvalid, fmt.Sprintf(
			"aid must be %d to %d characters of letters, digits, '-' and '_'", MinAnonymousIDBytes, MaxAnonymousIDBytes))
	}
	pg, r := reducePage(raw.URL, p, raw.HashRouting)
	if r != nil {
		return Kept{}, r
	}
	var dropped droppedSet
	eng, r := engagementOf(raw, &dropped)
	if r != nil {
		return Kept{}, r
	}
	domains := siteDomains(raw.Domain, pg.hostname, &dropped)
	if !slices.ContainsFunc(domains, p.AllowsDomain) {
		msg := "domain is not one of this site's domains"
		if len(domains) > 1 {
			msg = fmt.Sprintf("none of the %d domains is one of this site's domains", len(domains))
		}
		return Kept{}, refuse(ReasonForeignDomain, msg)
	}
	props := reduceProps(raw.Props, p, &dropped)

	if p.RespectGlobalPrivacyControl && req.GlobalPrivacyControl {
		return Kept{}, refuse(ReasonOptedOut, "the browser sent Global Privacy Control, which this site honours")
	}

	scanned := req.UserAgent
	if len(scanned) > maxUserAgentScan {
		scanned = scanned[:maxUserAgentScan]
	}
	ua := classify(scanned)
	if ua.bot != "" {
		return Kept{}, refuse(ReasonBot, ua.bot)
	}

	addr := req.Addr.Unmap().WithZone("")
	var loc Location
	if geo != nil {
		if l, ok := geo.Lookup(addr); ok {
			loc = p.precise(l)
		}
	}

	kept := Kept{
		ReceivedAt:  req.ReceivedAt.UTC(),
		Name:        scrub(raw.Name),
		Hostname:    notAddr(pg.hostname, addr),
		Path:        pg.path,
		Referrer:    notAddr(referrerHost(raw.Referrer, pg.hostname), addr),
		UTMSource:   pg.utm[0],
		UTMMedium:   pg.utm[1],
		UTMCampaign: pg.utm[2],
		UTMTerm:     pg.utm[3],
		UTMContent:  pg.utm[4],
		ClickIDType: pg.clickIDType,
		Source:      pg.source,
		Medium:      pg.medium,
		Title:       title(raw.Title, &dropped),
		Browser:     ua.browser,
		OS:          ua.os,
		Device:      ua.device,
		Country:     loc.Country,
		Region:      loc.Region,
		City:        loc.City,
		Props:       props,

		EngagedMs:      eng.ms,
		HasEngagedMs:   eng.hasMs,
		ScrollDepth:    eng.scrollDepth,
		HasScrollDepth: eng.hasScrollDepth,
		Dropped:        dropped.list(),
	}
	if raw.AnonymousID != "" {
		kept.VisitorID, kept.HasVisitorID = VisitorID(visitorKey, raw.AnonymousID), true
	}
	return kept, nil
}

// title is what is kept of a document title: scrubbed, then at most
// MaxTitleBytes, cut at a character boundary (scrubbing first, so that no
// address is cut into a piece scrub would not know), or "" when it cannot
// be stored (not UTF-8, or with a NUL), noted in dropped. A title is
// dropped rather than the event refused: it is the least of what an event
// says.
func title(t string, dropped *droppedSet) string {
	if !cleanText(t) {
		dropped.add(DroppedTitle)
		return ""
	}
	t = scrub(t)
	if len(t) > MaxTitleBytes {
		// Cut before the first byte that does not fit, backing up to the
		// start of the character it belongs to.
		cut := MaxTitleBytes
		for cut > 0 && !utf8.RuneStart(t[cut]) {
			cut--
		}
		t = t[:cut]
	}
	return strings.TrimSpace(t)
}

// checkName refuses a missing, oversized or unstorable event name.
func checkName(name string) *Refusal {
	switch {
	case name == "":
		return refuse(ReasonInvalid, "name is required")
	case !cleanText(name):
		return refuse(ReasonInvalid, "name must be UTF-8 text without NUL characters")
	case utf8.RuneCountInString(name) > MaxNameChars:
		return refuse(ReasonInvalid, fmt.Sprintf("name must be at most %d characters", MaxNameChars))
	}
	return nil
}

// siteDomains are the domains the event says it is for, normalized as
// AllowsDomain compares them: those of the domain field ("a.com,b.com",
// Plausible's roll-up of one site into others), or, when it names none
// (absent, empty, only commas) or is over MaxDomainBytes (noted in
// dropped), the page's host, as Plausible derives it. There is at least
// one.
func siteDomains(field, pageHost string, dropped *droppedSet) []string {
	if len(field) > MaxDomainBytes {
		dropped.add(DroppedDomain)
		field = ""
	}
	var domains []string
	for d := range strings.SplitSeq(field, ",") {
		if d = normalizeHost(d); d != "" {
			domains = append(domains, d)
		}
	}
	if len(domains) == 0 {
		return []string{pageHost}
	}
	return domains
}

// engagement is what an engagement event says.
type engagement struct {
	ms             int64
	hasMs          bool
	scrollDepth    int16
	hasScrollDepth bool
}

// engagementOf reads an engagement event's "sd" and "e" as Plausible does:
// an integer, or a string of one; a scroll depth over MaxScrollDepth is
// MaxScrollDepth; a negative one, an engaged time that is negative or
// MaxEngagementMs or more, and anything else are unknown, noted in dropped
// when sent. It refuses an engagement event when both are unknown, which
// would record nothing. Other events' "sd" and "e" are not read.
func engagementOf(raw Raw, dropped *droppedSet) (engagement, *Refusal) {
	if raw.Name != EngagementEvent {
		return engagement{}, nil
	}
	var e engagement
	if sd, ok := sentInteger(raw.ScrollDepth); ok && sd >= 0 {
		e.scrollDepth, e.hasScrollDepth = int16(min(sd, MaxScrollDepth)), true
	} else if raw.ScrollDepth != nil {
		dropped.add(DroppedScrollDepth)
	}
	if ms, ok := sentInteger(raw.EngagementTime); ok && ms >= 0 && ms < MaxEngagementMs {
		e.ms, e.hasMs = ms, true
	} else if raw.EngagementTime != nil {
		dropped.add(DroppedEngagementTime)
	}
	if !e.hasScrollDepth && !e.hasMs {
		return engagement{}, refuse(ReasonInvalid, fmt.Sprintf(
			"an engagement event needs sd (scroll depth, an integer percentage) or e (engaged time, an integer of milliseconds below %d)", int64(MaxEngagementMs)))
	}
	return e, nil
}

// sentInteger reads a JSON integer, or a JSON string holding one.
func sentInteger(m json.RawMessage) (int64, bool) {
	if len(m) == 0 {
		return 0, false
	}
	text := string(m)
	if m[0] == '"' {
		if err := json.Unmarshal(m, &text); err != nil {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	return n, err == nil
}

// notAddr is host, or "" when host is the visitor's own address written as
// an IP literal (someone browsing a site they serve from their own
// machine): the address is used at ingestion only, and a host column is
// no exception.
func notAddr(host string, visitor netip.Addr) string {
	if a, err := netip.ParseAddr(host); err == nil && a.Unmap().WithZone("") == visitor {
		return ""
	}
	return host
}
