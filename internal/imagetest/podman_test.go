//go:build podman

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

package imagetest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/render"
	"github.com/millimetric/tenant-operator/internal/storage"
	"github.com/millimetric/tenant-operator/internal/storage/pgtest"
)

var srv *pgtest.Server

func TestMain(m *testing.M) { os.Exit(pgtest.RunMain(m, &srv)) }

// podmanGlobalFlags are what every podman call needs on these machines:
// runc, because Debian 12's crun refuses a host whose cgroups are in
// hybrid mode (v1 controllers beside a v2 mount), as these are.
var podmanGlobalFlags = []string{"--runtime", "runc"}

// podmanRunFlags are what every `podman run` needs here: explicit limits,
// because raising the process's own is not permitted, and the host's
// network, where the test's PostgreSQL listens on 127.0.0.1 only (its
// certificate is for that address).
var podmanRunFlags = []string{
	"--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024",
	"--network", "host",
}

// podman runs podman and returns its standard output; its standard error
// is in the error.
func podman(ctx context.Context, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "podman", append(append([]string{}, podmanGlobalFlags...), args...)...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("podman %s: %w: %s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// loadImage pulls image name (manager or ingest) from the OCI layout `make
// images` wrote into podman's store, until the test ends, and returns its
// image id: podman picks this machine's architecture from the layout's
// index.
func loadImage(t *testing.T, name string) string {
	t.Helper()
	dirs := os.Getenv("IMAGES_DIR")
	if dirs == "" {
		t.Fatal("IMAGES_DIR is not set: run `make test-images`, which builds the images first")
	}
	dir := filepath.Join(dirs, name)
	data, err := os.ReadFile(filepath.Join(dir, "index.json"))
	if err != nil {
		t.Fatalf("no OCI layout of %s: %v", name, err)
	}
	var index struct {
		Manifests []struct {
			Annotations map[string]string `json:"annotations"`
		} `json:"manifests"`
	}
	if err := json.Unmarshal(data, &index); err != nil || len(index.Manifests) != 1 {
		t.Fatalf("%s/index.json: %v, %d entries", dir, err, len(index.Manifests))
	}
	ref := index.Manifests[0].Annotations["org.opencontainers.image.ref.name"]
	ctx := context.Background()
	out, err := podman(ctx, "pull", "--quiet", "oci:"+dir+":"+ref)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	t.Cleanup(func() { _, _ = podman(context.Background(), "rmi", "--force", id) })
	arch, err := podman(ctx, "image", "inspect", "--format", "{{.Architecture}} {{.Os}} {{.Config.User}}", id)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := strings.TrimSpace(arch), runtime.GOARCH+" linux 65532:65532"; got != want {
		t.Fatalf("image %s is %q, want %q", name, got, want)
	}
	return id
}

// tenant is a provisioned tenant and the objects the operator would have
// made for it: its Secrets and ConfigMap.
type tenant struct {
	render.Tenant
	roles      storage.Provisioned
	secrets    map[string]*corev1.Secret
	configMaps map[string]*corev1.ConfigMap
}

// domain is every test tenant's one domain.
const domain = "shop.imagetest.test"

// newTenant provisions tenant name in the EU database, over TLS verified
// against the server's CA, so the rendered pods mount that CA, and renders
// its Secrets and ConfigMap with the loaded images as the operator's.
func newTenant(t *testing.T, name, ingestImage, managerImage string) tenant {
	t.Helper()
	ctx := context.Background()
	admin := srv.AdminConfig("EU")
	admin.SSLMode, admin.CACert = storage.SSLModeVerifyFull, srv.CACert
	st, err := storage.Open(ctx, admin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	roles, err := st.Provision(ctx, name, storage.ProvisionOptions{})
	if err != nil {
		t.Fatal(err)
	}
	obj := &v1alpha1.AnalyticsTenant{
		ObjectMeta: metav1.ObjectMeta{Name: name, UID: types.UID("uid-" + name)},
		Spec: v1alpha1.AnalyticsTenantSpec{
			Region:        v1alpha1.RegionEU,
			RetentionDays: ptr.To[int32](30),
			Domains:       []v1alpha1.Domain{domain},
		},
	}
	settings := render.DefaultSettings()
	settings.IngestImage, settings.OperatorImage = ingestImage, managerImage
	rt := render.Tenant{Object: obj, Spec: obj.Spec.Effective(), Settings: settings, StorageCA: len(roles.Owner.CACert) > 0}
	key, err := render.NewVisitorKey()
	if err != nil {
		t.Fatal(err)
	}
	storageSecret := render.StorageSecret(rt, roles.Owner)
	ingestSecret := render.IngestSecret(rt, roles.Ingest, key)
	rt.StorageCredentialsHash = render.CredentialsHash(storageSecret)
	rt.IngestCredentialsHash = render.CredentialsHash(ingestSecret)
	cm := render.IngestConfigMap(rt)
	return tenant{
		Tenant:     rt,
		roles:      roles,
		secrets:    map[string]*corev1.Secret{storageSecret.Name: storageSecret, ingestSecret.Name: ingestSecret},
		configMaps: map[string]*corev1.ConfigMap{cm.Name: cm},
	}
}

// runArgs is container name of pod as `podman run` flags, image and
// arguments: what the kubelet would give it, as far as podman can. Its
// environment, resolved from the tenant's Secrets and ConfigMaps, goes
// through a file only root can read, never the command line; its ConfigMap
// and Secret volumes are written into files mounted read-only where the
// pod mounts them, its emptyDirs are tmpfs mounts of their size limit.
func (tn tenant) runArgs(t *testing.T, pod *corev1.PodSpec, name string) []string {
	t.Helper()
	var c *corev1.Container
	for i := range pod.Containers {
		if pod.Containers[i].Name == name {
			c = &pod.Containers[i]
		}
	}
	if c == nil {
		t.Fatalf("the pod has no container %s", name)
	}
	var flags []string

	// Security: the pod's and the container's contexts.
	psc, csc := pod.SecurityContext, c.SecurityContext
	if psc == nil || csc == nil {
		t.Fatalf("container %s has no security context", name)
	}
	uid, gid := psc.RunAsUser, psc.RunAsGroup
	if csc.RunAsUser != nil {
		uid = csc.RunAsUser
	}
	if csc.RunAsGroup != nil {
		gid = csc.RunAsGroup
	}
	if uid == nil || gid == nil || *uid == 0 {
		t.Fatalf("container %s does not run as a non-root user and group", name)
	}
	flags = append(flags, "--user", fmt.Sprintf("%d:%d", *uid, *gid))
	if psc.FSGroup != nil {
		flags = append(flags, "--group-add", strconv.FormatInt(*psc.FSGroup, 10))
	}
	if ptr.Deref(csc.ReadOnlyRootFilesystem, false) {
		// Without the tmpfs podman would add on /tmp, /run and /var/tmp:
		// a pod has only the volumes it names.
		flags = append(flags, "--read-only", "--read-only-tmpfs=false")
	}
	if csc.Capabilities != nil {
		for _, cp := range csc.Capabilities.Drop {
			flags = append(flags, "--cap-drop", string(cp))
		}
		for _, cp := range csc.Capabilities.Add {
			flags = append(flags, "--cap-add", string(cp))
		}
	}
	if !ptr.Deref(csc.AllowPrivilegeEscalation, true) {
		flags = append(flags, "--security-opt", "no-new-privileges")
	}
	if sp := psc.SeccompProfile; sp != nil && sp.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Fatalf("seccomp profile %s: only RuntimeDefault (podman's default profile) is run here", sp.Type)
	}

	// Environment.
	var env bytes.Buffer
	for _, e := range c.Env {
		v := e.Value
		switch {
		case e.ValueFrom == nil:
		case e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			s, ok := tn.secrets[ref.Name]
			if !ok {
				t.Fatalf("env %s: no Secret %s", e.Name, ref.Name)
			}
			data, ok := s.Data[ref.Key]
			if !ok {
				t.Fatalf("env %s: Secret %s has no key %s", e.Name, ref.Name, ref.Key)
			}
			v = string(data)
		default:
			t.Fatalf("env %s: only values and Secret references are run here", e.Name)
		}
		if strings.ContainsAny(v, "\n\r") {
			t.Fatalf("env %s: a value over several lines cannot go into an env file", e.Name)
		}
		fmt.Fprintf(&env, "%s=%s\n", e.Name, v)
	}
	envFile := filepath.Join(t.TempDir(), "env")
	if err := os.WriteFile(envFile, env.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	flags = append(flags, "--env-file", envFile)

	// Volumes.
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Volumes {
			if pod.Volumes[i].Name == m.Name {
				vol = &pod.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("mount %s names no volume", m.Name)
		}
		if vol.EmptyDir != nil {
			opts := "rw,mode=0777"
			if vol.EmptyDir.SizeLimit != nil {
				opts += ",size=" + strconv.FormatInt(vol.EmptyDir.SizeLimit.Value(), 10)
			}
			flags = append(flags, "--tmpfs", m.MountPath+":"+opts)
			continue
		}
		dir := filepath.Join(t.TempDir(), m.Name)
		tn.writeVolume(t, vol, dir)
		// Projected volumes are read-only whatever the mount says.
		flags = append(flags, "--volume", dir+":"+m.MountPath+":ro")
	}

	if c.WorkingDir != "" {
		flags = append(flags, "--workdir", c.WorkingDir)
	}
	var args []string
	if len(c.Command) > 0 {
		flags = append(flags, "--entrypoint", c.Command[0])
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	return append(append(flags, c.Image), args...)
}

// writeVolume writes a ConfigMap or Secret volume's files into dir as the
// kubelet projects them: the keys, or the items' paths, with the volume's
// mode; an optional volume without its keys is an empty directory.
func (tn tenant) writeVolume(t *testing.T, vol *corev1.Volume, dir string) {
	t.Helper()
	files := map[string][]byte{}
	var items []corev1.KeyToPath
	optional := false
	mode := int32(0o644)
	switch {
	case vol.ConfigMap != nil:
		cm, ok := tn.configMaps[vol.ConfigMap.Name]
		if ok {
			for k, v := range cm.Data {
				files[k] = []byte(v)
			}
		}
		items, optional = vol.ConfigMap.Items, ptr.Deref(vol.ConfigMap.Optional, false)
		mode = ptr.Deref(vol.ConfigMap.DefaultMode, mode)
		if !ok && !optional {
			t.Fatalf("volume %s: no ConfigMap %s", vol.Name, vol.ConfigMap.Name)
		}
	case vol.Secret != nil:
		s, ok := tn.secrets[vol.Secret.SecretName]
		if ok {
			files = s.Data
		}
		items, optional = vol.Secret.Items, ptr.Deref(vol.Secret.Optional, false)
		mode = ptr.Deref(vol.Secret.DefaultMode, mode)
		if !ok && !optional {
			t.Fatalf("volume %s: no Secret %s", vol.Name, vol.Secret.SecretName)
		}
	default:
		t.Fatalf("volume %s: only ConfigMap, Secret and emptyDir volumes are run here", vol.Name)
	}
	if len(items) > 0 {
		picked := map[string][]byte{}
		for _, it := range items {
			if v, ok := files[it.Key]; ok {
				picked[it.Path] = v
			} else if !optional {
				t.Fatalf("volume %s: no key %s", vol.Name, it.Key)
			}
		}
		files = picked
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The temporary directories above it are root's, 0700; podman mounts
	// dir itself, which the container's user must be able to open.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, os.FileMode(mode)); err != nil {
			t.Fatal(err)
		}
	}
}

// portFree says whether nothing listens on 127.0.0.1:port: the ingest
// container, on the host's network, binds its rendered ports.
func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

func TestTheIngestImageRunsAsRenderedServesTheSDKAndWritesEvents(t *testing.T) {
	ctx := context.Background()
	tn := newTenant(t, "img-ingest", loadImage(t, "ingest"), loadImage(t, "manager"))
	dep := render.IngestDeployment(tn.Tenant)
	pod := &dep.Spec.Template.Spec
	for _, port := range []int{render.IngestPort, render.IngestMetricsPort} {
		if !portFree(port) {
			t.Fatalf("127.0.0.1:%d is taken: the ingest container binds the ports it is rendered with on the host's network", port)
		}
	}
	name := fmt.Sprintf("millimetric-imagetest-ingest-%d", os.Getpid())
	args := append(append([]string{"run", "--detach", "--name", name}, podmanRunFlags...), tn.runArgs(t, pod, render.IngestName)...)
	started := time.Now()
	if _, err := podman(ctx, args...); err != nil {
		t.Fatal(err)
	}
	logs := func() string { out, _ := podman(ctx, "logs", name); return out }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("the ingest container's log:\n%s", logs())
		}
		_, _ = podman(context.Background(), "rm", "--force", "--time", "0", name)
	})

	base := fmt.Sprintf("http://127.0.0.1:%d", render.IngestPort)
	ops := fmt.Sprintf("http://127.0.0.1:%d", render.IngestMetricsPort)
	get := func(url string) (int, http.Header, []byte) {
		resp, err := http.Get(url)
		if err != nil {
			return 0, nil, nil
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, body
	}
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		if code, _, _ := get(ops + "/readyz"); code == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz on the metrics port never answered 200")
		}
	}
	t.Logf("the ingest container was ready %s after podman run", time.Since(started).Round(time.Millisecond))

	t.Run("it runs as the rendered user, on a read-only root file system, with no capabilities", func(t *testing.T) {
		out, err := podman(ctx, "inspect", "--format", "{{.State.Pid}} {{.HostConfig.ReadonlyRootfs}}", name)
		if err != nil {
			t.Fatal(err)
		}
		pid, readOnly, _ := strings.Cut(strings.TrimSpace(out), " ")
		if readOnly != "true" {
			t.Errorf("ReadonlyRootfs is %s", readOnly)
		}
		status, err := os.ReadFile("/proc/" + pid + "/status")
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"Uid:":        "65532\t65532\t65532\t65532",
			"Gid:":        "65532\t65532\t65532\t65532",
			"CapEff:":     "0000000000000000",
			"CapBnd:":     "0000000000000000",
			"NoNewPrivs:": "1",
		}
		for line := range strings.SplitSeq(string(status), "\n") {
			k, v, _ := strings.Cut(line, "\t")
			if w, ok := want[k]; ok {
				if strings.TrimSpace(v) != w {
					t.Errorf("/proc/%s/status %s %q, want %q", pid, k, v, w)
				}
				delete(want, k)
			}
		}
		if len(want) > 0 {
			t.Errorf("/proc/%s/status lacks %v", pid, want)
		}
	})

	t.Run("it serves the SDK on its public port", func(t *testing.T) {
		code, h, body := get(base + "/js/mm.js")
		if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/javascript") || len(body) < 100 {
			t.Errorf("GET /js/mm.js: %d %q, %d bytes", code, h.Get("Content-Type"), len(body))
		}
	})

	t.Run("events it accepts become rows in the tenant's schema", func(t *testing.T) {
		for i := range 3 {
			body := fmt.Sprintf(`{"n":"pageview","u":"https://%s/p/%d?email=jane@example.com","d":"%s"}`, domain, i, domain)
			req, _ := http.NewRequest(http.MethodPost, base+"/api/event", strings.NewReader(body))
			req.Header.Set("Content-Type", "text/plain")
			req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("event %d: %d", i, resp.StatusCode)
			}
		}
		conn, err := srv.Connect(ctx, "EU")
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var n int
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(200 * time.Millisecond) {
			if err := conn.QueryRow(ctx, `SELECT count(*) FROM `+tn.roles.Owner.Schema+`.events
				WHERE hostname = $1 AND url_path IN ('/p/0', '/p/1', '/p/2') AND browser_family = 'Firefox'`, domain).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 3 || time.Now().After(deadline) {
				break
			}
		}
		if n != 3 {
			t.Errorf("%d of the 3 events are rows in the tenant's schema, their paths without the e-mail parameter", n)
		}
	})

	t.Run("it drains and exits 0 on SIGTERM, and logs no credential", func(t *testing.T) {
		if _, err := podman(ctx, "stop", "--time", "30", name); err != nil {
			t.Fatal(err)
		}
		out, err := podman(ctx, "inspect", "--format", "{{.State.ExitCode}}", name)
		if err != nil {
			t.Fatal(err)
		}
		if code := strings.TrimSpace(out); code != "0" {
			t.Errorf("exit code %s", code)
		}
		l := logs()
		for _, secret := range []string{tn.roles.Ingest.Password, tn.roles.Owner.Password} {
			if strings.Contains(l, secret) {
				t.Error("the log holds a password")
			}
		}
	})
}

func TestTheManagerImageRunsTheRetentionCronJobsContainerAndDropsAnExpiredPartition(t *testing.T) {
	ctx := context.Background()
	const name = "img-retention"
	tn := newTenant(t, name, loadImage(t, "ingest"), loadImage(t, "manager"))

	// Two events 40 days old on the 30-day plan, written as the owner.
	owner, err := storage.ConnectTenant(ctx, tn.roles.Owner)
	if err != nil {
		t.Fatal(err)
	}
	defer owner.Close(ctx)
	schema := tn.roles.Owner.Schema
	old := time.Now().UTC().AddDate(0, 0, -40)
	if _, err := storage.EnsureDayPartitions(ctx, owner, schema, old, old); err != nil {
		t.Fatal(err)
	}
	if _, err := owner.Exec(ctx, `INSERT INTO `+schema+`.events (received_at, visitor_id, event_name, url_path)
		VALUES ($1, 1, 'pageview', '/'), ($1, 2, 'pageview', '/')`, old); err != nil {
		t.Fatal(err)
	}
	partition := schema + "." + storage.PartitionName(old)
	exists := func() bool {
		var ok bool
		if err := owner.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, partition).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	if !exists() {
		t.Fatalf("partition %s was not made", partition)
	}

	cj := render.RetentionCronJob(tn.Tenant)
	pod := &cj.Spec.JobTemplate.Spec.Template.Spec
	args := append(append([]string{"run", "--rm"}, podmanRunFlags...), tn.runArgs(t, pod, render.RetentionName)...)
	started := time.Now()
	stdout, err := podman(ctx, args...)
	if err != nil {
		t.Fatalf("the retention container failed: %v\nstdout: %s", err, stdout)
	}
	t.Logf("the retention container ran in %s", time.Since(started).Round(time.Millisecond))
	var sum storage.RetentionSummary
	if err := json.Unmarshal([]byte(stdout), &sum); err != nil {
		t.Fatalf("its output is not the run's summary: %v: %q", err, stdout)
	}
	if sum.Schema != schema || sum.RetentionDays != 30 || sum.Skipped || sum.DaysRolledUp != 1 ||
		sum.EventsRolledUp != 2 || sum.PartitionsDropped < 1 {
		t.Errorf("summary %s", stdout)
	}
	if exists() {
		t.Errorf("partition %s is still there", partition)
	}
	var aggregated int64
	if err := owner.QueryRow(ctx, `SELECT coalesce(sum(events), 0) FROM `+schema+`.daily_aggregates WHERE day = $1::date`, old).Scan(&aggregated); err != nil {
		t.Fatal(err)
	}
	if aggregated != 2 {
		t.Errorf("daily_aggregates counts %d events for the expired day, want 2", aggregated)
	}
	if strings.Contains(stdout, tn.roles.Owner.Password) {
		t.Error("the output holds the owner's password")
	}
}
