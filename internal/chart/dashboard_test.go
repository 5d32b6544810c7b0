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

package chart

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/millimetric/tenant-operator/controllers"
	ingestmetrics "github.com/millimetric/tenant-operator/internal/ingest/metrics"
)

// dashboardFile is the Grafana dashboard the chart ships.
const dashboardFile = "files/dashboards/tenant-operator.json"

// describingRegisterer records the names of what is registered with it, as
// a registry would describe them, and serves nothing.
type describingRegisterer struct {
	// names maps a metric family's name to whether it is a histogram.
	names map[string]bool
}

var fqName = regexp.MustCompile(`fqName: "([^"]+)"`)

func (d *describingRegisterer) Register(c prometheus.Collector) error {
	histogram := false
	switch c.(type) {
	case prometheus.Histogram, *prometheus.HistogramVec:
		histogram = true
	}
	descs := make(chan *prometheus.Desc)
	go func() { c.Describe(descs); close(descs) }()
	for desc := range descs {
		// Desc keeps its name unexported; its String says it.
		m := fqName.FindStringSubmatch(desc.String())
		if m == nil {
			return fmt.Errorf("no name in %s", desc)
		}
		d.names[m[1]] = histogram
	}
	return nil
}

func (d *describingRegisterer) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := d.Register(c); err != nil {
			panic(err)
		}
	}
}

func (d *describingRegisterer) Unregister(prometheus.Collector) bool { return false }

// exportedMetrics are the series names the code exports: the operator's own
// metrics (controllers.Collectors) and the ingest service's
// (ingestmetrics.New), a histogram's as its _bucket, _sum and _count.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := &describingRegisterer{names: map[string]bool{}}
	reg.MustRegister(controllers.Collectors()...)
	ingestmetrics.New(reg)
	out := map[string]bool{}
	for name, histogram := range reg.names {
		out[name] = true
		if histogram {
			for _, suffix := range []string{"_bucket", "_sum", "_count"} {
				out[name+suffix] = true
			}
		}
	}
	return out
}

var (
	promqlStrings  = regexp.MustCompile(`"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'`)
	promqlMatchers = regexp.MustCompile(`\{[^}]*\}`)
	promqlRanges   = regexp.MustCompile(`\[[^\]]*\]`)
	promqlGrouping = regexp.MustCompile(`\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)`)
	promqlWord     = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	promqlKeywords = []string{"and", "or", "unless", "bool", "offset", "by", "without", "on", "ignoring",
		"group_left", "group_right", "inf", "nan"}
)

// promqlMetricNames are the metric names a PromQL expression selects: what
// is left once strings, label matchers, ranges and grouping labels are
// taken out, but for functions (a name before a parenthesis), keywords and
// numbers.
func promqlMetricNames(expr string) []string {
	s := promqlStrings.ReplaceAllString(expr, `""`)
	s = promqlMatchers.ReplaceAllString(s, " ")
	s = promqlRanges.ReplaceAllString(s, " ")
	s = promqlGrouping.ReplaceAllString(s, " ")
	var names []string
	for _, loc := range promqlWord.FindAllStringIndex(s, -1) {
		word := s[loc[0]:loc[1]]
		if loc[0] > 0 && strings.ContainsAny(s[loc[0]-1:loc[0]], "0123456789.$") {
			continue // part of a number (1e3) or a Grafana variable
		}
		if rest := strings.TrimLeft(s[loc[1]:], " \t\n"); strings.HasPrefix(rest, "(") {
			continue // a function or an aggregation
		}
		if slices.Contains(promqlKeywords, strings.ToLower(word)) {
			continue
		}
		if !slices.Contains(names, word) {
			names = append(names, word)
		}
	}
	return names
}

func TestPromQLMetricNames(t *testing.T) {
	for _, tt := range []struct {
		expr string
		want []string
	}{
		{`sum by (ready, reason) (millimetric_tenants{region=~"$region"})`, []string{"millimetric_tenants"}},
		{`histogram_quantile(0.95, sum by (le, phase) (rate(x_seconds_bucket{controller="a"}[$__rate_interval])))`, []string{"x_seconds_bucket"}},
		{`max by (namespace) (a_bytes / b_bytes)`, []string{"a_bytes", "b_bytes"}},
		{`count(m > 0) or vector(0)`, []string{"m"}},
		{`up{job=~".*tenant-operator.*"} == 1 and on (instance) other_metric offset 5m`, []string{"up", "other_metric"}},
		{`rate(c_total[5m]) * 1e3`, []string{"c_total"}},
	} {
		if got := promqlMetricNames(tt.expr); !slices.Equal(got, tt.want) {
			t.Errorf("promqlMetricNames(%q) = %q, want %q", tt.expr, got, tt.want)
		}
	}
}

// dashboardPanel is what the check reads of a Grafana panel.
type dashboardPanel struct {
	Title   string `json:"title"`
	Targets []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a row's
}

// unexportedQueries lists, per panel, the metric names its queries select
// that the code does not export, and the panels that query nothing.
func unexportedQueries(dashboard []byte, exported map[string]bool) ([]string, error) {
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, err
	}
	var problems []string
	var walk func([]dashboardPanel)
	walk = func(panels []dashboardPanel) {
		for _, p := range panels {
			walk(p.Panels)
			if len(p.Panels) > 0 {
				continue
			}
			queried := false
			for _, target := range p.Targets {
				for _, name := range promqlMetricNames(target.Expr) {
					queried = true
					if !exported[name] {
						problems = append(problems, fmt.Sprintf("panel %q queries %s, which the code does not export: %s", p.Title, name, target.Expr))
					}
				}
			}
			if !queried {
				problems = append(problems, fmt.Sprintf("panel %q queries no metric", p.Title))
			}
		}
	}
	walk(d.Panels)
	return problems, nil
}

func TestTheDashboardQueriesOnlyMetricsTheCodeExports(t *testing.T) {
	exported := exportedMetrics(t)
	for _, name := range []string{"millimetric_tenants", "millimetric_reconcile_phase_duration_seconds_bucket", "ingest_events_refused_total"} {
		if !exported[name] {
			t.Fatalf("%s is not among the exported metrics read from the code; the test reads the wrong registry", name)
		}
	}
	dashboard, err := os.ReadFile(filepath.Join(chartDir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	problems, err := unexportedQueries(dashboard, exported)
	if err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	for _, p := range problems {
		t.Error(p)
	}

	t.Run("a panel naming a metric the code does not export is caught", func(t *testing.T) {
		broken := []byte(`{"panels": [{"title": "typo", "targets": [{"expr": "sum(rate(ingest_events_acepted_total[5m]))"}]},
			{"title": "empty", "targets": [{"expr": "vector(1)"}]}]}`)
		problems, err := unexportedQueries(broken, exported)
		if err != nil {
			t.Fatal(err)
		}
		if len(problems) != 2 || !strings.Contains(problems[0], "ingest_events_acepted_total") || !strings.Contains(problems[1], "queries no metric") {
			t.Errorf("the check found %q", problems)
		}
	})
}

// The dashboard shows what issue 23 asks of it, each by its title.
func TestTheDashboardShowsEveryPartOfTheOperator(t *testing.T) {
	dashboard, err := os.ReadFile(filepath.Join(chartDir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []dashboardPanel `json:"panels"`
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		t.Fatal(err)
	}
	var titles []string
	for _, p := range d.Panels {
		titles = append(titles, strings.ToLower(p.Title))
	}
	sort.Strings(titles)
	for _, want := range []string{"tenants by state", "reconcile latency", "provisioning", "retention", "ingest events per second", "buffer depth", "refusals by reason"} {
		if !slices.ContainsFunc(titles, func(title string) bool { return strings.Contains(title, want) }) {
			t.Errorf("no panel of the dashboard is about %q: %q", want, titles)
		}
	}
}

func TestChartShipsTheDashboardForGrafanasSidecar(t *testing.T) {
	m := render(t, set("metrics.grafanaDashboard.enabled=true")...)
	o, ok := m.find("ConfigMap", release+"-dashboard")
	if !ok {
		t.Fatalf("no dashboard ConfigMap: %s", m)
	}
	fields := o.fields(t)
	labels := fields["metadata"].(map[string]any)["labels"].(map[string]any)
	if labels["grafana_dashboard"] != "1" {
		t.Errorf("the dashboard ConfigMap's labels are %v, want grafana_dashboard: \"1\" for the sidecar", labels)
	}
	want, err := os.ReadFile(filepath.Join(chartDir, dashboardFile))
	if err != nil {
		t.Fatal(err)
	}
	got := fields["data"].(map[string]any)["tenant-operator.json"]
	if got != strings.TrimRight(string(want), "\n") {
		t.Errorf("the ConfigMap does not carry %s as it is", dashboardFile)
	}
	if _, ok := render(t).find("ConfigMap", release+"-dashboard"); ok {
		t.Error("the dashboard is rendered by default; it is off unless asked for")
	}
}
