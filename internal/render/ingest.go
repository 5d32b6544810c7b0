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

package render

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	ingestconfig "github.com/millimetric/tenant-operator/internal/ingest/config"
)

const (
	// IngestConfigKey is the ingest ConfigMap's only key.
	IngestConfigKey = "ingest.json"
	// IngestConfigDir is where the ingest ConfigMap is mounted.
	IngestConfigDir = "/etc/millimetric"
	// IngestPortName names the ingest container's and Service's port.
	IngestPortName = "http"
	// IngestMetricsPortName names the ingest container's probes' and
	// metrics' port; the Service does not expose it, Prometheus scrapes
	// the pods (the chart's PodMonitor).
	IngestMetricsPortName = "metrics"
	// IngestServicePort is the port of the ingest Service.
	IngestServicePort = 80
)

// IngestServiceAccount is the identity of the ingest pods. Its token is
// never mounted: ingest does not talk to the API server.
func IngestServiceAccount(t Tenant) *corev1.ServiceAccount {
	return &corev1.ServiceAccount{
		TypeMeta:                     metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
		ObjectMeta:                   objectMeta(t, IngestName, componentLabels(t, ComponentIngest)),
		AutomountServiceAccountToken: ptr.To(false),
	}
}

// IngestConfigMap is the ingest service's configuration, one JSON file
// (IngestConfigKey) with the tenant's domains, privacy settings, rate limit
// and region. Lists are sorted, as they are sets, so reordering them in the
// spec neither changes the file nor rolls the pods.
func IngestConfigMap(t Tenant) *corev1.ConfigMap {
	// The file is the ingest service's own configuration type, so both
	// sides of the contract are one Go type. StoreIPAddress is always
	// false, and written out so the promise is explicit in the file: a
	// visitor's address is used only at ingestion and never stored.
	cfg := ingestconfig.Tenant{
		Tenant:              t.Object.Name,
		Region:              string(t.Spec.Region),
		Domains:             sortedCopy(t.Spec.Domains),
		QueryParamAllowlist: sortedCopy(t.Spec.QueryParamAllowlist),
		GeoPrecision:        string(t.Spec.GeoPrecision),

		RespectGlobalPrivacyControl: t.Spec.RespectGlobalPrivacyControl,
		RateLimit:                   ingestconfig.RateLimit{EventsPerMinutePerIP: t.Spec.EventsPerMinutePerIP},
		StoreIPAddress:              false,
	}
	data, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		// Strings, numbers and booleans always marshal.
		panic(fmt.Sprintf("render: marshalling the ingest config: %v", err))
	}
	return &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: objectMeta(t, IngestConfigName, componentLabels(t, ComponentIngest)),
		Data:       map[string]string{IngestConfigKey: string(data) + "\n"},
	}
}

// sortedCopy never returns nil, so an empty list is written as [] and
// never as null.
func sortedCopy(s []string) []string {
	out := make([]string, len(s))
	copy(out, s)
	slices.Sort(out)
	return out
}

// ConfigHash is the SHA-256, in hex, of a ConfigMap's data and binary data,
// independent of map order. It changes exactly when a key or a value does.
func ConfigHash(cm *corev1.ConfigMap) string {
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(cm.Data)) {
		writeEntry(h, "data", k, []byte(cm.Data[k]))
	}
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		writeEntry(h, "binaryData", k, cm.BinaryData[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// CredentialsHash is the SHA-256, in hex, of a credentials Secret's data,
// independent of map order: it changes exactly when a key or a value does
// (a new password, another host, a new CA). The password is one input
// among the others and cannot be recovered from it. Empty for a nil
// Secret.
func CredentialsHash(secret *corev1.Secret) string {
	if secret == nil {
		return ""
	}
	h := sha256.New()
	for _, k := range slices.Sorted(maps.Keys(secret.Data)) {
		writeEntry(h, "data", k, secret.Data[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// writeEntry writes one key and value to a hash; length prefixes make the
// encoding unambiguous.
func writeEntry(h io.Writer, kind, key string, value []byte) {
	_, _ = h.Write(fmt.Appendf(nil, "%s %d:%s %d:", kind, len(key), key, len(value)))
	_, _ = h.Write(value)
	_, _ = h.Write([]byte{'\n'})
}

// podAnnotations are the annotations of a pod template: the given hashes,
// those that are known.
func podAnnotations(kv ...string) map[string]string {
	a := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] != "" {
			a[kv[i]] = kv[i+1]
		}
	}
	if len(a) == 0 {
		return nil
	}
	return a
}

// ingestReplicas is the Deployment's replicas: none while suspended, left
// to the HorizontalPodAutoscaler when it scales ingest (applying a number
// would fight it), else the spec's.
func ingestReplicas(t Tenant) *int32 {
	switch {
	case t.Spec.Suspend:
		return ptr.To[int32](0)
	case t.Spec.Autoscaling != nil:
		return nil
	default:
		return ptr.To(t.Spec.Replicas)
	}
}

// IngestImage is the ingest image in force: the tenant's, or the operator's
// default.
func IngestImage(t Tenant) string {
	if t.Spec.Image != "" {
		return t.Spec.Image
	}
	return t.Settings.IngestImage
}

// IngestDeployment runs the ingest service: restricted, non-root pods with a
// read-only root file system, spread over zones and nodes, on the region's
// nodes when it has placement, reading the ingest role's credentials from
// the ingest Secret (IngestSecretName) and never the owner's. The pod
// template carries the ConfigMap's hash so a configuration change rolls the
// pods, and the ingest Secret's (CredentialsHash) so new credentials do.
// Rolling updates never take a pod away before its replacement is
// ready.
func IngestDeployment(t Tenant) *appsv1.Deployment {
	selector := selectorLabels(t, ComponentIngest)
	nodeSelector, tolerations := placement(t)
	probe := func(path string, period, failures int32) *corev1.Probe {
		return &corev1.Probe{
			ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
				Path: path, Port: intstr.FromString(IngestMetricsPortName), Scheme: corev1.URISchemeHTTP,
			}},
			TimeoutSeconds:   1,
			PeriodSeconds:    period,
			SuccessThreshold: 1,
			FailureThreshold: failures,
		}
	}
	spread := func(topologyKey string) corev1.TopologySpreadConstraint {
		return corev1.TopologySpreadConstraint{
			MaxSkew:           1,
			TopologyKey:       topologyKey,
			WhenUnsatisfiable: corev1.ScheduleAnyway,
			LabelSelector:     &metav1.LabelSelector{MatchLabels: selectorLabels(t, ComponentIngest)},
			// Spread each revision on its own, so a rollout does not
			// count the pods it is replacing.
			MatchLabelKeys: []string{appsv1.DefaultDeploymentUniqueLabelKey},
		}
	}
	geoVolumes, geoMounts, geoInit := geoIPVolume(t)
	return &appsv1.Deployment{
		TypeMeta:   metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
		ObjectMeta: objectMeta(t, IngestName, componentLabels(t, ComponentIngest)),
		Spec: appsv1.DeploymentSpec{
			Replicas: ingestReplicas(t),
			Selector: &metav1.LabelSelector{MatchLabels: selector},
			Strategy: appsv1.DeploymentStrategy{
				Type: appsv1.RollingUpdateDeploymentStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDeployment{
					MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					MaxSurge:       ptr.To(intstr.FromInt32(1)),
				},
			},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{
					Labels: componentLabels(t, ComponentIngest),
					Annotations: podAnnotations(
						AnnotationConfigHash, ConfigHash(IngestConfigMap(t)),
						AnnotationCredentialsHash, t.IngestCredentialsHash),
				},
				Spec: corev1.PodSpec{
					ServiceAccountName:           IngestName,
					AutomountServiceAccountToken: ptr.To(false),
					EnableServiceLinks:           ptr.To(false),
					ImagePullSecrets:             imagePullSecrets(t),
					SecurityContext:              podSecurityContext(),
					NodeSelector:                 nodeSelector,
					Tolerations:                  tolerations,
					TopologySpreadConstraints: []corev1.TopologySpreadConstraint{
						spread(corev1.LabelTopologyZone),
						spread(corev1.LabelHostname),
					},
					InitContainers: geoInit,
					Containers: []corev1.Container{{
						Name:  IngestName,
						Image: IngestImage(t),
						Args:  IngestArgs(t),
						Ports: []corev1.ContainerPort{
							{Name: IngestPortName, ContainerPort: IngestPort, Protocol: corev1.ProtocolTCP},
							{Name: IngestMetricsPortName, ContainerPort: IngestMetricsPort, Protocol: corev1.ProtocolTCP},
						},
						Env:             ingestEnv(t),
						Resources:       *t.Spec.Resources.DeepCopy(),
						SecurityContext: containerSecurityContext(),
						StartupProbe:    probe("/healthz", 2, 30),
						ReadinessProbe:  probe("/readyz", 10, 3),
						LivenessProbe:   probe("/healthz", 10, 3),
						VolumeMounts: append([]corev1.VolumeMount{
							{Name: "config", MountPath: IngestConfigDir, ReadOnly: true},
							{Name: "tmp", MountPath: "/tmp"},
							storageCAVolumeMount(),
						}, geoMounts...),
					}},
					Volumes: append([]corev1.Volume{
						{Name: "config", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
							LocalObjectReference: corev1.LocalObjectReference{Name: IngestConfigName},
							DefaultMode:          ptr.To[int32](0o444),
						}}},
						{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{
							SizeLimit: ptr.To(resource.MustParse("64Mi")),
						}}},
						storageCAVolume(IngestSecretName),
					}, geoVolumes...),
				},
			},
		},
	}
}

// ingestEnv is the ingest container's environment: the ingest role's
// storage credentials and the tenant's visitor key, each a reference to the
// ingest Secret, so neither is ever in the pod spec.
func ingestEnv(t Tenant) []corev1.EnvVar {
	return append(storageEnv(t, IngestSecretName), corev1.EnvVar{
		Name: EnvVisitorKey,
		ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: IngestSecretName},
			Key:                  SecretKeyVisitorKey,
		}},
	})
}

// IngestArgs are the ingest container's arguments: its config file; the
// proxies whose forwarded addresses it trusts when the operator names any
// (Settings.IngestTrustedProxies; with none named the flag is left out,
// and ingest trusts no forwarded address), and whether it reads
// CF-Connecting-IP from them; the location database when one is mounted
// (GeoIPPath).
func IngestArgs(t Tenant) []string {
	args := []string{
		"--config=" + IngestConfigDir + "/" + IngestConfigKey,
		fmt.Sprintf("--listen=:%d", IngestPort),
		fmt.Sprintf("--metrics-listen=:%d", IngestMetricsPort),
	}
	if len(t.Settings.IngestTrustedProxies) > 0 {
		args = append(args, "--trusted-proxies="+strings.Join(t.Settings.IngestTrustedProxies, ","))
	}
	if t.Settings.IngestCFConnectingIP {
		args = append(args, "--cf-connecting-ip")
	}
	if db := GeoIPPath(t); db != "" {
		args = append(args, "--geoip-db="+db)
	}
	return args
}

// IngestService is ingest's in-cluster address: port 80 to the pods' http
// port.
func IngestService(t Tenant) *corev1.Service {
	return &corev1.Service{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: objectMeta(t, IngestName, componentLabels(t, ComponentIngest)),
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeClusterIP,
			Selector: selectorLabels(t, ComponentIngest),
			Ports: []corev1.ServicePort{{
				Name:       IngestPortName,
				Protocol:   corev1.ProtocolTCP,
				Port:       IngestServicePort,
				TargetPort: intstr.FromString(IngestPortName),
			}},
		},
	}
}

// IngestServiceAddress is the in-cluster host name of the ingest Service.
func IngestServiceAddress(t Tenant) string {
	return IngestName + "." + NamespaceName(t) + ".svc"
}

// IngestHPA sizes ingest on CPU use within the tenant's bounds. It is nil
// when the tenant does not autoscale or is suspended (a suspended tenant
// has no pods to scale).
func IngestHPA(t Tenant) *autoscalingv2.HorizontalPodAutoscaler {
	a := t.Spec.Autoscaling
	if a == nil || t.Spec.Suspend {
		return nil
	}
	return &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: "HorizontalPodAutoscaler"},
		ObjectMeta: objectMeta(t, IngestName, componentLabels(t, ComponentIngest)),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{
				APIVersion: "apps/v1", Kind: "Deployment", Name: IngestName,
			},
			MinReplicas: ptr.To(a.MinReplicas),
			MaxReplicas: a.MaxReplicas,
			Metrics: []autoscalingv2.MetricSpec{{
				Type: autoscalingv2.ResourceMetricSourceType,
				Resource: &autoscalingv2.ResourceMetricSource{
					Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{
						Type:               autoscalingv2.UtilizationMetricType,
						AverageUtilization: ptr.To(a.TargetCPUUtilizationPercentage),
					},
				},
			}},
		},
	}
}

// ingestWantsSeveralPods says whether the tenant asks for more than one
// ingest pod, as a fixed size or as the autoscaler's floor.
func ingestWantsSeveralPods(t Tenant) bool {
	return t.Spec.Replicas > 1 || (t.Spec.Autoscaling != nil && t.Spec.Autoscaling.MinReplicas > 1)
}

// IngestPDB lets voluntary disruptions (node drains) take one ingest pod at
// a time. It is nil unless the tenant wants more than one pod and is not
// suspended: with one pod it would either block drains or protect nothing.
// Unhealthy pods may always be evicted, so a crash-looping pod never blocks
// a drain.
func IngestPDB(t Tenant) *policyv1.PodDisruptionBudget {
	if t.Spec.Suspend || !ingestWantsSeveralPods(t) {
		return nil
	}
	return &policyv1.PodDisruptionBudget{
		TypeMeta:   metav1.TypeMeta{APIVersion: "policy/v1", Kind: "PodDisruptionBudget"},
		ObjectMeta: objectMeta(t, IngestName, componentLabels(t, ComponentIngest)),
		Spec: policyv1.PodDisruptionBudgetSpec{
			MaxUnavailable:             ptr.To(intstr.FromInt32(1)),
			Selector:                   &metav1.LabelSelector{MatchLabels: selectorLabels(t, ComponentIngest)},
			UnhealthyPodEvictionPolicy: ptr.To(policyv1.AlwaysAllow),
		},
	}
}

// formatPort is a port as the storage Secret and PGPORT spell it.
func formatPort(p int32) string { return strconv.Itoa(int(p)) }
