// Package citest plays CircleCI's side of a release for the tests: a
// stand-in of its API v1.1 serving the builds of the jobs a test ran, and
// Determined's release tooling (a model of update-bumpenvs-yaml.py, run with
// python3) reading them.
package citest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/determined-ai/environments/magefiles/run"
)

// Project is the API path of the environments project.
const Project = "/project/github/determined-ai/environments"

// Build is one completed job as CircleCI's API lists it.
type Build struct {
	Job      string
	Revision string
	// Status is "success", "failed", "canceled", ...
	Status string
	// Artifacts are the job's stored files: path (as stored, for example
	// "tmp/artifacts/publish-tf1-cpu-0") -> content.
	Artifacts map[string]string
}

// Serve starts a stand-in of CircleCI's API v1.1 listing builds (newest
// first, as CircleCI does) and serving their artifacts. Its URL + "/api/v1.1"
// is the API base.
func Serve(builds []Build) *httptest.Server {
	mux := http.NewServeMux()
	num := func(i int) int { return len(builds) - i } // newest has the highest number
	mux.HandleFunc("GET /api/v1.1"+Project, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("filter") != "completed" {
			http.Error(w, "this stand-in serves filter=completed only", http.StatusBadRequest)
			return
		}
		var list []map[string]any
		for i := len(builds) - 1; i >= 0 && len(list) < 100; i-- {
			b := builds[i]
			list = append(list, map[string]any{
				"build_num": num(i), "vcs_revision": b.Revision, "status": b.Status,
				"workflows": map[string]any{"job_name": b.Job},
			})
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /api/v1.1"+Project+"/{num}/artifacts", func(w http.ResponseWriter, r *http.Request) {
		i, ok := index(r.PathValue("num"), len(builds))
		if !ok {
			http.NotFound(w, r)
			return
		}
		base := "http://" + r.Host + "/files/" + r.PathValue("num") + "/"
		list := []map[string]any{}
		for _, p := range slices.Sorted(maps.Keys(builds[i].Artifacts)) {
			list = append(list, map[string]any{"path": p, "pretty_path": p, "node_index": 0, "url": base + p})
		}
		writeJSON(w, list)
	})
	mux.HandleFunc("GET /files/{num}/{path...}", func(w http.ResponseWriter, r *http.Request) {
		i, ok := index(r.PathValue("num"), len(builds))
		content, found := "", false
		if ok {
			content, found = builds[i].Artifacts[r.PathValue("path")]
		}
		if !found {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, content)
	})
	return httptest.NewServer(mux)
}

func index(s string, n int) (int, bool) {
	num, err := strconv.Atoi(s)
	if err != nil || num < 1 || num > n {
		return 0, false
	}
	return n - num, true
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
	}
}

// Script is the model of update-bumpenvs-yaml.py.
func Script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "update-bumpenvs-model.py")
}

// Bump runs the release engineer's command, `update-bumpenvs-yaml.py
// [--dev] --no-cloud-images bumpenvs.yaml COMMIT`, against the API at
// apiURL (a Serve URL). It returns the script's output, and an error when it
// refused (an AssertionError) or failed.
func Bump(ctx context.Context, apiURL, bumpenvs, commit string, dev bool) (string, error) {
	argv := []string{"python3", Script(), "--api", strings.TrimSuffix(apiURL, "/") + "/api/v1.1", "--no-cloud-images"}
	if dev {
		argv = append(argv, "--dev")
	}
	argv = append(argv, bumpenvs, commit)
	var out bytes.Buffer
	r := run.New(false, false)
	err := r.RunTo(ctx, argv, &out, &out)
	if err != nil {
		return out.String(), fmt.Errorf("%s: %w\n%s", path.Base(Script()), err, out.String())
	}
	return out.String(), nil
}

// ContractKeys are the 38 keys of Determined's bumpenvs.yaml that an
// environments release bumps, written out from the contract's matrix (not
// from the generator): <image>_<M>_hashed and _versioned.
func ContractKeys() []string {
	var out []string
	add := func(image, mpi string) {
		k := strings.ReplaceAll(image, "-", "_") + "_" + mpi
		out = append(out, k+"_hashed", k+"_versioned")
	}
	for _, img := range []string{"tf1-cpu", "tf2-cpu", "tf28-cpu", "pt-cpu", "tf1-gpu", "tf2-gpu", "tf28-gpu", "pt-gpu"} {
		add(img, "0")
		add(img, "1")
	}
	for _, img := range []string{"pytorch10-tf27-rocm50", "deepspeed-gpu", "gpt-neox-deepspeed-gpu"} {
		add(img, "0")
	}
	return out
}
