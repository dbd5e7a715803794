package targets

import (
	"encoding/base64"
	"io"
	stdlog "log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
)

// echoingRegistry refuses every write, and, like a careless registry or
// proxy, repeats the request's Authorization header in its error body.
func echoingRegistry(t *testing.T) string {
	t.Helper()
	inner := ggcrregistry.New(ggcrregistry.Logger(stdlog.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials: `+r.Header.Get("Authorization")+`"}]}`)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// The tool reads the docker credential store and the build secrets, and
// never prints them: not in -v output, not in a dry run, not in the error
// of a registry that refuses them (even one that repeats them back).
func TestCredentialsAreNeverPrinted(t *testing.T) {
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	tool := compiledTool(t)
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "docker"), []byte(errorsDocker), 0o755); err != nil {
		t.Fatal(err)
	}
	const user, password = "ci-bot", "pa55-Never-Print-Me"
	const awsDS, awsPath = "internal-ds-Never-Print-Me", "trace/Never-Print-Me.tar.gz"
	auth := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	reg := echoingRegistry(t)
	config := t.TempDir()
	if err := os.WriteFile(filepath.Join(config, "config.json"), []byte(`{"auths":{"`+reg+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := []string{password, auth, awsDS, awsPath}
	for _, c := range []struct {
		name string
		args []string
		env  []string
		want string // the run must get this far
	}{
		{"refused login", []string{"-v", "publishImage", "tf1-cpu"}, nil, "no permission to push to " + reg},
		{"dry run with build secrets", []string{"-v", "publish"}, []string{"DRY_RUN=1", "WITH_MPI=1", "WITH_OFI=1", "WITH_NCCL=1", "WITH_AWS_TRACE=1"}, "--secret id=INTERNAL_AWS_DS,env=INTERNAL_AWS_DS"},
		{"settings", []string{"-v", "settings"}, []string{"WITH_MPI=1", "WITH_OFI=1", "WITH_NCCL=1", "WITH_AWS_TRACE=1"}, "DOCKERHUB_REGISTRY"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cmd := exec.Command(tool, c.args...)
			cmd.Dir = gitRepo(t, "0.26.4\n")
			cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"), "RECIPES_DIR="+root, "NO_COLOR=1",
				"ARTIFACTS_DIR="+filepath.Join(t.TempDir(), "artifacts"), "DOCKER_CONFIG="+config, "NGC_PUBLISH=0",
				"DOCKERHUB_REGISTRY="+reg+"/determinedai", "INTERNAL_AWS_DS="+awsDS, "INTERNAL_AWS_PATH="+awsPath)
			cmd.Env = append(cmd.Env, c.env...)
			out, _ := cmd.CombinedOutput()
			if !strings.Contains(string(out), c.want) {
				t.Fatalf("the run did not get as far as %q:\n%s", c.want, out)
			}
			for _, s := range secrets {
				if strings.Contains(string(out), s) {
					t.Errorf("the output contains the secret %q:\n%s", s, out)
				}
			}
		})
	}
}
