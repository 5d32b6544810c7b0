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

// Command images assembles the manager and ingest images without a
// container engine, with go-containerregistry (`make images`,
// hack/make/images.mk):
//
//	images build -bin-dir DIR -out DIR -version V -revision R -epoch SECONDS [-arches amd64,arm64]
//	images base -root DIR
//	images push -layout DIR -ref REGISTRY/REPOSITORY:TAG
//
// build writes one OCI image layout per image (an index of one image per
// architecture) and an SPDX SBOM per image and architecture; base writes
// the base's files into a directory, for the Dockerfile; push pushes a
// layout's index to a registry with the Docker or Podman credentials of
// this machine.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: images build|base|push [flags]")
		return 2
	}
	fs := flag.NewFlagSet("images "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	var err error
	switch args[0] {
	case "build":
		var o buildOptions
		var arches string
		var epoch int64
		fs.StringVar(&o.BinDir, "bin-dir", "", "the cross-compiled binaries: DIR/linux_<arch>/{manager,ingest}")
		fs.StringVar(&o.Out, "out", "", "where the OCI layouts (OUT/manager, OUT/ingest) and SBOMs (OUT/sbom) go")
		fs.StringVar(&arches, "arches", "amd64,arm64", "the Linux architectures")
		fs.StringVar(&o.Version, "version", "dev", "the version the binaries are stamped with")
		fs.StringVar(&o.Revision, "revision", "", "the commit")
		fs.Int64Var(&epoch, "epoch", 0, "every timestamp in the images, in seconds since 1970 (SOURCE_DATE_EPOCH)")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if o.BinDir == "" || o.Out == "" {
			fmt.Fprintln(stderr, "images build: -bin-dir and -out are required")
			return 2
		}
		o.Arches = strings.Split(arches, ",")
		o.Epoch = time.Unix(epoch, 0).UTC()
		var b *base
		if b, err = loadBase(); err == nil {
			var res []built
			if res, err = build(o, b); err == nil {
				report(stdout, o, res)
			}
		}
	case "base":
		root := fs.String("root", "", "the directory to write the base's files into")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *root == "" {
			fmt.Fprintln(stderr, "images base: -root is required")
			return 2
		}
		var b *base
		if b, err = loadBase(); err == nil {
			err = writeTree(*root, b.entries)
		}
	case "push":
		dir := fs.String("layout", "", "an OCI layout that `images build` wrote")
		ref := fs.String("ref", "", "where to push its index: REGISTRY/REPOSITORY:TAG")
		if err := fs.Parse(args[1:]); err != nil {
			return 2
		}
		if *dir == "" || *ref == "" {
			fmt.Fprintln(stderr, "images push: -layout and -ref are required")
			return 2
		}
		var digest string
		if digest, err = push(ctx, *dir, *ref); err == nil {
			fmt.Fprintf(stdout, "pushed %s@%s\n", *ref, digest)
		}
	default:
		fmt.Fprintf(stderr, "images: unknown command %q\n", args[0])
		return 2
	}
	if err != nil {
		fmt.Fprintf(stderr, "images %s: %v\n", args[0], err)
		return 1
	}
	return 0
}

// report prints each image's digests and sizes, as the README quotes them.
func report(w io.Writer, o buildOptions, res []built) {
	mib := func(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
	for _, r := range res {
		fmt.Fprintf(w, "%s: %s/%s, index %s\n", r.Name, o.Out, r.Name, r.Index)
		for _, p := range r.Platforms {
			fmt.Fprintf(w, "  linux/%-5s %s  compressed %s (base %s), uncompressed %s (base %s)\n",
				p.Arch, p.Digest, mib(p.Compressed), mib(p.BaseCompressed), mib(p.Uncompressed), mib(p.BaseUncompressed))
		}
	}
}
