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

// Command manager is the Millimetric tenant operator. It only wires: flags,
// the manager, its health checks and metrics, and the controllers.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	gatewayv1 "sigs.k8s.io/gateway-api/apis/v1"

	analyticsv1alpha1 "github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/controllers"
	"github.com/millimetric/tenant-operator/internal/memlimit"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/retention"
	"github.com/millimetric/tenant-operator/internal/version"
)

func main() {
	// The same binary runs the retention Jobs: `manager retention ...`.
	if len(os.Args) > 1 && os.Args[1] == "retention" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := retention.Run(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	os.Exit(run())
}

func run() int {
	var (
		metricsAddr      string
		metricsSecure    bool
		metricsCertDir   string
		probeAddr        string
		pprofAddr        string
		leaderElect      bool
		leaderElectionID string
		leaderElectionNS string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", ":8443", "Address the metrics endpoint binds to; \"0\" disables it.")
	flag.BoolVar(&metricsSecure, "metrics-secure", true, "Serve metrics over HTTPS with Kubernetes authentication and authorization.")
	flag.StringVar(&metricsCertDir, "metrics-cert-dir", "", "Directory holding the tls.crt and tls.key the metrics endpoint serves, reloaded when they change (a mounted Secret), so a scraper can verify it; empty: a self-signed certificate made at start, which no scraper can verify.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "Address the /healthz and /readyz endpoints bind to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "0", "Address Go's /debug/pprof endpoints bind to (heap and CPU profiles, unauthenticated: bind it to loopback); \"0\" disables them.")
	flag.BoolVar(&leaderElect, "leader-elect", false, "Elect a leader so that only one of several replicas reconciles.")
	flag.StringVar(&leaderElectionID, "leader-election-id", "tenant-operator.analytics.millimetric.ai", "Name of the leader election Lease; instances sharding tenants need distinct ids.")
	flag.StringVar(&leaderElectionNS, "leader-election-namespace", "", "Namespace of the leader election Lease; defaults to the pod's namespace.")
	defaults := render.DefaultSettings()
	var (
		ingestImage, operatorImage, namespacePrefix                       string
		edgeSelector, monitoringSelector, dnsNamespaceSelector, dnsPodSel string
		tenantSelector, trustedProxies                                    string
		gateway, ingestDomain, gatewaySelector                            string
		geoIPImage, geoIPFile, geoIPMount                                 string
		cfConnectingIP                                                    bool
		maxConcurrentReconciles                                           int
	)
	flag.StringVar(&ingestImage, "ingest-image", defaults.IngestImage, "Ingest image for tenants that do not name one.")
	flag.StringVar(&operatorImage, "operator-image", defaults.OperatorImage, "The operator's own image, which the retention CronJobs run in retention mode.")
	flag.StringVar(&namespacePrefix, "tenant-namespace-prefix", defaults.NamespacePrefix, "Prefix of tenant namespaces: <prefix><tenant>.")
	flag.StringVar(&edgeSelector, "edge-namespace-selector", metav1.FormatLabelSelector(&defaults.EdgeNamespaceSelector), "Label selector of the namespaces whose pods may send events to ingest.")
	flag.StringVar(&dnsNamespaceSelector, "dns-namespace-selector", metav1.FormatLabelSelector(&defaults.DNSNamespaceSelector), "Label selector of the namespace cluster DNS runs in.")
	flag.StringVar(&dnsPodSel, "dns-pod-selector", metav1.FormatLabelSelector(&defaults.DNSPodSelector), "Label selector of the cluster DNS pods.")
	flag.StringVar(&monitoringSelector, "ingest-monitoring-namespace-selector", metav1.FormatLabelSelector(&defaults.MonitoringNamespaceSelector), "Label selector of the namespaces whose pods (Prometheus) may scrape ingest's metrics port.")
	flag.StringVar(&trustedProxies, "ingest-trusted-proxies", "", "Comma-separated CIDRs of the proxies in front of ingest (the edge: the gateway's pods, and Cloudflare's published ranges behind Cloudflare); ingest trusts X-Forwarded-For, Forwarded and (with --ingest-cf-connecting-ip) CF-Connecting-IP only from them. Empty: from none, which --ingest-gateway refuses.")
	flag.BoolVar(&cfConnectingIP, "ingest-cf-connecting-ip", false, "Pass ingest --cf-connecting-ip: from a trusted proxy, the CF-Connecting-IP header names the visitor (the edge is Cloudflare).")
	flag.StringVar(&gateway, "ingest-gateway", "", "The platform Gateway every tenant's HTTPRoute attaches to, <namespace>/<name>[/<sectionName>]. Empty: no routes, ingest is reached in-cluster only.")
	flag.StringVar(&ingestDomain, "ingest-domain", "", "DNS suffix of the tenants' default hostnames, <tenant>.<ingest-domain>; required with --ingest-gateway.")
	flag.StringVar(&gatewaySelector, "ingest-gateway-namespace-selector", "", "Label selector of the namespaces whose pods (the Gateway's data plane) may reach ingest's public port. Empty: with --ingest-gateway, the Gateway's own namespace (kubernetes.io/metadata.name=<namespace>); without, none.")
	flag.StringVar(&geoIPImage, "ingest-geoip-image", "", "OCI image holding a MaxMind-format City database (DB-IP Lite City, GeoLite2 City) for ingest's locations. Empty: no database, no locations.")
	flag.StringVar(&geoIPFile, "ingest-geoip-file", "", "Absolute path of the .mmdb file inside --ingest-geoip-image.")
	flag.StringVar(&geoIPMount, "ingest-geoip-mount", string(render.GeoIPMountImage), "How the database reaches the ingest pods: image (an image volume, Kubernetes 1.33+ with image volumes on) or copy (an init container copies it with cp into an emptyDir).")
	var pullSecrets []string
	flag.Func("tenant-image-pull-secret", "Name of a Secret in each tenant namespace that the ingest and retention pods pull their images with; repeat it or give a comma-separated list. The platform puts the Secret there (README, \"Images\").", func(v string) error {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name == "" {
				continue
			} else if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
				return fmt.Errorf("%q is not a Secret name: %s", name, strings.Join(errs, "; "))
			}
			pullSecrets = append(pullSecrets, name)
		}
		return nil
	})
	var allowedSecretNamespace string
	var allowInsecureStorage bool
	flag.StringVar(&allowedSecretNamespace, "allowed-secret-namespace", ownNamespace(),
		"The only namespace StorageRegions' admin Secrets are read from; default the operator's own (the pod's namespace, else "+defaultSystemNamespace+").")
	flag.BoolVar(&allowInsecureStorage, "allow-insecure-storage", false,
		"Accept StorageRegions with sslMode disable (clear text) or require (no certificate check); for local development only.")
	flag.StringVar(&tenantSelector, "tenant-selector", "", "Label selector of the AnalyticsTenants this instance reconciles (sharding); empty means all.")
	flag.IntVar(&maxConcurrentReconciles, "max-concurrent-reconciles", 4, "How many tenants are reconciled at once.")
	var maxConcurrentRollouts int
	flag.IntVar(&maxConcurrentRollouts, "max-concurrent-tenant-rollouts", controllers.DefaultMaxConcurrentRollouts,
		"How many tenants' ingest Deployments may change their pod template at once (after an upgrade with a new default image, say); the others wait, reason RolloutQueued. 0: no limit.")
	showVersion := flag.Bool("version", false, "Print the version and exit.")
	zapOpts := zap.Options{}
	zapOpts.BindFlags(flag.CommandLine)
	flag.Parse()
	if *showVersion {
		fmt.Print(version.Line("manager"))
		return 0
	}

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&zapOpts)))
	log := ctrl.Log.WithName("setup")
	if soft := memlimit.Set(); soft > 0 {
		log.Info("Go memory limit set from the container's", "bytes", soft, "fraction", memlimit.Fraction)
	}
	if memlimit.SetGCPercent() {
		log.Info("Go garbage collection target set (GOGC unset)", "percent", memlimit.GCPercent)
	}

	proxies, err := render.ParseTrustedProxies(trustedProxies)
	if err != nil {
		log.Error(err, "invalid CIDR list", "flag", "ingest-trusted-proxies")
		return 2
	}
	gatewayRef, err := render.ParseGatewayRef(gateway)
	if err != nil {
		log.Error(err, "invalid gateway", "flag", "ingest-gateway")
		return 2
	}
	if err := render.CheckIngestDomain(ingestDomain); err != nil {
		log.Error(err, "invalid domain", "flag", "ingest-domain")
		return 2
	}
	settings := render.Settings{IngestImage: ingestImage, OperatorImage: operatorImage, NamespacePrefix: namespacePrefix,
		IngestTrustedProxies: proxies, IngestCFConnectingIP: cfConnectingIP, IngestGateway: gatewayRef, IngestDomain: ingestDomain, ImagePullSecrets: pullSecrets,
		GeoIP: render.GeoIP{Image: geoIPImage, File: geoIPFile, Mount: render.GeoIPMount(geoIPMount)}}
	if err := settings.CheckRouting(); err != nil {
		log.Error(err, "refusing to start: routing through a gateway needs these flags")
		return 2
	}
	if err := settings.GeoIP.Check(); err != nil {
		log.Error(err, "invalid GeoIP database settings")
		return 2
	}
	if gatewaySelector == "" && gatewayRef != nil {
		gatewaySelector = corev1.LabelMetadataName + "=" + gatewayRef.Namespace
	}
	for _, sel := range []struct {
		flag, value string
		into        *metav1.LabelSelector
	}{
		{"edge-namespace-selector", edgeSelector, &settings.EdgeNamespaceSelector},
		{"ingest-monitoring-namespace-selector", monitoringSelector, &settings.MonitoringNamespaceSelector},
		{"ingest-gateway-namespace-selector", gatewaySelector, &settings.GatewayNamespaceSelector},
		{"dns-namespace-selector", dnsNamespaceSelector, &settings.DNSNamespaceSelector},
		{"dns-pod-selector", dnsPodSel, &settings.DNSPodSelector},
	} {
		parsed, err := metav1.ParseToLabelSelector(sel.value)
		if err != nil {
			log.Error(err, "invalid label selector", "flag", sel.flag)
			return 2
		}
		*sel.into = *parsed
	}
	if maxConcurrentRollouts < 0 {
		log.Error(fmt.Errorf("%d is negative", maxConcurrentRollouts), "invalid number", "flag", "max-concurrent-tenant-rollouts")
		return 2
	}
	shard, err := labels.Parse(tenantSelector)
	if err != nil {
		log.Error(err, "invalid label selector", "flag", "tenant-selector")
		return 2
	}

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(analyticsv1alpha1.AddToScheme(scheme))
	utilruntime.Must(gatewayv1.Install(scheme))

	metricsOpts := metricsserver.Options{BindAddress: metricsAddr, SecureServing: metricsSecure}
	if metricsSecure {
		metricsOpts.FilterProvider = filters.WithAuthenticationAndAuthorization
	}
	if metricsCertDir != "" {
		// controller-runtime falls back to a self-signed certificate when
		// the files are missing: a scraper that verifies would then fail
		// with no word here. Say it, and stop.
		for _, name := range []string{"tls.crt", "tls.key"} {
			if _, err := os.Stat(filepath.Join(metricsCertDir, name)); err != nil {
				log.Error(err, "the metrics certificate is missing", "flag", "metrics-cert-dir")
				return 2
			}
		}
		metricsOpts.CertDir, metricsOpts.CertName, metricsOpts.KeyName = metricsCertDir, "tls.crt", "tls.key"
	}

	restConfig := ctrl.GetConfigOrDie()
	controllers.CountRequests(restConfig)
	gatewayAPI, err := controllers.GatewayAPIServed(restConfig)
	if err != nil {
		log.Error(err, "unable to tell whether the Gateway API is installed")
		return 1
	}
	switch {
	case gatewayRef != nil && !gatewayAPI:
		log.Error(nil, "--ingest-gateway is set but the API server serves no gateway.networking.k8s.io/v1 HTTPRoutes: no tenant is routed (their Routed condition says so) until the Gateway API CRDs are installed and the operator restarted", "gateway", gatewayRef.String())
	case gatewayRef != nil:
		log.Info("routing every tenant through the platform Gateway", "gateway", gatewayRef.String(), "domain", ingestDomain)
	}
	mgr, err := ctrl.NewManager(restConfig, ctrl.Options{
		Scheme:                        scheme,
		Cache:                         controllers.CacheOptions(shard, allowedSecretNamespace, gatewayAPI),
		Metrics:                       metricsOpts,
		HealthProbeBindAddress:        probeAddr,
		PprofBindAddress:              pprofAddr,
		LeaderElection:                leaderElect,
		LeaderElectionID:              leaderElectionID,
		LeaderElectionNamespace:       leaderElectionNS,
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		return 1
	}

	regionPolicy := controllers.RegionPolicy{AllowedSecretNamespace: allowedSecretNamespace, AllowInsecure: allowInsecureStorage}
	if allowInsecureStorage {
		log.Info("StorageRegions with sslMode disable or require are accepted (--allow-insecure-storage): events may cross the network in clear text or to a server whose certificate nobody checked")
	}
	if err := (&controllers.StorageRegionReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("tenant-operator"),
		Policy:    regionPolicy,
	}).SetupWithManager(mgr); err != nil {
		log.Error(err, "unable to set up the StorageRegion controller")
		return 1
	}

	var selector labels.Selector
	if !shard.Empty() {
		selector = shard
	}
	if err := (&controllers.TenantReconciler{
		Client:                  mgr.GetClient(),
		APIReader:               mgr.GetAPIReader(),
		Recorder:                mgr.GetEventRecorder("tenant-operator"),
		Settings:                settings,
		TenantSelector:          selector,
		MaxConcurrentReconciles: maxConcurrentReconciles,
		MaxConcurrentRollouts:   maxConcurrentRollouts,
		Policy:                  regionPolicy,
		GatewayAPI:              gatewayAPI,
	}).SetupWithManager(mgr); err != nil {
		log.Error(err, "unable to set up the AnalyticsTenant controller")
		return 1
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		log.Error(err, "unable to set up the health check")
		return 1
	}
	if err := mgr.AddReadyzCheck("informers-synced", cachesSynced(mgr.GetCache())); err != nil {
		log.Error(err, "unable to set up the ready check")
		return 1
	}

	log.Info("starting the manager")
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "the manager stopped with an error")
		return 1
	}
	return 0
}

// cachesSynced is the ready check: the manager is ready once every
// informer its cache has started has listed its kind. A manager whose
// informers cannot sync (an RBAC rule missing, the API server unreachable)
// reconciles nothing, and says so, instead of answering a plain ping. A
// standby replica has started only the informers it reads before it leads,
// and is ready once those have synced.
func cachesSynced(c cache.Cache) healthz.Checker {
	return func(req *http.Request) error {
		ctx, cancel := context.WithTimeout(req.Context(), time.Second)
		defer cancel()
		if !c.WaitForCacheSync(ctx) {
			return errors.New("the manager's caches have not synced: see its log for the kinds it cannot list or watch")
		}
		return nil
	}
}

// defaultSystemNamespace is the operator's namespace when it cannot tell
// its own: config/default installs it there.
const defaultSystemNamespace = "millimetric-system"

// ownNamespace is the namespace the operator runs in: POD_NAMESPACE (the
// manifests set it from the pod's metadata), else the service account's
// namespace file, else defaultSystemNamespace (out of cluster, as make run).
func ownNamespace() string {
	if ns := strings.TrimSpace(os.Getenv("POD_NAMESPACE")); ns != "" {
		return ns
	}
	if b, err := os.ReadFile("/var/run/secrets/kubernetes.io/serviceaccount/namespace"); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b))
	}
	return defaultSystemNamespace
}
