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
	"net/netip"
	"net/url"
	"slices"
	"strings"
)

// The markers that stand where scrub removed something. They are letters
// and "-" only, so they read the same in a path, a query string, a title
// and a props value, with nothing to escape.
const (
	// RedactedEmail replaces an e-mail address.
	RedactedEmail = "redacted-email"
	// RedactedIP replaces an IPv4 or IPv6 address written as text.
	RedactedIP = "redacted-ip"
	// RedactedToken replaces a long token: see MinTokenBytes.
	RedactedToken = "redacted-token"
)

// MinTokenBytes is the shortest run of token characters (letters, digits
// and "+/_-", the alphabets of hex, base64 and base64url, and base64's
// padding "=" at its end) that scrub takes
// for a token, when letters and digits alternate in it at least once every
// tokenAlternationSpan characters: hashes, hex and base64 keys, session
// ids, UUIDs, JWTs.
//
// The alternation is what tells a token from a long slug or campaign name:
// "how-to-build-a-kubernetes-operator-in-go-2024" and
// "spring_sale_2024_newsletter_header_cta" are long but words, with one
// or two places where letters meet digits, where a random string of the
// hex or base64 alphabet has one every two to four characters. The rule
// misses a token of letters only, or of digits only, or one with very few
// digits.
const MinTokenBytes = 32

// tokenAlternationSpan: a random-looking run alternates between letters
// and digits at least once per this many characters.
const tokenAlternationSpan = 10

// span is a part of a string that scrub replaces with marker.
type span struct {
	start, end int
	marker     string
}

// scrub replaces every e-mail address, IP address and token in s by its
// marker, and returns s itself when there is none. It is for text the
// policy lets us keep but that a site may have filled with a visitor's
// data: allowlisted query values, path segments, props, the title. An
// e-mail address is also found URL-encoded ("jane%40example.com"), since
// props and titles hold URLs.
func scrub(s string) string {
	var spans []span
	spans = appendEmails(spans, s)
	spans = appendIPs(spans, s)
	spans = appendTokens(spans, s)
	if len(spans) == 0 {
		return s
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	var b strings.Builder
	b.Grow(len(s))
	at := 0
	for _, sp := range spans {
		if sp.start < at {
			// Overlaps one already replaced (a token inside an e-mail
			// address's local part, say): that one covers it.
			if sp.end > at {
				at = sp.end
			}
			continue
		}
		b.WriteString(s[at:sp.start])
		b.WriteString(sp.marker)
		at = sp.end
	}
	b.WriteString(s[at:])
	return b.String()
}

// scrubPath strips the ";" parameters of every segment of an escaped path
// ("/cart;jsessionid=A1B2" is "/cart") and scrubs each segment, unescaped,
// writing a changed segment escaped again. An escaped ";" ("%3B") is part
// of a name, not a parameter, and stays.
func scrubPath(escaped string) string {
	if !strings.ContainsAny(escaped, ";%") && scrub(escaped) == escaped {
		return escaped // the common case, with no allocation
	}
	segments := strings.Split(escaped, "/")
	for i, seg := range segments {
		if k := strings.IndexByte(seg, ';'); k >= 0 {
			seg = seg[:k]
		}
		if plain, err := url.PathUnescape(seg); err == nil {
			if s := scrub(plain); s != plain {
				seg = url.PathEscape(s)
			}
		} else {
			seg = scrub(seg) // a bad escape: look at it as it is
		}
		segments[i] = seg
	}
	return strings.Join(segments, "/")
}

// appendEmails adds the e-mail addresses in s: a local part of letters,
// digits and "._%+-" (or any non-ASCII byte), "@" or "%40", and a domain
// of at least two labels whose last is two or more letters.
func appendEmails(spans []span, s string) []span {
	for i := 0; i < len(s); {
		at, atLen := nextAt(s, i)
		if at < 0 {
			break
		}
		start := at
		for start > 0 && isLocalPartByte(s[start-1]) {
			start--
		}
		end := at + atLen
		for end < len(s) && isDomainByte(s[end]) {
			end++
		}
		for end > at+atLen && (s[end-1] == '.' || s[end-1] == '-') {
			end--
		}
		if start < at && isEmailDomain(s[at+atLen:end]) {
			spans = append(spans, span{start, end, RedactedEmail})
			i = end
			continue
		}
		i = at + atLen
	}
	return spans
}

// nextAt finds the next "@", or its escape "%40", from i on.
func nextAt(s string, i int) (at, length int) {
	for ; i < len(s); i++ {
		switch {
		case s[i] == '@':
			return i, 1
		case s[i] == '%' && i+2 < len(s) && s[i+1] == '4' && s[i+2] == '0':
			return i, 3
		}
	}
	return -1, 0
}

func isLocalPartByte(c byte) bool {
	return isAlnum(c) || c >= 0x80 || strings.IndexByte("._%+-", c) >= 0
}

func isDomainByte(c byte) bool {
	return isAlnum(c) || c >= 0x80 || c == '.' || c == '-'
}

// isEmailDomain: two or more non-empty labels, the last of two or more
// letters (or non-ASCII: an internationalized top-level domain).
func isEmailDomain(d string) bool {
	dot := strings.LastIndexByte(d, '.')
	if dot <= 0 || strings.Contains(d, "..") || d[0] == '.' {
		return false
	}
	tld := d[dot+1:]
	if len(tld) < 2 {
		return false
	}
	for i := 0; i < len(tld); i++ {
		if c := tld[i]; !isLetter(c) && c < 0x80 {
			return false
		}
	}
	return true
}

// appendIPs adds the IP addresses written as text in s: a run of hex
// digits, "." and ":" that is not part of a longer word and that
// netip.ParseAddr reads (a dotted quad, or IPv6 in any spelling, mapped
// IPv4 included). A trailing "." or ":" (the end of a sentence) is not
// part of it.
func appendIPs(spans []span, s string) []span {
	for i := 0; i < len(s); {
		if !isIPByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isIPByte(s[j]) {
			j++
		}
		start, end := i, j
		i = j
		if start > 0 && isWordByte(s[start-1]) {
			continue
		}
		for ; end > start; end-- {
			run := s[start:end]
			if (strings.Count(run, ".") == 3 || strings.Count(run, ":") >= 2) && (end == len(s) || !isWordByte(s[end])) {
				if a, err := netip.ParseAddr(run); err == nil && !a.IsUnspecified() {
					spans = append(spans, span{start, end, RedactedIP})
					break
				}
			}
			if c := s[end-1]; c != '.' && c != ':' {
				break
			}
		}
	}
	return spans
}

func isIPByte(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == '.' || c == ':'
}

// appendTokens adds the long tokens in s: see MinTokenBytes.
func appendTokens(spans []span, s string) []span {
	for i := 0; i < len(s); {
		if !isTokenByte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isTokenByte(s[j]) {
			j++
		}
		for k := 0; k < 2 && j < len(s) && s[j] == '='; k++ {
			j++ // base64's padding
		}
		if j-i >= MinTokenBytes && looksLikeToken(s[i:j]) {
			spans = append(spans, span{i, j, RedactedToken})
		}
		i = j
	}
	return spans
}

// looksLikeToken says whether letters and digits alternate in a run of
// token bytes at least once every tokenAlternationSpan bytes.
func looksLikeToken(run string) bool {
	alternations := 0
	var prev byte // 'a' after a letter, '0' after a digit, 0 after anything else
	for i := 0; i < len(run); i++ {
		var class byte
		switch c := run[i]; {
		case c >= '0' && c <= '9':
			class = '0'
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
			class = 'a'
		}
		if class != 0 && prev != 0 && class != prev {
			alternations++
		}
		prev = class
	}
	return alternations*tokenAlternationSpan >= len(run)
}

// isTokenByte: the bytes of hex, base64 and base64url but the padding
// "=", which only ends a token (so "sid=<token>" is two runs).
func isTokenByte(c byte) bool {
	return isAlnum(c) || c == '+' || c == '/' || c == '_' || c == '-'
}

func isWordByte(c byte) bool { return isAlnum(c) || c == '_' }

func isLetter(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
