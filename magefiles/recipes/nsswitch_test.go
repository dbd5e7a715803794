package recipes

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestNsswitchListsDeterminedFirst: as in the 0.22.1 images, "determined"
// goes first on the passwd, group and shadow lines (OpenShift appends the
// running UID to /etc/passwd; Determined's entry must win), other lines are
// kept, a missing line is added, and a second run changes nothing.
func TestNsswitchListsDeterminedFirst(t *testing.T) {
	repo, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(t.TempDir(), "nsswitch.conf")
	// Ubuntu 20.04's, without the shadow line.
	in := "# /etc/nsswitch.conf\npasswd:         files systemd\ngroup:          files systemd\nhosts:          files dns\n"
	if err := os.WriteFile(conf, []byte(in), 0o644); err != nil {
		t.Fatal(err)
	}
	want := "# /etc/nsswitch.conf\npasswd: determined files systemd\ngroup: determined files systemd\nhosts:          files dns\nshadow: determined files\n"
	for i := 1; i <= 2; i++ {
		cmd := exec.Command("bash", filepath.Join(repo, "dockerfile_scripts", "nsswitch_add_determined.sh"), conf)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("run %d: %v\n%s", i, err, out)
		}
		got, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("after run %d:\n%s\nwant:\n%s", i, got, want)
		}
	}
}
