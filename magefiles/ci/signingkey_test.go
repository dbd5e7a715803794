package ci

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The signing-key step writes the context's key to a file only the job
// reads and exports SIGNING_KEY for the later steps; without the key in the
// context it stops the job, saying what is missing.
func TestSigningKeyStep(t *testing.T) {
	run := func(env ...string) (string, string, error) {
		home := t.TempDir()
		bashEnv := filepath.Join(home, "bash_env")
		cmd := exec.Command("bash", "-c", signingKey)
		cmd.Env = append([]string{"HOME=" + home, "BASH_ENV=" + bashEnv, "PATH=" + os.Getenv("PATH")}, env...)
		out, err := cmd.CombinedOutput()
		exported, _ := os.ReadFile(bashEnv)
		return string(out), string(exported), err
	}
	pem := "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----"
	out, exported, err := run("ENVIRONMENTS_SIGNING_KEY=" + pem)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	path := strings.Trim(strings.TrimPrefix(strings.TrimSpace(exported), "export SIGNING_KEY="), `"`)
	b, err := os.ReadFile(path)
	if err != nil || string(b) != pem+"\n" {
		t.Errorf("SIGNING_KEY=%s holds %q (%v), want the key", path, b, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("%s: mode %v (%v), want 0600", path, fi.Mode(), err)
	}
	out, _, err = run()
	if err == nil || !strings.HasPrefix(out, "signing-key: ENVIRONMENTS_SIGNING_KEY") {
		t.Errorf("without the key: %v\n%s", err, out)
	}
}
