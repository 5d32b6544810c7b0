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

// Package event decides what is kept of one analytics event. It is the
// "reduce" stage of the ingest service's pipeline (decode → validate →
// reduce → buffer → COPY): Reduce is a pure function of the request body
// (Raw), what the HTTP layer knows of the request (Request), the tenant's
// settings (Policy), a location database (Geo) and the tenant's visitor
// key, and it returns either the row to store (Kept) or why nothing is
// stored (*Refusal).
//
// Reduce is the only code that sees the visitor's address, raw User-Agent
// and anonymous id. The privacy policy promises the address is "used at
// ingestion only to derive country/region and to apply abuse rate
// limits", that only "coarse user-agent data" is kept, and that visitors
// are counted by "an anonymous ID generated in the Visitor's browser and
// stored in localStorage under mm_aid". So none of the three is in Kept,
// nor in any error Reduce returns: the address becomes a location at the
// tenant's precision (the HTTP layer has already used it for the rate
// limit) and takes part in nothing else; the User-Agent becomes three
// families (browser, OS, device); the anonymous id becomes a keyed hash
// under the tenant's own key (VisitorID). An event without an anonymous id
// has no visitor: no address, User-Agent or fingerprint stands in for it.
//
// The policy also promises that query parameters which may carry personal
// data are not kept. The rule is an allowlist, not a denylist: a parameter
// is kept only when the tenant listed it, because nobody can enumerate
// the names under which sites pass e-mail addresses or tokens. For the
// same reason the fragment is always dropped (it carries OAuth tokens in
// the implicit flow), userinfo in a URL is never kept, a path loses its
// ";" parameters (;jsessionid=...), and a referrer is reduced to its host.
// What does pass (the path, allowlisted values, the title, the name,
// props) is scrubbed: e-mail addresses, IP addresses and long tokens are
// replaced by markers (scrub), and a props value that is a URL is reduced
// as the page URL is. The scrub is a safety net with known gaps (see
// MinTokenBytes), not a licence: what a site puts in its pages and props
// stays the customer's responsibility.
//
// The body is Plausible's, and so are its semantics where they do not
// conflict with the policy: a part of an event that cannot be kept (a
// nested property, the 31st property, an over-long referrer's tail, a
// domain list's other sites) is dropped and the rest kept, as Plausible
// does, and said in Kept.Dropped; an event is refused only when nothing
// can be made of it (no name, no usable URL, not the tenant's) or it
// breaks the contract of its own fields (an anonymous id of the wrong
// shape). Plausible's engagement events are engagement of a page
// (EngagementEvent), not custom events.
//
// Bot detection is deliberately conservative. An event is a bot's when its
// User-Agent is empty or very short, or matches a short list of crawler,
// HTTP library, headless browser, monitor and link-preview patterns. Missing
// headers are not a signal: Plausible's Events API is called from a
// customer's server, which forwards the visitor's User-Agent and address
// but usually no Accept or Accept-Language, so requiring them would drop
// every server-side event.
//
// Refusal messages never quote the request: not the address, not the
// User-Agent, and not the body either (a refused URL may well hold the
// e-mail address the allowlist exists to drop), because they end up in
// responses and logs.
package event
