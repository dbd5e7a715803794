// Command sbomgen stands in for BuildKit's SBOM generator (Syft) in the e2e
// stack: an image whose entrypoint BuildKit runs with the scanned image's
// root file system at $BUILDKIT_SCAN_SOURCE and an empty directory at
// $BUILDKIT_SCAN_DESTINATION, where it must leave in-toto statements (one
// JSON file each). Like a real scanner it reports only what it finds in the
// image: the stand-in recipes record each stage's environment in
// /etc/determined-build/<stage>/env, and every *_PIP=name==version line
// there is a Python package the real recipes install, so it is listed as an
// SPDX package (name, versionInfo). An image whose build did not record a
// pin gets an SBOM without it. Built static for each architecture by the
// e2e tests.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

var pin = regexp.MustCompile(`^[A-Z0-9_]+_PIP=([A-Za-z0-9][A-Za-z0-9._-]*)==([^ ]+)`)

type pkg struct {
	SPDXID           string `json:"SPDXID"`
	Name             string `json:"name"`
	VersionInfo      string `json:"versionInfo"`
	DownloadLocation string `json:"downloadLocation"`
}

func main() {
	src, dst := os.Getenv("BUILDKIT_SCAN_SOURCE"), os.Getenv("BUILDKIT_SCAN_DESTINATION")
	if src == "" || dst == "" {
		fmt.Fprintln(os.Stderr, "sbomgen: BUILDKIT_SCAN_SOURCE and BUILDKIT_SCAN_DESTINATION must be set (BuildKit's scanner protocol)")
		os.Exit(2)
	}
	envs, err := filepath.Glob(filepath.Join(src, "etc", "determined-build", "*", "env"))
	if err != nil {
		fail(err)
	}
	found := map[string]pkg{}
	for _, path := range envs {
		f, err := os.Open(path)
		if err != nil {
			fail(err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if m := pin.FindStringSubmatch(sc.Text()); m != nil {
				id := "SPDXRef-Package-python-" + strings.ToLower(m[1]) + "-" + spdxSafe(m[2])
				found[m[1]+"=="+m[2]] = pkg{SPDXID: id, Name: m[1], VersionInfo: m[2], DownloadLocation: "NOASSERTION"}
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			fail(err)
		}
	}
	keys := make([]string, 0, len(found))
	for k := range found {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	pkgs := make([]pkg, 0, len(keys))
	for _, k := range keys {
		pkgs = append(pkgs, found[k])
	}
	stmt := map[string]any{
		"_type":         "https://in-toto.io/Statement/v0.1",
		"predicateType": "https://spdx.dev/Document",
		"predicate": map[string]any{
			"spdxVersion": "SPDX-2.3", "dataLicense": "CC0-1.0", "SPDXID": "SPDXRef-DOCUMENT",
			"name": "sbomgen stand-in", "documentNamespace": "https://example.invalid/sbomgen",
			"creationInfo": map[string]any{"creators": []string{"Tool: sbomgen-e2e-stand-in"}, "created": "2020-01-01T00:00:00Z"},
			"packages":     pkgs,
		},
	}
	b, err := json.Marshal(stmt)
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(filepath.Join(dst, "sbom.spdx.json"), b, 0o644); err != nil {
		fail(err)
	}
	fmt.Printf("sbomgen: %d packages from %d records\n", len(pkgs), len(envs))
}

// spdxSafe makes a version usable in an SPDX id (letters, digits, . and -).
func spdxSafe(v string) string {
	return regexp.MustCompile(`[^A-Za-z0-9.-]`).ReplaceAllString(v, "-")
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "sbomgen:", err)
	os.Exit(1)
}
