//go:build e2e

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

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/localrun"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
)

// runIngest runs the ingest container of the tenant's Deployment as a local
// process, with exactly the arguments, environment and files the operator
// rendered (resolved from the tenant's ConfigMap and Secret), on a free
// loopback port (and its probes and metrics on another), and waits until
// it is ready. It returns the process, its log, its public URL and its
// probes' and metrics' URL; the process is killed when the test ends.
func runIngest(t testing.TB, name, ns string, extraArgs ...string) (cmd *exec.Cmd, logs *syncBuffer, url, opsURL string) {
	t.Helper()
	return runIngestAt(t, name, ns, "127.0.0.1:"+strconv.Itoa(freePort(t)), extraArgs...)
}

// runIngestAt is runIngest with the public port on addr ("ip:port").
func runIngestAt(t testing.TB, name, ns, addr string, extraArgs ...string) (cmd *exec.Cmd, logs *syncBuffer, url, opsURL string) {
	t.Helper()
	g := NewWithT(t)
	ctx := context.Background()
	dep := &appsv1.Deployment{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestName}, dep)).To(Succeed())
	opsPort := freePort(t)
	args := append([]string{"--listen=" + addr, "--metrics-listen=127.0.0.1:" + strconv.Itoa(opsPort),
		"--shutdown-delay=0s", "--flush-interval=100ms"}, extraArgs...)
	cmd, err := localrun.Command(ctx, k8s, ns, &dep.Spec.Template.Spec, render.IngestName, os.Getenv("E2E_INGEST"), t.TempDir(), args...)
	g.Expect(err).NotTo(HaveOccurred())
	for _, e := range cmd.Env {
		if strings.HasPrefix(e, "PGUSER=") {
			g.Expect(e).To(Equal("PGUSER="+storageOf(t, name).IngestRole), "ingest must connect as the insert-only role")
		}
	}
	logs = &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	g.Expect(cmd.Start()).To(Succeed())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() })
	url, opsURL = "http://"+addr, fmt.Sprintf("http://127.0.0.1:%d", opsPort)
	g.Eventually(func() int {
		resp, err := http.Get(opsURL + "/readyz")
		if err != nil {
			return 0
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}, wait, tick).Should(Equal(http.StatusOK), "ingest never turned ready: %s", logs)
	return cmd, logs, url, opsURL
}

// syncBuffer collects a process's output, read while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestTheIngestServiceAsRenderedWritesIntoItsTenantsRegionAndRetentionCountsItsVisitors
// runs the ingest container of a US tenant's Deployment as a local
// process, with exactly the arguments, environment and files the operator
// rendered (resolved from the tenant's ConfigMap and Secret), sends it
// events from three visitors, and runs the retention CronJob's container
// the same way once the events are past the window.
func TestTheIngestServiceAsRenderedWritesIntoItsTenantsRegionAndRetentionCountsItsVisitors(t *testing.T) {
	startOperator(t, "a")
	withRegions(t)
	g := NewWithT(t)
	ctx := context.Background()
	const name, ns = "e2e-ingest", "tenant-e2e-ingest"
	createTenant(t, name, analyticsv1alpha1.AnalyticsTenantSpec{
		Region:  analyticsv1alpha1.RegionUS,
		Domains: []analyticsv1alpha1.Domain{"shop.e2e.test"},
		Ingest:  &analyticsv1alpha1.IngestSpec{Replicas: ptr.To[int32](1)},
	})
	g.Eventually(func() bool { return isReady(name) }, wait, tick).Should(BeTrue())

	cmd, logs, url, _ := runIngest(t, name, ns,
		// The test stands in for the edge, which sends the visitor's address.
		"--trusted-proxies=127.0.0.1/32")

	// Three visitors, each a browser with an mm_aid of its own: two send
	// two pageviews each, one sends one, each from an address of its own.
	for i, visitor := range []struct{ addr, aid string }{
		{"192.0.2.10", "aaaaaaaaaaaaaaaaaaaaaa"}, {"192.0.2.11", "aaaaaaaaaaaaaaaaaaaaaa"},
		{"192.0.2.20", "bbbbbbbbbbbbbbbbbbbbbb"}, {"192.0.2.20", "bbbbbbbbbbbbbbbbbbbbbb"},
		{"2001:db8::30", "cccccccccccccccccccccc"},
	} {
		body, _ := json.Marshal(map[string]string{"n": "pageview", "u": "https://shop.e2e.test/sale?utm_source=news&token=secret", "d": "shop.e2e.test", "aid": visitor.aid})
		req, _ := http.NewRequest(http.MethodPost, url+"/api/event", bytes.NewReader(body))
		req.Header.Set("User-Agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36")
		req.Header.Set("X-Forwarded-For", visitor.addr)
		resp, err := http.DefaultClient.Do(req)
		g.Expect(err).NotTo(HaveOccurred())
		_ = resp.Body.Close()
		g.Expect(resp.StatusCode).To(Equal(http.StatusAccepted), "event %d", i)
	}
	g.Expect(cmd.Process.Signal(syscall.SIGTERM)).To(Succeed())
	g.Expect(cmd.Wait()).To(Succeed(), "ingest did not drain cleanly: %s", logs)

	schema := storageOf(t, name).Schema
	count := func(region analyticsv1alpha1.Region) (int, bool) {
		conn, err := storage.Connect(ctx, admin[region])
		g.Expect(err).NotTo(HaveOccurred())
		defer func() { _ = conn.Close(ctx) }()
		var exists bool
		g.Expect(conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, schema+".events").Scan(&exists)).To(Succeed())
		if !exists {
			return 0, false
		}
		var n int
		g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.events WHERE url_path = '/sale?utm_source=news'`).Scan(&n)).To(Succeed())
		return n, true
	}
	n, inUS := count(analyticsv1alpha1.RegionUS)
	g.Expect(inUS).To(BeTrue())
	g.Expect(n).To(Equal(5), "the 5 events, with only the allowlisted parameter, are in the US database")
	_, inEU := count(analyticsv1alpha1.RegionEU)
	g.Expect(inEU).To(BeFalse(), "a US tenant has nothing in the EU database")

	// The events are moved 40 days back, as the tenant's owner, so the
	// retention run finds them past the 30-day window.
	conn, _ := ownerConn(t, ns)
	old := time.Now().UTC().AddDate(0, 0, -40)
	_, err := storage.EnsureDayPartitions(ctx, conn, schema, old, old)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = conn.Exec(ctx, `UPDATE `+schema+`.events SET received_at = $1`, old)
	g.Expect(err).NotTo(HaveOccurred())

	cj := &batchv1.CronJob{}
	g.Expect(k8s.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.RetentionName}, cj)).To(Succeed())
	retention, err := localrun.Command(ctx, k8s, ns, &cj.Spec.JobTemplate.Spec.Template.Spec, render.RetentionName, manager, t.TempDir())
	g.Expect(err).NotTo(HaveOccurred())
	out, err := retention.CombinedOutput()
	g.Expect(err).NotTo(HaveOccurred(), "retention: %s", out)

	var pageviews, visitors, events int64
	g.Expect(conn.QueryRow(ctx, `SELECT sum(pageviews), sum(visitors), sum(events) FROM `+schema+`.daily_aggregates WHERE day = $1::date`, old).
		Scan(&pageviews, &visitors, &events)).To(Succeed())
	g.Expect([]int64{pageviews, visitors, events}).To(Equal([]int64{5, 3, 5}), "pageviews, visitors, events of the rolled-up day")
	var raw int
	g.Expect(conn.QueryRow(ctx, `SELECT count(*) FROM `+schema+`.events`).Scan(&raw)).To(Succeed())
	g.Expect(raw).To(BeZero())
}
