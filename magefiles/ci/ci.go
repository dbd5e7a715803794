// Package ci lays out the CircleCI workflows that publish the images, from
// the catalog and the publish matrix (variant.Matrix): `mage ciMatrix` prints
// the jobs and `mage ciConfig` renders .circleci/config.yml, so the list of
// jobs lives in one place.
//
// The layout is exactly the old CI's, because Determined's release tooling
// (update-bumpenvs-yaml.py) asserts it: a release workflow on main and a
// development workflow on other branches behind the approval job
// request-publish-dev-docker; one job per framework image and WITH_MPI value
// named build-and-publish-docker-<image>-<M> (-dev in development), each
// storing only its own artifact file publish-<image>-<M>, and no other job.
// The script requires the set of successful job names of a commit to be
// exactly these 19, so there are no base jobs: each image job publishes its
// base too (publishImage), finding it up to date when another job of the
// same release published it first.
package ci

import (
	"fmt"
	"slices"
	"strings"

	"github.com/determined-ai/environments/magefiles/catalog"
	"github.com/determined-ai/environments/magefiles/variant"
)

// Names and paths of the generated config.
const (
	// MainBranch publishes release images; the other branches publish to the
	// development repository without NGC, after an approval.
	MainBranch = "main"
	// ReleaseWorkflow and DevWorkflow are the old workflow names.
	ReleaseWorkflow = "publish"
	DevWorkflow     = "publish-dev"
	// Context holds the registry credentials: DOCKER_USER / DOCKER_PASS for
	// Docker Hub, NGC_API_USERNAME / NGC_API_KEY for nvcr.io.
	Context = "determined-production"
	// ApproveDocker gates every development docker job. ApproveCloud is the
	// old gate of the cloud images (Packer AMIs, out of scope here): kept so
	// the development workflow has the approval jobs developers know, it
	// gates nothing in this repository. Approval jobs are not builds for the
	// release tooling.
	ApproveDocker = "request-publish-dev-docker"
	ApproveCloud  = "request-publish-dev-cloud"
	// ArtifactsDir is the ARTIFACTS_DIR of every job; ReportPath is where its
	// report goes (beside it, never stored as an artifact: the release tooling
	// downloads every artifact of a job and reads it as a bump file).
	ArtifactsDir = "/tmp/artifacts"
	ReportPath   = "/tmp/publish-report.json"
	// ConfigPath is where the generated config is committed.
	ConfigPath = ".circleci/config.yml"
)

// DevIgnore is the development workflow's branch filter, the old one: pull
// requests from forks, release branches, master and main never publish there.
var DevIgnore = []string{`/pull\/.*/`, `/release-.*/`, "master", MainBranch}

// DevEnv is the development mode of the old CI. NGC_PUBLISH is "0" rather
// than empty so that no shell or CI quirk can turn it into "unset" (= on).
var DevEnv = []string{"NGC_PUBLISH=0", "REGISTRY_REPO=environments-dev"}

// mpi0Only are published by CI with WITH_MPI=0 only, as in the old CI: the
// ROCm image ignores MPI (the same tags under every variant, so a second job
// would race the first), and the DeepSpeed images were never published with
// MPI.
var mpi0Only = []string{"pytorch10-tf27-rocm50", "deepspeed-gpu", "gpt-neox-deepspeed-gpu"}

// Job is one CI job: publishImage of one framework image (and its base)
// under one WITH_MPI value.
type Job struct {
	Name    string
	Image   string // catalog name
	Base    string // the base image the job publishes first ("" for none)
	MPI     string // "0" or "1"
	Dev     bool
	Machine Machine
	// Platforms the job builds; Arm64 is true when linux/arm64 is among
	// them, so the machine needs arm64 emulation.
	Platforms []string
	Arm64     bool
	Requires  []string
	// Env are the KEY=VALUE settings of the publish step, in order.
	Env []string
	// Artifact is the one file the job stores.
	Artifact string
}

// Tool is where a job compiles the tool once (mage -compile): the builder
// and publish steps run it instead of compiling it again with `go run`.
const Tool = "/tmp/envs"

// Command is the job's publish step, as a shell command line.
func (j Job) Command() string {
	return strings.Join(append(slices.Clone(j.Env), Tool, "-v", "publishImage", j.Image), " ")
}

// Workflow is one of the two workflows.
type Workflow struct {
	Name string
	Dev  bool
	// Approvals are the approval jobs (development only).
	Approvals []string
	Jobs      []Job
}

// Only and Ignore are the workflow's branch filter.
func (w Workflow) Only() []string {
	if w.Dev {
		return nil
	}
	return []string{MainBranch}
}

// Ignore is the branch filter's ignore list (development only).
func (w Workflow) Ignore() []string {
	if w.Dev {
		return DevIgnore
	}
	return nil
}

// ImageJobName is build-and-publish-docker-<image>-<M>, the old name; dev
// adds "-dev".
func ImageJobName(image, mpi string, dev bool) string {
	name := "build-and-publish-docker-" + image + "-" + mpi
	if dev {
		return name + "-dev"
	}
	return name
}

// Workflows lays out the release and the development workflow.
func Workflows() ([]Workflow, error) {
	var out []Workflow
	for _, dev := range []bool{false, true} {
		w := Workflow{Name: ReleaseWorkflow, Dev: dev}
		if dev {
			w.Name, w.Approvals = DevWorkflow, []string{ApproveDocker, ApproveCloud}
		}
		for _, combo := range variant.Matrix() {
			if !combo.CI {
				continue
			}
			jobs, err := comboJobs(combo, dev)
			if err != nil {
				return nil, err
			}
			w.Jobs = append(w.Jobs, jobs...)
		}
		out = append(out, w)
	}
	return out, nil
}

// comboJobs are the jobs of one matrix variant: one per framework image, in
// catalog order.
func comboJobs(combo variant.Combo, dev bool) ([]Job, error) {
	for _, k := range []string{"WITH_OFI", "WITH_NCCL", "WITH_AWS_TRACE"} {
		if _, ok := combo.Env[k]; ok {
			// Their artifact files would have the names and keys of the
			// plain mpi jobs' files (see variant.Matrix).
			return nil, fmt.Errorf("ci: matrix variant %q sets %s: its artifact files would collide with the WITH_MPI=%s jobs' files; publish it by hand", combo.Name, k, combo.MPIDigit())
		}
	}
	mpi := combo.MPIDigit()
	env := []string{"WITH_MPI=" + mpi, "ARTIFACTS_DIR=" + ArtifactsDir, "PUBLISH_REPORT=" + ReportPath}
	if dev {
		env = append(slices.Clone(DevEnv), env...)
	}
	var jobs []Job
	for _, img := range catalog.All() {
		if img.IsBase() || (mpi != "0" && slices.Contains(mpi0Only, img.Name)) {
			continue
		}
		plats := []string{"linux/amd64"}
		if img.MultiArch && mpi == "0" {
			plats = append(plats, "linux/arm64")
		}
		j := Job{
			Name: ImageJobName(img.Name, mpi, dev), Image: img.Name, Base: img.Base, MPI: mpi, Dev: dev,
			Machine: CPUMachine, Platforms: plats, Arm64: slices.Contains(plats, "linux/arm64"), Env: env,
			// publish.ArtifactName's contract name (ci_test checks they agree;
			// publish's tests import this package, so it cannot import publish).
			Artifact: "publish-" + img.Name + "-" + mpi,
		}
		if dev {
			j.Requires = []string{ApproveDocker}
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// MatrixLines prints the CI jobs of the release workflow, one a line: name,
// settings, image, its base and its platforms.
func MatrixLines() ([]string, error) {
	ws, err := Workflows()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, j := range ws[0].Jobs {
		l := fmt.Sprintf("%s WITH_MPI=%s %s", j.Name, j.MPI, j.Image)
		if j.Base != "" {
			l += " (base " + j.Base + ")"
		}
		out = append(out, l+" "+strings.Join(j.Platforms, ","))
	}
	return out, nil
}
