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
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/millimetric/tenant-operator/api/v1alpha1"
	"github.com/millimetric/tenant-operator/internal/retention"
	"github.com/millimetric/tenant-operator/internal/storage"
)

func TestRetentionSchedule(t *testing.T) {
	t.Run("a name's schedule never changes, not even across versions of the operator", func(t *testing.T) {
		// Pinned: changing the hash would move every tenant's run.
		for name, want := range map[string]string{"acme": "12 2 * * *", "globex": "19 4 * * *", "initech": "43 3 * * *"} {
			if got := RetentionSchedule(name); got != want {
				t.Errorf("RetentionSchedule(%q) = %q, want %q", name, got, want)
			}
		}
		if RetentionCronJob(tenantWith()).Spec.Schedule != RetentionSchedule("acme") {
			t.Error("the CronJob does not use the tenant's schedule")
		}
	})
	t.Run("every schedule is a daily time inside the quiet window", func(t *testing.T) {
		from := time.Date(2026, 5, 17, 12, 0, 0, 0, time.UTC)
		for i := range 1000 {
			name := fmt.Sprintf("tenant-%d", i)
			s := RetentionSchedule(name)
			// The parser the CronJob controller and API validation use.
			sched, err := cron.ParseStandard(s)
			if err != nil {
				t.Fatalf("%s: %q is not a valid schedule: %v", name, s, err)
			}
			first := sched.Next(from)
			second := sched.Next(first)
			if second.Sub(first) != 24*time.Hour {
				t.Fatalf("%s: %q runs at %v and %v, want once a day", name, s, first, second)
			}
			if h := first.Hour(); h < RetentionWindowStartHour || h >= RetentionWindowStartHour+RetentionWindowHours {
				t.Fatalf("%s: %q runs at %s UTC, outside %d:00-%d:00", name, s, first.Format("15:04"),
					RetentionWindowStartHour, RetentionWindowStartHour+RetentionWindowHours)
			}
		}
	})
	t.Run("tenants are spread over the window", func(t *testing.T) {
		distinct := map[string]bool{}
		hours := map[string]bool{}
		for i := range 200 {
			s := RetentionSchedule(fmt.Sprintf("customer-%03d", i))
			distinct[s] = true
			hours[strings.Fields(s)[1]] = true
		}
		// 200 names over 300 minutes: about 146 distinct on average.
		if len(distinct) < 120 {
			t.Errorf("200 tenants share %d schedules, want at least 120", len(distinct))
		}
		if len(hours) != RetentionWindowHours {
			t.Errorf("200 tenants use %d hours of the %d in the window", len(hours), RetentionWindowHours)
		}
	})
}

func TestRetentionCronJob(t *testing.T) {
	tests := []struct {
		name        string
		tenant      Tenant
		wantDays    string
		wantSuspend bool
	}{
		{"a tenant without a plan keeps 30 days", tenantWith(func(a *v1alpha1.AnalyticsTenant) { a.Spec.RetentionDays = nil }), "30", false},
		{"a tenant on the 90-day plan keeps 90 days", tenantWith(), "90", false},
		{"a tenant on the 365-day plan keeps 365 days", tenantWith(func(a *v1alpha1.AnalyticsTenant) { a.Spec.RetentionDays = ptr.To[int32](365) }), "365", false},
		{"a suspended tenant's retention keeps running: its raw events still expire", tenantWith(suspended), "90", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cj := RetentionCronJob(tt.tenant)
			if cj.Name != "retention" {
				t.Errorf("name = %q", cj.Name)
			}
			if cj.Spec.Suspend == nil || *cj.Spec.Suspend != tt.wantSuspend {
				t.Errorf("suspend = %v, want %v", cj.Spec.Suspend, tt.wantSuspend)
			}
			if cj.Spec.ConcurrencyPolicy != batchv1.ForbidConcurrent {
				t.Errorf("concurrencyPolicy = %s, want Forbid", cj.Spec.ConcurrencyPolicy)
			}
			if ptr.Deref(cj.Spec.TimeZone, "") != "Etc/UTC" || ptr.Deref(cj.Spec.StartingDeadlineSeconds, 0) != 3600 ||
				ptr.Deref(cj.Spec.SuccessfulJobsHistoryLimit, 0) != 3 || ptr.Deref(cj.Spec.FailedJobsHistoryLimit, 0) != 3 {
				t.Errorf("timeZone/startingDeadline/history = %v/%v/%v/%v", cj.Spec.TimeZone, cj.Spec.StartingDeadlineSeconds,
					cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit)
			}
			job := cj.Spec.JobTemplate.Spec
			if cj.Spec.JobTemplate.Labels[LabelComponent] != "retention" || job.Template.Labels[LabelComponent] != "retention" {
				t.Errorf("job or pod not labelled component=retention: %v %v", cj.Spec.JobTemplate.Labels, job.Template.Labels)
			}
			if ptr.Deref(job.BackoffLimit, 0) != 3 || ptr.Deref(job.TTLSecondsAfterFinished, 0) != 86400 || ptr.Deref(job.ActiveDeadlineSeconds, 0) != 3600 {
				t.Errorf("backoffLimit/ttl/activeDeadline = %v/%v/%v", job.BackoffLimit, job.TTLSecondsAfterFinished, job.ActiveDeadlineSeconds)
			}
			pod := job.Template.Spec
			if pod.RestartPolicy != corev1.RestartPolicyNever {
				t.Errorf("restartPolicy = %s, want Never (a pod failure policy needs it)", pod.RestartPolicy)
			}
			c := pod.Containers[0]
			if c.Image != DefaultOperatorImage {
				t.Errorf("image = %s, want the operator's %s", c.Image, DefaultOperatorImage)
			}
			if diff := cmp.Diff([]string{"/manager", "retention", "--retention-days", tt.wantDays}, c.Command); diff != "" {
				t.Errorf("command (-want +got):\n%s", diff)
			}
			if c.Resources.Requests.Cpu().String() != "50m" || c.Resources.Requests.Memory().String() != "64Mi" ||
				c.Resources.Limits.Memory().String() != "256Mi" {
				t.Errorf("resources = %+v, want requests 50m/64Mi and a 256Mi limit", c.Resources)
			}
		})
	}

	t.Run("a run that failed on bad usage is not retried", func(t *testing.T) {
		rules := RetentionCronJob(tenantWith()).Spec.JobTemplate.Spec.PodFailurePolicy.Rules
		if rules[0].Action != batchv1.PodFailurePolicyActionFailJob ||
			!cmp.Equal(rules[0].OnExitCodes.Values, []int32{int32(retention.ExitUsage)}) ||
			ptr.Deref(rules[0].OnExitCodes.ContainerName, "") != "retention" {
			t.Errorf("first rule %+v does not fail the Job on exit code %d", rules[0], retention.ExitUsage)
		}
	})
}

// TestTheRetentionSubcommandUnderstandsTheCronJob runs the retention
// subcommand with the CronJob's arguments and the environment a kubelet
// would give its container from the storage Secret, against a port nothing
// listens on: it must get past parsing its settings (else exit code 2) and
// fail connecting (exit code 1).
func TestTheRetentionSubcommandUnderstandsTheCronJob(t *testing.T) {
	tests := []struct {
		name      string
		storageCA bool // what the tenant says
		caCert    bool // what the Secret has
		wantCode  int
	}{
		{"without a private CA the subcommand reads every setting it needs", false, false, retention.ExitFailed},
		{"with a private CA the subcommand also reads the mounted certificate", true, true, retention.ExitFailed},
		{"a certificate the tenant does not mention is mounted but not used", false, true, retention.ExitFailed},
		// Why PGSSLROOTCERT follows Tenant.StorageCA instead of being
		// always set: the subcommand refuses a missing file.
		{"naming a certificate the Secret lacks stops the run as bad usage", true, false, retention.ExitUsage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tenant := tenantWith()
			tenant.StorageCA = tt.storageCA
			creds := storage.Credentials{
				Host: "127.0.0.1", Port: 1, Database: "events", SSLMode: "verify-full",
				Schema: "tenant_acme", Username: "tenant_acme", Password: testPassword,
			}
			if tt.caCert {
				creds.CACert = selfSignedCA(t)
			}
			secret := StorageSecret(tenant, creds)
			pod := RetentionCronJob(tenant).Spec.JobTemplate.Spec.Template.Spec
			env := kubeletEnvironment(t, pod, secret)

			c := pod.Containers[0]
			if c.Command[0] != "/manager" || c.Command[1] != "retention" {
				t.Fatalf("command %v does not run the retention subcommand", c.Command)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stdout, stderr bytes.Buffer
			code := retention.Run(ctx, c.Command[2:], func(k string) string { return env[k] }, &stdout, &stderr)
			if code != tt.wantCode {
				t.Fatalf("exit code %d, want %d; stderr: %s", code, tt.wantCode, stderr.String())
			}
			if strings.Contains(stderr.String(), testPassword) {
				t.Error("the subcommand printed the password")
			}
		})
	}
}

// kubeletEnvironment resolves a pod's first container's environment as a
// kubelet would, with the Secret's keys, writing mounted Secret items to a
// temporary directory and pointing paths under StorageCADir there.
func kubeletEnvironment(t *testing.T, pod corev1.PodSpec, secret *corev1.Secret) map[string]string {
	t.Helper()
	dir := t.TempDir()
	for _, v := range pod.Volumes {
		if v.Secret == nil || v.Secret.SecretName != secret.Name {
			continue
		}
		for _, item := range v.Secret.Items {
			data, ok := secret.Data[item.Key]
			if !ok {
				if !ptr.Deref(v.Secret.Optional, false) {
					t.Fatalf("volume %s needs key %s, which the Secret does not have", v.Name, item.Key)
				}
				continue
			}
			if err := os.WriteFile(filepath.Join(dir, item.Path), data, 0o444); err != nil {
				t.Fatal(err)
			}
		}
	}
	env := map[string]string{}
	for _, e := range pod.Containers[0].Env {
		switch {
		case e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			data, ok := secret.Data[ref.Key]
			if ref.Name != secret.Name || !ok {
				t.Fatalf("%s reads %s/%s, which does not exist", e.Name, ref.Name, ref.Key)
			}
			env[e.Name] = string(data)
		case e.ValueFrom != nil:
			t.Fatalf("%s is read from something other than the Secret", e.Name)
		default:
			env[e.Name] = strings.Replace(e.Value, StorageCADir, dir, 1)
		}
	}
	return env
}

func selfSignedCA(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}
