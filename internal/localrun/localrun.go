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

// Package localrun runs a container of a pod template as a local process,
// with what it would have in a pod: its arguments, its environment with
// Secret and ConfigMap references resolved from the cluster, and its
// ConfigMap, Secret and emptyDir volumes written into a directory, every
// mount path in its arguments and environment pointing there instead.
//
// The local control plane's nodes are kwok's: pods are scheduled and "run"
// but no container starts. `make run` and the end-to-end suite use this to
// run the ingest service exactly as the operator renders it for a tenant.
//
// Nor does anything carry a Service's traffic. The local cluster's Service
// range is on loopback (hack/local/cluster.sh), so the process that stands
// in for a Service's pods listens on its ClusterIP and port
// (ServiceAddress), where a gateway that sends to ClusterIPs reaches it.
package localrun

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Command prepares binary to run as container of pod (in namespace),
// reading the Secrets and ConfigMaps it refers to through c and writing its
// volumes under dir. The command's first word (if the container has a
// command) is replaced by binary; extraArgs go after the container's.
func Command(ctx context.Context, c client.Reader, namespace string, pod *corev1.PodSpec, container, binary, dir string, extraArgs ...string) (*exec.Cmd, error) {
	var ctr *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == container {
			ctr = &pod.Containers[i]
		}
	}
	if ctr == nil {
		return nil, fmt.Errorf("the pod has no container %q", container)
	}
	r := &resolver{ctx: ctx, c: c, namespace: namespace, secrets: map[string]*corev1.Secret{}, configMaps: map[string]*corev1.ConfigMap{}}

	// Mount points, longest first, so nested mounts rewrite correctly.
	mounts := map[string]string{}
	for _, m := range ctr.VolumeMounts {
		vol := findVolume(pod, m.Name)
		if vol == nil {
			return nil, fmt.Errorf("mount %s names no volume", m.Name)
		}
		local := filepath.Join(dir, m.Name)
		if err := r.writeVolume(vol, local); err != nil {
			return nil, fmt.Errorf("volume %s: %w", m.Name, err)
		}
		mounts[m.MountPath] = local
	}
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	rewrite := func(s string) string { return rewritePaths(s, paths, mounts) }

	var args []string
	if len(ctr.Command) > 1 {
		args = append(args, ctr.Command[1:]...)
	}
	for _, a := range ctr.Args {
		args = append(args, rewrite(a))
	}
	args = append(args, extraArgs...)

	env := []string{}
	for _, e := range ctr.Env {
		switch {
		case e.ValueFrom == nil:
			env = append(env, e.Name+"="+rewrite(e.Value))
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, err := r.secret(ref.Name)
			if err != nil {
				return nil, err
			}
			v, ok := s.Data[ref.Key]
			if !ok {
				if ptr.Deref(ref.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+string(v))
		case e.ValueFrom.ConfigMapKeyRef != nil:
			ref := e.ValueFrom.ConfigMapKeyRef
			cm, err := r.configMap(ref.Name)
			if err != nil {
				return nil, err
			}
			v, ok := cm.Data[ref.Key]
			if !ok {
				if ptr.Deref(ref.Optional, false) {
					continue
				}
				return nil, fmt.Errorf("env %s: ConfigMap %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			env = append(env, e.Name+"="+v)
		default:
			return nil, fmt.Errorf("env %s: only values and Secret and ConfigMap references can run locally", e.Name)
		}
	}
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = env
	return cmd, nil
}

// ServiceAddress is the address ("ip:port") a local process standing in
// for the pods of Service namespace/name listens on: its ClusterIP and its
// port numbered port. The ClusterIP must be a loopback address, so that a
// local process can listen on it: a cluster made before its Service range
// was on loopback has to be made again.
func ServiceAddress(ctx context.Context, c client.Reader, namespace, name string, port int32) (string, error) {
	svc := &corev1.Service{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: namespace, Name: name}, svc); err != nil {
		return "", fmt.Errorf("reading Service %s/%s: %w", namespace, name, err)
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil {
		return "", fmt.Errorf("service %s/%s has no ClusterIP (%q)", namespace, name, svc.Spec.ClusterIP)
	}
	if !ip.IsLoopback() {
		return "", fmt.Errorf("service %s/%s has ClusterIP %s, not a loopback address: the cluster's Service range is not on loopback (recreate the cluster: hack/local/cluster.sh down, then up)",
			namespace, name, ip)
	}
	for _, p := range svc.Spec.Ports {
		if p.Port == port {
			return net.JoinHostPort(ip.String(), fmt.Sprint(port)), nil
		}
	}
	return "", fmt.Errorf("service %s/%s has no port %d", namespace, name, port)
}

func findVolume(pod *corev1.PodSpec, name string) *corev1.Volume {
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == name {
			return &pod.Volumes[i]
		}
	}
	return nil
}

type resolver struct {
	ctx        context.Context
	c          client.Reader
	namespace  string
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

func (r *resolver) secret(name string) (*corev1.Secret, error) {
	if s, ok := r.secrets[name]; ok {
		return s, nil
	}
	s := &corev1.Secret{}
	if err := r.c.Get(r.ctx, client.ObjectKey{Namespace: r.namespace, Name: name}, s); err != nil {
		return nil, fmt.Errorf("reading Secret %s/%s: %w", r.namespace, name, err)
	}
	r.secrets[name] = s
	return s, nil
}

func (r *resolver) configMap(name string) (*corev1.ConfigMap, error) {
	if cm, ok := r.configMaps[name]; ok {
		return cm, nil
	}
	cm := &corev1.ConfigMap{}
	if err := r.c.Get(r.ctx, client.ObjectKey{Namespace: r.namespace, Name: name}, cm); err != nil {
		return nil, fmt.Errorf("reading ConfigMap %s/%s: %w", r.namespace, name, err)
	}
	r.configMaps[name] = cm
	return cm, nil
}

// writeVolume writes a volume's files under dir, as the kubelet would
// project them (keys, or the items' paths).
func (r *resolver) writeVolume(vol *corev1.Volume, dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	files := map[string][]byte{}
	var items []corev1.KeyToPath
	optional := false
	switch {
	case vol.EmptyDir != nil:
		return nil
	case vol.ConfigMap != nil:
		cm, err := r.configMap(vol.ConfigMap.Name)
		if err != nil {
			return err
		}
		for k, v := range cm.Data {
			files[k] = []byte(v)
		}
		for k, v := range cm.BinaryData {
			files[k] = v
		}
		items, optional = vol.ConfigMap.Items, ptr.Deref(vol.ConfigMap.Optional, false)
	case vol.Secret != nil:
		s, err := r.secret(vol.Secret.SecretName)
		if err != nil {
			return err
		}
		for k, v := range s.Data {
			files[k] = v
		}
		items, optional = vol.Secret.Items, ptr.Deref(vol.Secret.Optional, false)
	default:
		return fmt.Errorf("only ConfigMap, Secret and emptyDir volumes can run locally")
	}
	if len(items) > 0 {
		picked := map[string][]byte{}
		for _, it := range items {
			v, ok := files[it.Key]
			if !ok {
				if optional {
					continue
				}
				return fmt.Errorf("no key %s", it.Key)
			}
			picked[it.Path] = v
		}
		files = picked
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// rewritePaths replaces, in one pass, every path in s that starts at a path
// boundary (the start, or after '=', ',', ':' or a space) with a mount
// point (longest first, whole path components only) by the local
// directory of that mount. One pass, so a local directory is never
// rewritten again by a shorter mount point such as /tmp.
func rewritePaths(s string, paths []string, mounts map[string]string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		if s[i] == '/' && (i == 0 || strings.ContainsRune("=,: ", rune(s[i-1]))) {
			replaced := false
			for _, p := range paths {
				end := i + len(p)
				if strings.HasPrefix(s[i:], p) && (end == len(s) || s[end] == '/') {
					b.WriteString(mounts[p])
					i = end
					replaced = true
					break
				}
			}
			if replaced {
				continue
			}
		}
		b.WriteByte(s[i])
		i++
	}
	return b.String()
}
