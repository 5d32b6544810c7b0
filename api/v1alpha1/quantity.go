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

package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// QuantityPattern is the only form of Quantity the API server accepts
// (the CEL rule on Quantity holds the same expression; a test keeps the
// two equal) and the only one the operator parses: at most 12 digits, at
// most 6 after the point, and one of the suffixes a CPU or memory amount
// needs. No sign, no exponent. Every string it matches is a valid
// resource.Quantity, and parses in constant time.
const QuantityPattern = `^[0-9]{1,12}([.][0-9]{1,6})?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$`

// QuantityMaxLength is the longest string QuantityPattern matches.
const QuantityMaxLength = 21

// QuantityMessage is what the API server says of a Quantity it refuses,
// and the operator of one stored before that.
const QuantityMessage = "must be an amount such as 2, 0.5, 500m, 512Mi or 1Gi: a number of at most 12 digits " +
	"(and 6 after the point) with an optional suffix m, k, M, G, T, Ki, Mi, Gi or Ti; no sign and no exponent"

var quantityPattern = regexp.MustCompile(QuantityPattern)

// Quantity is an amount of CPU or memory as it is written in the
// manifest: a number (2, 536870912) or a string ("500m", "0.5", "512Mi").
//
// It is not a resource.Quantity on purpose. apimachinery's quantity parser
// accepts an exponent of any size and then spends minutes and gigabytes on
// "1e999999999999999999" (and seconds on "1e-2147483648"); a field of that
// type is parsed while the operator decodes the object, so one such
// manifest stopped every tenant's reconcile. The API server now refuses
// anything but QuantityPattern (a CEL rule with a maxLength in front: CEL
// is not evaluated on a value that is too long, and the rule uses no
// quantity() or isQuantity(), which would run the same parser inside the
// API server), and the operator keeps the value as text and parses it only
// through Parse, which checks the same pattern first. An object stored
// before the rule existed is refused by the operator with a condition
// (ReasonInvalidSpec) instead of being parsed.
//
// +kubebuilder:validation:XIntOrString
// +kubebuilder:validation:Type=""
// +kubebuilder:validation:MaxLength=21
// +kubebuilder:validation:XValidation:rule="type(self) == int ? self >= 0 && self <= 999999999999 : self.matches('^[0-9]{1,12}([.][0-9]{1,6})?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$')",message="must be an amount such as 2, 0.5, 500m, 512Mi or 1Gi: a number of at most 12 digits (and 6 after the point) with an optional suffix m, k, M, G, T, Ki, Mi, Gi or Ti; no sign and no exponent"
type Quantity string

// UnmarshalJSON keeps the value as text, whether the manifest wrote it as
// a string or as a number; nothing is parsed.
func (q *Quantity) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case bytes.Equal(b, []byte("null")):
		return nil
	case len(b) > 0 && b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*q = Quantity(s)
	default:
		var n json.Number
		if err := json.Unmarshal(b, &n); err != nil {
			return fmt.Errorf("a quantity must be a number or a string: %w", err)
		}
		*q = Quantity(n)
	}
	return nil
}

// Parse is the amount, once it is known to be of QuantityPattern; an
// error, and no parsing at all, otherwise.
func (q Quantity) Parse() (resource.Quantity, error) {
	if !quantityPattern.MatchString(string(q)) {
		return resource.Quantity{}, fmt.Errorf("%s %s", quoteShort(string(q)), QuantityMessage)
	}
	return resource.ParseQuantity(string(q))
}

// quoteShort quotes a value for a message, cut short: an object stored
// before the schema bounded it may hold a value of any length.
func quoteShort(s string) string {
	const most = 32
	if len(s) > most {
		return fmt.Sprintf("%q...", s[:most])
	}
	return fmt.Sprintf("%q", s)
}

// IngestResources are the CPU and memory the ingest container requests and
// is limited to, as in a container's resources but for cpu and memory only.
// A request above its limit is refused.
//
// The rules compare two amounts exactly without quantity(), which would run
// apimachinery's parser in the API server: each amount, of QuantityPattern,
// is taken apart with find() (and bound to names with map() over a
// list of one: the API server's CEL has no cel.bind) into its integer digits, its up to 6
// fraction digits and its suffix, as n, the amount in millionths, times k,
// what a unit of the suffix is in thousandths (m 1, none 1000, Ki 1024000,
// ... Ti 1099511627776000), which makes n*k the amount in billionths.
// n*k reaches 1.1e33, beyond int64, so it is multiplied out in base 1e9
// halves into [hi, lo] with lo below 1e18, every partial product below
// 2e18; the pairs then compare in order. Doubles would not do: 1.1G and
// 1100M differ as doubles.
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.cpu) || !has(self.limits.cpu) || [[string(self.requests.cpu), string(self.limits.cpu)].map(s, [int(s.find('^[0-9]+')) * 1000000 + (s.find('[.][0-9]+') == \"\" ? 0 : int((s.find('[.][0-9]+').substring(1) + '00000').substring(0, 6)))].map(n, [{'m': 1, \"\": 1000, 'k': 1000000, 'M': 1000000000, 'G': 1000000000000, 'T': 1000000000000000, 'Ki': 1024000, 'Mi': 1048576000, 'Gi': 1073741824000, 'Ti': 1099511627776000}[s.find('[a-zA-Z]+$')]].map(k, [(n / 1000000000) * (k % 1000000000) + (n % 1000000000) * (k / 1000000000)].map(mid, [(mid % 1000000000) * 1000000000 + (n % 1000000000) * (k % 1000000000)].map(t, [(n / 1000000000) * (k / 1000000000) + mid / 1000000000 + t / 1000000000000000000, t % 1000000000000000000])[0])[0])[0])[0])].map(v, v[0][0] < v[1][0] || (v[0][0] == v[1][0] && v[0][1] <= v[1][1]))[0]",message="requests.cpu must not be more than limits.cpu: a container cannot ask for more than it may use",fieldPath=".requests.cpu"
// +kubebuilder:validation:XValidation:rule="!has(self.requests) || !has(self.limits) || !has(self.requests.memory) || !has(self.limits.memory) || [[string(self.requests.memory), string(self.limits.memory)].map(s, [int(s.find('^[0-9]+')) * 1000000 + (s.find('[.][0-9]+') == \"\" ? 0 : int((s.find('[.][0-9]+').substring(1) + '00000').substring(0, 6)))].map(n, [{'m': 1, \"\": 1000, 'k': 1000000, 'M': 1000000000, 'G': 1000000000000, 'T': 1000000000000000, 'Ki': 1024000, 'Mi': 1048576000, 'Gi': 1073741824000, 'Ti': 1099511627776000}[s.find('[a-zA-Z]+$')]].map(k, [(n / 1000000000) * (k % 1000000000) + (n % 1000000000) * (k / 1000000000)].map(mid, [(mid % 1000000000) * 1000000000 + (n % 1000000000) * (k % 1000000000)].map(t, [(n / 1000000000) * (k / 1000000000) + mid / 1000000000 + t / 1000000000000000000, t % 1000000000000000000])[0])[0])[0])[0])].map(v, v[0][0] < v[1][0] || (v[0][0] == v[1][0] && v[0][1] <= v[1][1]))[0]",message="requests.memory must not be more than limits.memory: a container cannot ask for more than it may use",fieldPath=".requests.memory"
type IngestResources struct {
	// Requests is what the ingest container is scheduled with.
	// +optional
	Requests *ComputeResources `json:"requests,omitempty"`
	// Limits is the most the ingest container may use.
	// +optional
	Limits *ComputeResources `json:"limits,omitempty"`
}

// ComputeResources are amounts of CPU and memory.
type ComputeResources struct {
	// CPU in cores: 2, 0.5 or 500m.
	// +optional
	CPU Quantity `json:"cpu,omitempty"`
	// Memory in bytes: 536870912, 512Mi or 1Gi.
	// +optional
	Memory Quantity `json:"memory,omitempty"`
}

// amount is one quantity of ComputeResources: its resource, its field
// name and its value.
type amount struct {
	name  corev1.ResourceName
	field string
	value Quantity
}

func (c *ComputeResources) amounts() []amount {
	return []amount{{corev1.ResourceCPU, "cpu", c.CPU}, {corev1.ResourceMemory, "memory", c.Memory}}
}

// resourceList is the amounts given, parsed; an amount that does not parse
// is left out (CheckQuantities reports it). Nil when none is given.
func (c *ComputeResources) resourceList() corev1.ResourceList {
	if c == nil {
		return nil
	}
	var list corev1.ResourceList
	for _, a := range c.amounts() {
		if a.value == "" {
			continue
		}
		if q, err := a.value.Parse(); err == nil {
			if list == nil {
				list = corev1.ResourceList{}
			}
			list[a.name] = q
		}
	}
	return list
}

// Requirements are the container resources these stand for.
func (r *IngestResources) Requirements() corev1.ResourceRequirements {
	return corev1.ResourceRequirements{Requests: r.Requests.resourceList(), Limits: r.Limits.resourceList()}
}

// CheckQuantities reports the first quantity of the spec the operator
// will not parse, naming its field: none can reach the API server today,
// but an object stored before the schema refused them may still hold one.
func (s *AnalyticsTenantSpec) CheckQuantities() error {
	if s.Ingest == nil || s.Ingest.Resources == nil {
		return nil
	}
	for _, part := range []struct {
		field     string
		resources *ComputeResources
	}{{"requests", s.Ingest.Resources.Requests}, {"limits", s.Ingest.Resources.Limits}} {
		if part.resources == nil {
			continue
		}
		for _, a := range part.resources.amounts() {
			if a.value == "" {
				continue
			}
			if _, err := a.value.Parse(); err != nil {
				return fmt.Errorf("spec.ingest.resources.%s.%s: %w", part.field, a.field, err)
			}
		}
	}
	return nil
}
