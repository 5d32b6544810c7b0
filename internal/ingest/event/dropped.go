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

// DroppedPart names a part of an event that Reduce dropped while keeping
// the rest, as Plausible does, instead of refusing the event. The server
// says which parts it dropped in the answer (X-Millimetric-Dropped) and
// counts them by part, so nothing is dropped silently. Its names
// (String) are stable, a fixed set, and never quote the body.
type DroppedPart uint8

// The parts Reduce may drop, in the order Kept.Dropped lists them.
const (
	// DroppedDomain: the domain field was over MaxDomainBytes; the page's
	// host stood in for it.
	DroppedDomain DroppedPart = iota
	// DroppedProps: props were not a JSON object; none was kept.
	DroppedProps
	// DroppedPropNested: a property whose value is an object or an array.
	DroppedPropNested
	// DroppedPropEmptyKey: a property with an empty or blank name.
	DroppedPropEmptyKey
	// DroppedPropTooLong: a property whose name is over MaxPropKeyBytes or
	// whose value is over MaxPropValueBytes.
	DroppedPropTooLong
	// DroppedPropUnstorable: a property PostgreSQL cannot store: a NUL
	// character, a number beyond its numeric type.
	DroppedPropUnstorable
	// DroppedPropOverLimit: the properties after the MaxPropsKeys-th.
	DroppedPropOverLimit
	// DroppedTitle: a title that is not UTF-8 text, or holds a NUL.
	DroppedTitle
	// DroppedScrollDepth: an engagement event's "sd" that is not an
	// integer of 0 or more; its "e" was kept.
	DroppedScrollDepth
	// DroppedEngagementTime: an engagement event's "e" that is not an
	// integer from 0 to below MaxEngagementMs; its "sd" was kept.
	DroppedEngagementTime

	// droppedPartCount is how many parts there are; a new part goes above.
	droppedPartCount
)

// droppedPartNames are the parts' names, the values of the server's
// metric label and answer header. A part without a name fails
// TestEveryDroppedPartHasAName.
var droppedPartNames = [droppedPartCount]string{
	DroppedDomain:         "domain",
	DroppedProps:          "props",
	DroppedPropNested:     "props.nested",
	DroppedPropEmptyKey:   "props.empty_key",
	DroppedPropTooLong:    "props.too_long",
	DroppedPropUnstorable: "props.unstorable",
	DroppedPropOverLimit:  "props.over_limit",
	DroppedTitle:          "title",
	DroppedScrollDepth:    "sd",
	DroppedEngagementTime: "e",
}

// String is the part's name.
func (p DroppedPart) String() string {
	if p >= droppedPartCount {
		return "unknown"
	}
	return droppedPartNames[p]
}

// DroppedParts are all the parts Reduce may drop, in order.
func DroppedParts() []DroppedPart {
	parts := make([]DroppedPart, droppedPartCount)
	for i := range parts {
		parts[i] = DroppedPart(i)
	}
	return parts
}

// droppedSet collects the parts dropped of one event, each once.
type droppedSet uint32

func (s *droppedSet) add(p DroppedPart) { *s |= 1 << p }

// list is the parts in order, or nil.
func (s droppedSet) list() []DroppedPart {
	if s == 0 {
		return nil
	}
	var out []DroppedPart
	for p := range droppedPartCount {
		if s&(1<<p) != 0 {
			out = append(out, p)
		}
	}
	return out
}
