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
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
)

// NonRootUID is the user and group both images run as: distroless's
// "nonroot", the same number as internal/render's PodUID, which owns
// nothing in the image but its home directory.
const NonRootUID = 65532

// CABundlePath is where Go's crypto/x509 looks for the system's roots on
// Linux first, and where distroless has them.
const CABundlePath = "etc/ssl/certs/ca-certificates.crt"

// caPackage is the Debian package the CA bundle is made of.
const caPackage = "ca-certificates"

// entry is one file or directory of an image's file system. Paths have no
// leading slash, as in a layer's tar.
type entry struct {
	path     string
	dir      bool
	mode     int64
	uid, gid int
	data     []byte
}

// debPackage is a Debian package whose files are in the base, for the SBOM.
type debPackage struct {
	Name, Version, Arch, Distro string
	// Files are the base's paths that come from the package.
	Files []string
}

// base is the file system both images start from, assembled here rather
// than pulled (no registry is reachable where this is built), with what
// distroless's static image has that the two binaries need: the users and
// groups (root, nobody, nonroot), nsswitch.conf, the CA bundle and its
// licence, a world-writable /tmp and nonroot's home. No shell, no package
// manager, no time zone data: the binaries load no time zone (the retention
// CronJob's time zone is read by the kube-controller-manager, not by
// /manager).
type base struct {
	entries  []entry
	packages []debPackage
}

var (
	passwd = "root:x:0:0:root:/root:/sbin/nologin\n" +
		"nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n" +
		fmt.Sprintf("nonroot:x:%d:%d:nonroot:/home/nonroot:/sbin/nologin\n", NonRootUID, NonRootUID)
	group = "root:x:0:\n" +
		"nobody:x:65534:\n" +
		fmt.Sprintf("nonroot:x:%d:\n", NonRootUID)
	// Go's resolver reads it (files, then DNS), as glibc's would.
	nsswitch = "hosts: files dns\n"
)

// dpkgQuery runs dpkg-query; a variable so the tests can see what it is
// asked.
var dpkgQuery = func(args ...string) ([]byte, error) {
	out, err := exec.Command("dpkg-query", args...).Output()
	if err != nil {
		return nil, fmt.Errorf("dpkg-query %s: %w (is Debian's %s package installed? .ci/run installs it)", strings.Join(args, " "), err, caPackage)
	}
	return out, nil
}

// loadBase reads the CA certificates from the installed ca-certificates
// package: the bundle is the package's certificates, in the order of their
// paths, concatenated, as update-ca-certificates makes it with Debian's
// default configuration, but without any certificate added to this machine
// by hand (/usr/local/share/ca-certificates), so the bundle is the
// package's and the same on every machine with that version.
func loadBase() (*base, error) {
	version, err := dpkgQuery("-W", "-f=${Version}", caPackage)
	if err != nil {
		return nil, err
	}
	arch, err := dpkgQuery("-W", "-f=${Architecture}", caPackage)
	if err != nil {
		return nil, err
	}
	list, err := dpkgQuery("-L", caPackage)
	if err != nil {
		return nil, err
	}
	var certs []string
	copyright := ""
	sc := bufio.NewScanner(bytes.NewReader(list))
	for sc.Scan() {
		p := sc.Text()
		switch {
		case strings.HasPrefix(p, "/usr/share/ca-certificates/") && strings.HasSuffix(p, ".crt"):
			certs = append(certs, p)
		case p == "/usr/share/doc/"+caPackage+"/copyright":
			copyright = p
		}
	}
	if len(certs) == 0 || copyright == "" {
		return nil, fmt.Errorf("package %s lists no certificates or no copyright file", caPackage)
	}
	slices.Sort(certs)
	var bundle bytes.Buffer
	for _, c := range certs {
		pem, err := os.ReadFile(c)
		if err != nil {
			return nil, err
		}
		bundle.Write(pem)
		if !bytes.HasSuffix(pem, []byte("\n")) {
			bundle.WriteByte('\n')
		}
	}
	licence, err := os.ReadFile(copyright)
	if err != nil {
		return nil, err
	}
	b := &base{
		entries: []entry{
			{path: "etc", dir: true, mode: 0o755},
			{path: "etc/group", mode: 0o644, data: []byte(group)},
			{path: "etc/nsswitch.conf", mode: 0o644, data: []byte(nsswitch)},
			{path: "etc/passwd", mode: 0o644, data: []byte(passwd)},
			{path: "etc/ssl", dir: true, mode: 0o755},
			{path: "etc/ssl/certs", dir: true, mode: 0o755},
			{path: CABundlePath, mode: 0o644, data: bundle.Bytes()},
			{path: "home", dir: true, mode: 0o755},
			{path: "home/nonroot", dir: true, mode: 0o700, uid: NonRootUID, gid: NonRootUID},
			// Sticky and world-writable, as /tmp always is; a pod mounts
			// an emptyDir here, the root file system being read-only.
			{path: "tmp", dir: true, mode: 0o1777},
			{path: "usr", dir: true, mode: 0o755},
			{path: "usr/share", dir: true, mode: 0o755},
			{path: "usr/share/doc", dir: true, mode: 0o755},
			{path: "usr/share/doc/" + caPackage, dir: true, mode: 0o755},
			{path: "usr/share/doc/" + caPackage + "/copyright", mode: 0o644, data: licence},
		},
		packages: []debPackage{{
			Name:    caPackage,
			Version: strings.TrimSpace(string(version)),
			Arch:    strings.TrimSpace(string(arch)),
			Distro:  debianRelease(),
			Files:   []string{"/" + CABundlePath, "/usr/share/doc/" + caPackage + "/copyright"},
		}},
	}
	return b, nil
}

// debianRelease is the machine's Debian release as purl's distro qualifier
// spells it ("debian-12"), or "" when /etc/os-release does not say.
func debianRelease() string {
	data, err := os.ReadFile("/etc/os-release")
	if err != nil {
		return ""
	}
	id, version := "", ""
	for line := range strings.SplitSeq(string(data), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.Trim(v, `"`)
		switch k {
		case "ID":
			id = v
		case "VERSION_ID":
			version = v
		}
	}
	if id == "" || version == "" {
		return ""
	}
	return id + "-" + version
}

// writeTree writes entries under root, for the Dockerfile, which copies the
// same base into an image FROM scratch.
func writeTree(root string, entries []entry) error {
	for _, e := range entries {
		p := filepath.Join(root, filepath.FromSlash(e.path))
		if e.dir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
		} else if err := os.WriteFile(p, e.data, 0o644); err != nil {
			return err
		}
		if err := os.Chmod(p, modeOf(e)); err != nil {
			return err
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, e.uid, e.gid); err != nil {
				return err
			}
		}
	}
	return nil
}

// modeOf turns a tar mode (with the sticky bit as 01000) into Go's.
func modeOf(e entry) os.FileMode {
	m := os.FileMode(e.mode & 0o777)
	if e.mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	return m
}
