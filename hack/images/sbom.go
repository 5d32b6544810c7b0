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
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"
)

// The SBOM is SPDX 2.3 JSON: the image, the binary in it, the Go toolchain
// and every Go module the binary's build info lists, with their versions,
// and the Debian packages whose files are in the base.

type spdxDocument struct {
	SPDXVersion       string             `json:"spdxVersion"`
	DataLicense       string             `json:"dataLicense"`
	SPDXID            string             `json:"SPDXID"`
	Name              string             `json:"name"`
	DocumentNamespace string             `json:"documentNamespace"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	Name             string            `json:"name"`
	SPDXID           string            `json:"SPDXID"`
	VersionInfo      string            `json:"versionInfo,omitempty"`
	Supplier         string            `json:"supplier,omitempty"`
	DownloadLocation string            `json:"downloadLocation"`
	FilesAnalyzed    bool              `json:"filesAnalyzed"`
	Checksums        []spdxChecksum    `json:"checksums,omitempty"`
	PrimaryPurpose   string            `json:"primaryPackagePurpose,omitempty"`
	ExternalRefs     []spdxExternalRef `json:"externalRefs,omitempty"`
	Comment          string            `json:"comment,omitempty"`
}

type spdxChecksum struct {
	Algorithm string `json:"algorithm"`
	Value     string `json:"checksumValue"`
}

type spdxExternalRef struct {
	Category string `json:"referenceCategory"`
	Type     string `json:"referenceType"`
	Locator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

// sbomOf is the SBOM of image name for arch, whose binary is binPath.
func sbomOf(name, arch, binPath string, o buildOptions, b *base) ([]byte, error) {
	info, err := buildinfo.ReadFile(binPath)
	if err != nil {
		return nil, fmt.Errorf("reading the Go build info of %s: %w", binPath, err)
	}
	bin, err := os.ReadFile(binPath)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bin)
	binSum := hex.EncodeToString(sum[:])

	imageID := "SPDXRef-Image"
	binID := "SPDXRef-Binary-" + name
	doc := spdxDocument{
		SPDXVersion: "SPDX-2.3",
		DataLicense: "CC0-1.0",
		SPDXID:      "SPDXRef-DOCUMENT",
		Name:        fmt.Sprintf("%s-linux-%s", name, arch),
		// Unique per binary, as SPDX asks, and the same for the same build.
		DocumentNamespace: fmt.Sprintf("https://spdx.millimetric.ai/images/%s/%s/linux-%s/%s", name, url.PathEscape(o.Version), arch, binSum),
		CreationInfo: spdxCreationInfo{
			Created:  o.Epoch.UTC().Format(time.RFC3339),
			Creators: []string{"Organization: Millimetric", "Tool: hack/images"},
		},
		DocumentDescribes: []string{imageID},
	}
	doc.Packages = append(doc.Packages,
		spdxPackage{
			Name: name, SPDXID: imageID, VersionInfo: o.Version, Supplier: "Organization: Millimetric",
			DownloadLocation: "NOASSERTION", PrimaryPurpose: "CONTAINER",
			Comment: fmt.Sprintf("the %s image for linux/%s", name, arch),
		},
		spdxPackage{
			Name: info.Main.Path, SPDXID: binID, VersionInfo: o.Version, Supplier: "Organization: Millimetric",
			DownloadLocation: "NOASSERTION", PrimaryPurpose: "APPLICATION",
			Checksums: []spdxChecksum{{Algorithm: "SHA256", Value: binSum}},
			Comment:   fmt.Sprintf("/%s, built from package %s with %s", name, info.Path, info.GoVersion),
		},
		spdxPackage{
			Name: "go", SPDXID: "SPDXRef-Go", VersionInfo: info.GoVersion, DownloadLocation: "NOASSERTION",
			PrimaryPurpose: "LIBRARY",
			ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
				Locator: "pkg:golang/stdlib@" + strings.TrimPrefix(info.GoVersion, "go")}},
			Comment: "the Go toolchain and standard library the binary was built with",
		},
	)
	doc.Relationships = append(doc.Relationships,
		spdxRelationship{Element: imageID, Type: "CONTAINS", Related: binID},
		spdxRelationship{Element: binID, Type: "DEPENDS_ON", Related: "SPDXRef-Go"},
	)
	for i, dep := range info.Deps {
		m := dep
		if dep.Replace != nil {
			m = dep.Replace
		}
		id := fmt.Sprintf("SPDXRef-GoModule-%d", i)
		doc.Packages = append(doc.Packages, spdxPackage{
			Name: dep.Path, SPDXID: id, VersionInfo: m.Version, DownloadLocation: "NOASSERTION",
			PrimaryPurpose: "LIBRARY",
			ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl",
				Locator: "pkg:golang/" + m.Path + "@" + m.Version}},
			Comment: "Go module sum " + m.Sum,
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: binID, Type: "DEPENDS_ON", Related: id})
	}
	for i, p := range b.packages {
		id := fmt.Sprintf("SPDXRef-DebianPackage-%d", i)
		purl := "pkg:deb/debian/" + p.Name + "@" + strings.ReplaceAll(url.PathEscape(p.Version), "+", "%2B") + "?arch=" + p.Arch
		if p.Distro != "" {
			purl += "&distro=" + p.Distro
		}
		doc.Packages = append(doc.Packages, spdxPackage{
			Name: p.Name, SPDXID: id, VersionInfo: p.Version, Supplier: "Organization: Debian",
			DownloadLocation: "NOASSERTION", PrimaryPurpose: "LIBRARY",
			ExternalRefs: []spdxExternalRef{{Category: "PACKAGE-MANAGER", Type: "purl", Locator: purl}},
			Comment:      "in the base: " + strings.Join(p.Files, ", "),
		})
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: imageID, Type: "CONTAINS", Related: id})
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
