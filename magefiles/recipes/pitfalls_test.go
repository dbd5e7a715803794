package recipes

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// These tests read the recipes' scripts for the build failures a reading of
// the recipes found; the install-plan e2e test (magefiles/e2e) runs them.

func readScript(t *testing.T, name string) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "dockerfile_scripts", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestLibfabricHasTheProvidersOfThePreviousImages: the previous images'
// libfabric had neither the verbs nor the EFA provider (no verbs headers;
// EFA needs rdma-core 27, which Ubuntu 18.04 lacks), so neither is
// configured, whatever headers the image happens to have.
func TestLibfabricHasTheProvidersOfThePreviousImages(t *testing.T) {
	lf := readScript(t, "install_libfabric.sh")
	for _, want := range []string{"--disable-verbs", "--disable-efa"} {
		if !strings.Contains(lf, want) {
			t.Errorf("install_libfabric.sh does not configure %s", want)
		}
	}
	for _, bad := range []string{"--enable-verbs", "--enable-efa"} {
		if strings.Contains(lf, bad) {
			t.Errorf("install_libfabric.sh configures %s, which the previous images did not have", bad)
		}
	}
}

// TestStaleAptListsAreDropped: the CUDA images ship NVIDIA apt lists signed
// by a key NVIDIA rotated in 2022, so `apt-get update` fails unless the base
// image's sources.list.d entries are dropped first.
func TestStaleAptListsAreDropped(t *testing.T) {
	text := readScript(t, "install_deb_packages.sh")
	index := func(re string) int {
		if loc := regexp.MustCompile(`(?m)^\s*` + re).FindStringIndex(text); loc != nil {
			return loc[0]
		}
		return -1
	}
	wipe := index(`rm -f /etc/apt/sources\.list\.d/\*`)
	update := index(`apt-get update`)
	switch {
	case wipe < 0:
		t.Error("install_deb_packages.sh does not remove /etc/apt/sources.list.d/* (the CUDA images' stale NVIDIA lists)")
	case update < 0:
		t.Error("install_deb_packages.sh runs no apt-get update")
	case wipe > update:
		t.Error("install_deb_packages.sh runs apt-get update before removing /etc/apt/sources.list.d/*")
	}
}

// TestPipInstallsAreProtobufCapped: google-cloud-storage pulls protobuf 4,
// with which TensorFlow 1.15 and tensorflow-rocm 2.7.1 fail to import. Every
// pip install goes through lib.sh's pip_install, which applies
// pip-constraints.txt, and that file caps protobuf at 3.20.x.
func TestPipInstallsAreProtobufCapped(t *testing.T) {
	constraints := readScript(t, "pip-constraints.txt")
	if !regexp.MustCompile(`(?m)^protobuf(<=3\.20\.\d+|<3\.21|==3\.20\.\d+)\s*$`).MatchString(constraints) {
		t.Errorf("pip-constraints.txt does not cap protobuf at 3.20.x:\n%s", constraints)
	}
	lib := readScript(t, "lib.sh")
	if !regexp.MustCompile(`pip install[^\n]*\\\n[^\n]*--constraint "\$\{SCRIPTS\}/pip-constraints.txt"`).MatchString(lib) {
		t.Error("lib.sh's pip_install does not pass --constraint ${SCRIPTS}/pip-constraints.txt")
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	scripts := shellScripts(t, filepath.Join(root, "dockerfile_scripts"))
	// A command line (with its continuation lines) that runs pip install.
	direct := regexp.MustCompile(`(?m)^\s*[^#\s][^\n]*\bpip3?\b[^\n]*\binstall\b(?:[^\n]*\\\n)*[^\n]*`)
	for _, s := range scripts {
		base := filepath.Base(s)
		if base == "lib.sh" {
			continue
		}
		for _, m := range direct.FindAllString(readScript(t, base), -1) {
			if strings.HasPrefix(strings.TrimSpace(m), "log ") {
				continue
			}
			// The bootstrap of pip itself, before any package is installed.
			if base == "install_python.sh" && strings.Contains(m, "pip==") {
				continue
			}
			t.Errorf("%s runs pip directly (%q): use pip_install so pip-constraints.txt applies", base, strings.TrimSpace(m))
		}
	}
}
