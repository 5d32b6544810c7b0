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
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/util/retry"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/storage"
)

const (
	wait = 90 * time.Second
	tick = 250 * time.Millisecond
	// systemNamespace holds the regions' admin Secrets and the leader
	// election Lease.
	systemNamespace = "millimetric-system"
	// leaseName is the leader election Lease every operator here competes for.
	leaseName = "tenant-operator-e2e"
	// chartRelease is the release name the chart's RBAC is rendered for; the
	// operators here run as its ServiceAccount.
	chartRelease = "e2e"
	// repoRoot is the repository, from this package's directory (go test's
	// working directory).
	repoRoot = "../.."
)

var (
	k8s     client.Client
	scheme  = runtime.NewScheme()
	manager string
	logDir  string
	// helm is the pinned helm binary (E2E_HELM), chartDir the chart
	// (E2E_CHART, else dist/chart).
	helm, chartDir string
	// operatorKubeconfig is the local cluster's kubeconfig impersonating the
	// chart's ServiceAccount: every operator here runs with it.
	operatorKubeconfig string
	// operatorClient makes requests as the chart's ServiceAccount, as the
	// operators do.
	operatorClient client.Client
	// admin reaches the local PostgreSQL as its superuser, per region.
	admin = map[analyticsv1alpha1.Region]storage.AdminConfig{}
)

func TestMain(m *testing.M) {
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(analyticsv1alpha1.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))
	// The API server's warnings (Pod Security's among them) go to stderr.
	ctrllog.SetLogger(zap.New(zap.WriteTo(os.Stderr)))
	if err := setUp(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
	os.Exit(m.Run())
}

func setUp() error {
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return fmt.Errorf("KUBECONFIG must point at the local cluster (make test-e2e sets it): %w", err)
	}
	if k8s, err = client.New(cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	if manager = os.Getenv("E2E_MANAGER"); manager == "" {
		return fmt.Errorf("E2E_MANAGER must name the manager binary")
	}
	if logDir = os.Getenv("E2E_LOG_DIR"); logDir == "" {
		logDir = os.TempDir()
	}
	if helm = os.Getenv("E2E_HELM"); helm == "" {
		return fmt.Errorf("E2E_HELM must name the helm binary")
	}
	if chartDir = os.Getenv("E2E_CHART"); chartDir == "" {
		chartDir = filepath.Join(repoRoot, "dist", "chart")
	}
	if err := setUpGateway(); err != nil {
		return err
	}
	if err := runAsTheChartsServiceAccount(); err != nil {
		return err
	}
	port, err := strconv.Atoi(os.Getenv("E2E_PG_PORT"))
	if err != nil {
		return fmt.Errorf("E2E_PG_PORT: %w", err)
	}
	password, err := os.ReadFile(os.Getenv("E2E_PG_PASSWORD_FILE"))
	if err != nil {
		return fmt.Errorf("E2E_PG_PASSWORD_FILE: %w", err)
	}
	for region, db := range map[analyticsv1alpha1.Region]string{analyticsv1alpha1.RegionEU: "events_eu", analyticsv1alpha1.RegionUS: "events_us"} {
		admin[region] = storage.AdminConfig{
			Host: os.Getenv("E2E_PG_HOST"), Port: int32(port), Database: db, SSLMode: storage.SSLModeDisable,
			Username: os.Getenv("E2E_PG_USER"), Password: strings.TrimSpace(string(password)),
		}
	}
	return nil
}

// operator is one manager process.
type operator struct {
	name string
	// probe is the port of its /healthz and /readyz.
	probe int
	cmd   *exec.Cmd
	log   string
	done  chan struct{}
	once  sync.Once
}

// startOperator runs the manager against the local cluster with leader
// election, as a Deployment's replica would run: as the chart's
// ServiceAccount, with only the chart's RBAC (operatorKubeconfig). It stops
// it (SIGTERM) after the test unless the test killed it. extraArgs come
// after the defaults, so they override them (the last of a flag wins).
func startOperator(t testing.TB, name string, extraArgs ...string) *operator {
	t.Helper()
	probe := freePort(t)
	logPath := filepath.Join(logDir, fmt.Sprintf("%s-%s.log", strings.ReplaceAll(t.Name(), "/", "_"), name))
	out, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{
		"--leader-elect",
		"--leader-election-namespace=" + systemNamespace,
		"--leader-election-id=" + leaseName,
		"--metrics-bind-address=0",
		fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probe),
		"--operator-image=ghcr.io/millimetric/tenant-operator:e2e",
		// withRegions connects without TLS; the admin Secret is in
		// systemNamespace, the operator's namespace out of cluster.
		"--allow-insecure-storage",
		"--zap-devel=false",
	}
	cmd := exec.Command(manager, append(args, extraArgs...)...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+operatorKubeconfig)
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so that a kill reaches it all; killed with the
	// test binary too if that dies without running cleanups (a timeout).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	op := &operator{name: name, probe: probe, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = out.Close(); close(op.done) }()
	t.Cleanup(func() { op.stop(syscall.SIGTERM) })
	// Healthy once its probe endpoint answers.
	NewWithT(t).Eventually(func() error {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", probe), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err
	}, 30*time.Second, tick).Should(Succeed(), "operator %s did not start; see %s", name, logPath)
	return op
}

// stop signals the operator and waits for it to exit.
func (o *operator) stop(sig syscall.Signal) {
	o.once.Do(func() {
		_ = syscall.Kill(-o.cmd.Process.Pid, sig)
		select {
		case <-o.done:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-o.cmd.Process.Pid, syscall.SIGKILL)
			<-o.done
		}
	})
}

// isLeader says whether the operator's log shows it won the election.
func (o *operator) isLeader() bool {
	f, err := os.Open(o.log)
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if strings.Contains(strings.ToLower(sc.Text()), "successfully acquired lease") {
			return true
		}
	}
	return false
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// withRegions applies Ready StorageRegions eu and us for the local
// PostgreSQL; they stay for the next tests.
func withRegions(t testing.TB) {
	t.Helper()
	ctx := context.Background()
	g := NewWithT(t)
	cfg := admin[analyticsv1alpha1.RegionEU]
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: systemNamespace, Name: "pg-e2e-admin"},
		StringData: map[string]string{"username": cfg.Username, "password": cfg.Password}}
	if err := k8s.Create(ctx, secret); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	for name, region := range map[string]analyticsv1alpha1.Region{"eu": analyticsv1alpha1.RegionEU, "us": analyticsv1alpha1.RegionUS} {
		c := admin[region]
		sr := &analyticsv1alpha1.StorageRegion{ObjectMeta: metav1.ObjectMeta{Name: name}}
		// A running operator writes the region's status and finalizer
		// meanwhile: an update on a stale copy is tried again.
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			_, err := controllerutil.CreateOrUpdate(ctx, k8s, sr, func() error {
				sr.Spec = analyticsv1alpha1.StorageRegionSpec{
					Region: region,
					Postgres: analyticsv1alpha1.PostgresSpec{
						Host: c.Host, Port: ptr.To(c.Port), Database: c.Database, SSLMode: analyticsv1alpha1.SSLModeDisable,
						AdminSecretRef: analyticsv1alpha1.SecretReference{Namespace: systemNamespace, Name: secret.Name},
					},
				}
				return nil
			})
			return err
		})
		g.Expect(err).NotTo(HaveOccurred())
	}
	for _, name := range []string{"eu", "us"} {
		g.Eventually(func() bool {
			sr := &analyticsv1alpha1.StorageRegion{}
			return k8s.Get(ctx, client.ObjectKey{Name: name}, sr) == nil &&
				meta.IsStatusConditionTrue(sr.Status.Conditions, analyticsv1alpha1.ConditionReady)
		}, wait, tick).Should(BeTrue(), "StorageRegion %s is not Ready", name)
	}
}
