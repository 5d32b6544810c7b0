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

// Reason is why an event is not kept. The HTTP layer maps it to a status
// code and a metric label, so its values are stable.
type Reason string

const (
	// ReasonBot is an event from a crawler, monitor, HTTP library or
	// headless browser. It is counted and dropped; the server answers 202
	// so that the bot does not retry.
	ReasonBot Reason = "bot"
	// ReasonForeignDomain is an event for a domain that is not the
	// tenant's. The server answers 403.
	ReasonForeignDomain Reason = "foreign_domain"
	// ReasonOptedOut is an event from a browser that sent Global Privacy
	// Control to a tenant that honours it. Nothing is stored; the server
	// answers 204.
	ReasonOptedOut Reason = "opted_out"
	// ReasonInvalid is an event nothing can be made of: a missing, too
	// long or unstorable name, a missing or too long URL or one without a
	// host, an engagement event with no engagement, or an anonymous id of
	// the wrong shape. The server answers 400. (Parts that cannot be kept,
	// props beyond the limits say, are dropped instead: DroppedPart.)
	ReasonInvalid Reason = "invalid"
)

// Refusal is why an event is not kept, as Reduce returns it. Its Message
// is meant for the response body and the logs, so it says what rule was
// broken and never quotes the request: not the address, not the
// User-Agent, not the body's values.
type Refusal struct {
	// Reason is the class of refusal.
	Reason Reason
	// Message says, for a person, which rule the event broke.
	Message string
}

// Error returns the reason and the message.
func (r *Refusal) Error() string {
	return "event refused (" + string(r.Reason) + "): " + r.Message
}

// refuse is a Refusal as an error.
func refuse(reason Reason, message string) *Refusal {
	return &Refusal{Reason: reason, Message: message}
}
