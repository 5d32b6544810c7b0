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

package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// operatorProcess is the manager, run as a process against the local
// cluster with its metrics on a loopback port, as internal/e2e runs it.
type operatorProcess struct {
	cmd        *exec.Cmd
	metricsURL string
	pprofURL   string
	logPath    string
	logDir     string
	done       chan struct{}
}

func startOperator(ctx context.Context, c config) (*operatorProcess, error) {
	metricsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	probePort, err := freePort()
	if err != nil {
		return nil, err
	}
	pprofPort, err := freePort()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.logDir, 0o755); err != nil {
		return nil, err
	}
	logPath := filepath.Join(c.logDir, "operator.log")
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := []string{
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metricsPort),
		"--metrics-secure=false",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probePort),
		fmt.Sprintf("--pprof-bind-address=127.0.0.1:%d", pprofPort),
		fmt.Sprintf("--max-concurrent-reconciles=%d", c.workers),
		// The regions connect without TLS, as internal/e2e's do.
		"--allow-insecure-storage",
		"--allowed-secret-namespace=" + systemNamespace,
		"--zap-devel=false",
	}
	cmd := exec.Command(c.manager, args...)
	// A heap profile sample per 64 KiB allocated rather than 512 KiB, so
	// that the profiles saved at rest resolve what a tenant holds.
	cmd.Env = append(os.Environ(), "GODEBUG="+joinGODEBUG(os.Getenv("GODEBUG"), "memprofilerate=65536"))
	if c.gogc != "" {
		cmd.Env = append(cmd.Env, "GOGC="+c.gogc)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, and killed with the bench if that dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = out.Close()
		return nil, fmt.Errorf("starting %s: %w", c.manager, err)
	}
	p := &operatorProcess{cmd: cmd, logPath: logPath, logDir: c.logDir, done: make(chan struct{}),
		metricsURL: fmt.Sprintf("http://127.0.0.1:%d/metrics", metricsPort),
		pprofURL:   fmt.Sprintf("http://127.0.0.1:%d/debug/pprof", pprofPort)}
	go func() { _ = cmd.Wait(); _ = out.Close(); close(p.done) }()
	logf("operator: pid %d, %s, log %s", cmd.Process.Pid, strings.Join(args, " "), logPath)
	probe := fmt.Sprintf("http://127.0.0.1:%d/readyz", probePort)
	err = waitFor(ctx, "the operator's /readyz ("+probe+")", time.Minute, func() (bool, string) {
		select {
		case <-p.done:
			return false, "the operator exited; see " + logPath
		default:
		}
		resp, err := http.Get(probe) //nolint:noctx // a loopback probe, bounded by waitFor
		if err != nil {
			return false, err.Error()
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status
	})
	if err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// joinGODEBUG adds setting to a GODEBUG value; one already there wins.
func joinGODEBUG(godebug, setting string) string {
	key, _, _ := strings.Cut(setting, "=")
	for _, kv := range strings.Split(godebug, ",") {
		if k, _, _ := strings.Cut(kv, "="); k == key {
			return godebug
		}
	}
	if godebug == "" {
		return setting
	}
	return godebug + "," + setting
}

// stop sends SIGTERM and waits for the exit, then SIGKILL.
func (p *operatorProcess) stop() {
	_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// residentSet is the operator's resident set, from /proc/<pid>/status:
// VmRSS, and its anonymous part (the Go heap, stacks, the runtime's own
// memory: what grows with tenants) and file-backed part (pages of the
// binary, which grows as more of its code runs, up to its size, whatever
// the tenants).
type residentSet struct{ total, anon, file float64 }

func (p *operatorProcess) rss() (residentSet, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return residentSet{}, err
	}
	defer f.Close()
	var rs residentSet
	fields := map[string]*float64{"VmRSS:": &rs.total, "RssAnon:": &rs.anon, "RssFile:": &rs.file}
	found := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		for prefix, into := range fields {
			if v, ok := strings.CutPrefix(sc.Text(), prefix); ok {
				kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
				if err != nil {
					return residentSet{}, fmt.Errorf("/proc/%d/status: %s: %w", p.cmd.Process.Pid, prefix, err)
				}
				*into = kb * 1024
				found++
			}
		}
	}
	if found < len(fields) {
		return residentSet{}, fmt.Errorf("no VmRSS, RssAnon and RssFile in /proc/%d/status", p.cmd.Process.Pid)
	}
	return rs, sc.Err()
}

// heapProfile saves the operator's heap profile, taken after a collection
// (so its in-use figures are the live heap), as <log dir>/heap-<name>.pb.gz
// for go tool pprof (-diff_base of two), and returns a scrape taken right
// after: its go_memstats_heap_alloc_bytes is then about the live heap.
func (p *operatorProcess) heapProfile(ctx context.Context, name string) (sample, string, error) {
	path := filepath.Join(p.logDir, "heap-"+name+".pb.gz")
	ctx2, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx2, http.MethodGet, p.pprofURL+"/heap?gc=1", nil)
	if err != nil {
		return sample{}, "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, "", fmt.Errorf("heap profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return sample{}, "", fmt.Errorf("heap profile: %s", resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return sample{}, "", err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		_ = f.Close()
		return sample{}, "", fmt.Errorf("heap profile: %w", err)
	}
	if err := f.Close(); err != nil {
		return sample{}, "", err
	}
	s, err := p.sample(ctx)
	return s, path, err
}

// sample is one scrape of the operator: its metrics and its RSS.
type sample struct {
	at      time.Time
	metrics metrics
	rss     residentSet
}

func (p *operatorProcess) sample(ctx context.Context) (sample, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.metricsURL, nil)
	if err != nil {
		return sample{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sample{}, fmt.Errorf("scraping %s: %w", p.metricsURL, err)
	}
	defer resp.Body.Close()
	m, err := parseMetrics(resp.Body)
	if err != nil {
		return sample{}, err
	}
	rss, err := p.rss()
	if err != nil {
		return sample{}, err
	}
	return sample{at: time.Now(), metrics: m, rss: rss}, nil
}

// series is one sample of the Prometheus text format.
type series struct {
	name   string
	labels map[string]string
	value  float64
}

type metrics []series

// parseMetrics reads the Prometheus text format, enough of it for the
// counters and gauges the bench reads (no escaped quotes in label values).
func parseMetrics(r io.Reader) (metrics, error) {
	var out metrics
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		s := series{labels: map[string]string{}}
		var rest string
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				return nil, fmt.Errorf("malformed metric line %q", line)
			}
			s.name = line[:i]
			for _, kv := range strings.Split(line[i+1:j], ",") {
				k, v, ok := strings.Cut(kv, "=")
				if ok {
					s.labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
				}
			}
			rest = strings.TrimSpace(line[j+1:])
		} else {
			name, value, _ := strings.Cut(line, " ")
			s.name, rest = name, value
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("metric line without a value: %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric line %q: %w", line, err)
		}
		s.value = v
		out = append(out, s)
	}
	return out, sc.Err()
}

// sum adds up the series of name whose labels pass keep (nil: all).
func (m metrics) sum(name string, keep func(labels map[string]string) bool) float64 {
	var total float64
	for _, s := range m {
		if s.name == name && (keep == nil || keep(s.labels)) {
			total += s.value
		}
	}
	return total
}

func labelIs(key string, values ...string) func(map[string]string) bool {
	return func(l map[string]string) bool {
		for _, v := range values {
			if l[key] == v {
				return true
			}
		}
		return false
	}
}

// Figures read from a scrape.
func (s sample) writes() float64 {
	return s.metrics.sum("millimetric_api_requests_total", labelIs("request", "write"))
}

// reads are GETs that are not watches (lists, and reads the cache could not
// answer): the operator's millimetric_api_requests_total tells them apart,
// client-go's rest_client_requests_total counts a watch as a GET.
func (s sample) reads() float64 {
	return s.metrics.sum("millimetric_api_requests_total", labelIs("request", "read"))
}

// watches are informers' watches started or renewed (every 5 to 10 minutes
// each).
func (s sample) watches() float64 {
	return s.metrics.sum("millimetric_api_requests_total", labelIs("request", "watch"))
}
func (s sample) reconciles(controller string) float64 {
	return s.metrics.sum("controller_runtime_reconcile_total", labelIs("controller", controller))
}
func (s sample) provisions() float64 {
	return s.metrics.sum("millimetric_provision_duration_seconds_count", nil)
}
func (s sample) cpu() float64  { return s.metrics.sum("process_cpu_seconds_total", nil) }
func (s sample) heap() float64 { return s.metrics.sum("go_memstats_heap_inuse_bytes", nil) }

// heapAlloc is the heap's allocated objects, live and not yet collected:
// right after a collection (heapProfile), the live heap.
func (s sample) heapAlloc() float64 { return s.metrics.sum("go_memstats_heap_alloc_bytes", nil) }

// heapHeld is the heap memory the runtime holds from the OS: in use, and
// free but not yet returned (the scavenger keeps about a tenth over the
// collector's goal).
func (s sample) heapHeld() float64 {
	return s.metrics.sum("go_memstats_heap_idle_bytes", nil) - s.metrics.sum("go_memstats_heap_released_bytes", nil) + s.heap()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitFor polls check until it says done, the timeout passes or ctx ends;
// the error says what was awaited and what check last said.
func waitFor(ctx context.Context, what string, timeout time.Duration, check func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	last := ""
	for {
		ok, status := check()
		if ok {
			return nil
		}
		last = status
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s waiting for %s; last: %s", timeout, what, last)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("interrupted waiting for %s; last: %s", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
