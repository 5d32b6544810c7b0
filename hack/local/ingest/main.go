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

// Command ingest runs, for `make run`, one ingest process per non-suspended
// tenant of the local cluster, exactly as the operator renders its ingest
// container (arguments, environment from the tenant's ingest-credentials
// Secret, config file from its ingest-config ConfigMap): kwok's pods do not
// run containers.
//
//	go run ./hack/local/ingest up BINARY [ARGS...]   wait for the tenants, start their processes
//	go run ./hack/local/ingest down                  stop them
//
// ARGS go after the container's arguments (the last of a flag wins), for
// what only the local run has: a GeoIP database, say.
//
// A tenant's process stands in for the pods of its ingest Service: it
// listens on the Service's ClusterIP and port (a loopback address: see
// hack/local/cluster.sh), where the local gateway sends the tenant's
// traffic (hack/local/gateway.sh). Tenant i, in name order, serves its
// probes and metrics on 127.0.0.1:19080+i. Processes, their logs
// (.run/ingest/<tenant>.log) and files live in .run/ingest.
package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/localrun"
	"github.com/millimetric/tenant-operator/internal/render"
)

// baseMetricsPort puts tenant i's probes and metrics on 19080+i.
const baseMetricsPort = 19080

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: ingest up BINARY [ARGS...] | down")
		os.Exit(2)
	}
	dir := filepath.Join(".run", "ingest")
	var err error
	switch os.Args[1] {
	case "up":
		if len(os.Args) < 3 {
			fmt.Fprintln(os.Stderr, "usage: ingest up BINARY [ARGS...]")
			os.Exit(2)
		}
		err = up(dir, os.Args[2], os.Args[3:])
	case "down":
		err = down(dir)
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "!! ingest: %v\n", err)
		os.Exit(1)
	}
}

func up(dir, binary string, extraArgs []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(analyticsv1alpha1.AddToScheme(scheme))
	cfg, err := clientcmd.BuildConfigFromFlags("", os.Getenv("KUBECONFIG"))
	if err != nil {
		return err
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	if err := down(dir); err != nil {
		return err
	}
	tenants := &analyticsv1alpha1.AnalyticsTenantList{}
	if err := c.List(ctx, tenants); err != nil {
		return err
	}
	slices.SortFunc(tenants.Items, func(a, b analyticsv1alpha1.AnalyticsTenant) int { return strings.Compare(a.Name, b.Name) })
	for i, t := range tenants.Items {
		if t.Spec.Suspend {
			fmt.Printf(">> ingest: %s is suspended: no ingest process\n", t.Name)
			continue
		}
		if err := start(ctx, c, dir, binary, t.Name, baseMetricsPort+i, extraArgs); err != nil {
			return fmt.Errorf("tenant %s: %w", t.Name, err)
		}
	}
	return nil
}

// start waits for the tenant's Deployment, Secret and Service and runs its
// ingest container on the Service's address.
func start(ctx context.Context, c client.Client, dir, binary, tenant string, metricsPort int, extraArgs []string) error {
	ns := render.DefaultNamespacePrefix + tenant
	dep := &appsv1.Deployment{}
	for {
		err := c.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestName}, dep)
		if err == nil && secretExists(ctx, c, ns) && serviceExists(ctx, c, ns) {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("its ingest Deployment, Service and credentials did not appear: is the operator running? (%w)", err)
		case <-time.After(time.Second):
		}
	}
	tdir := filepath.Join(dir, tenant)
	if err := os.MkdirAll(tdir, 0o700); err != nil {
		return err
	}
	addr, err := localrun.ServiceAddress(ctx, c, ns, render.IngestName, render.IngestServicePort)
	if err != nil {
		return err
	}
	// Listening below port 1024 takes root or CAP_NET_BIND_SERVICE: say so
	// here rather than in the process's log.
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("cannot listen on its Service's address %s (ports below 1024 need root, or CAP_NET_BIND_SERVICE on the ingest binary): %w", addr, err)
	}
	_ = l.Close()
	args := append([]string{"--listen=" + addr, "--metrics-listen=127.0.0.1:" + strconv.Itoa(metricsPort), "--shutdown-delay=0s"}, extraArgs...)
	cmd, err := localrun.Command(context.Background(), c, ns, &dep.Spec.Template.Spec, render.IngestName, binary, tdir, args...)
	if err != nil {
		return err
	}
	logFile, err := os.OpenFile(filepath.Join(dir, tenant+".log"), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // outlives `make run`'s shell until `make down`
	if err := cmd.Start(); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, tenant+".pid"), []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		return err
	}
	fmt.Printf(">> ingest: %s → http://%s/api/event (Service %s/%s), metrics http://127.0.0.1:%d/metrics (log .run/ingest/%s.log)\n",
		tenant, addr, ns, render.IngestName, metricsPort, tenant)
	return nil
}

func serviceExists(ctx context.Context, c client.Client, ns string) bool {
	return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestName}, &corev1.Service{}) == nil
}

func secretExists(ctx context.Context, c client.Client, ns string) bool {
	return c.Get(ctx, client.ObjectKey{Namespace: ns, Name: render.IngestSecretName}, &corev1.Secret{}) == nil
}

// down stops every process a previous up started, waiting for their drain.
func down(dir string) error {
	pids, _ := filepath.Glob(filepath.Join(dir, "*.pid"))
	for _, f := range pids {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err == nil {
			if err := syscall.Kill(pid, syscall.SIGTERM); err == nil {
				for i := 0; i < 100 && syscall.Kill(pid, 0) == nil; i++ {
					time.Sleep(100 * time.Millisecond)
				}
			} else if !errors.Is(err, syscall.ESRCH) {
				return err
			}
		}
		_ = os.Remove(f)
	}
	return nil
}
