// Package ci lays out the CircleCI workflows that publish the images, from
// the catalog and the publish matrix (variant.Matrix): `mage ciMatrix` prints
// the jobs and `mage ciConfig` renders .circleci/config.yml, so the list of
// jobs lives in one place.
//
// The layout is the old CI's, which Determined's release tooling and the
// developers' routine rely on: a release workflow on main and a development
// workflow on other branches behind the approval job
// request-publish-dev-docker; one job per framework image and WITH_MPI value
// named build-and-publish-docker-<image>-<M> (-dev in development), each
// storing only its own artifact file publish-<image>-<M>. New is one job per
// base image and WITH_MPI value, build-and-publish-base-<base>-<M>, which the
// jobs of the images built on it require: a framework job then finds its base
// up to date and only verifies it.
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
	// gates nothing in this repository.
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

// Machine is a CircleCI machine executor.
type Machine struct {
	Executor, Image, ResourceClass string
	// GPU machines get Docker's default runtime set to nvidia.
	GPU bool
}

// The machines of the old CI.
var (
	CPUMachine = Machine{Executor: "cpu-machine", Image: "ubuntu-2004:2022.04.2", ResourceClass: "xlarge"}
	GPUMachine = Machine{Executor: "gpu-machine", Image: "ubuntu-2004-cuda-11.4:202110-01", ResourceClass: "gpu.nvidia.small", GPU: true}
)

// gpuImages ran on a GPU machine in the old CI, and still do.
var gpuImages = []string{"deepspeed-gpu", "gpt-neox-deepspeed-gpu"}

// mpi0Only are published by CI with WITH_MPI=0 only, as in the old CI: the
// ROCm image ignores MPI (the same tags under every variant, so a second job
// would race the first), and the DeepSpeed images were never published with
// MPI.
var mpi0Only = []string{"pytorch10-tf27-rocm50", "deepspeed-gpu", "gpt-neox-deepspeed-gpu"}

// Job is one CI job: publishImage of one image under one WITH_MPI value.
type Job struct {
	Name  string
	Image string // catalog name
	// Base is true for a base image's job: it publishes only the base and
	// writes no artifact file.
	Base    bool
	MPI     string // "0" or "1"
	Dev     bool
	Machine Machine
	// Arm64 is true when the job builds a multi-platform image and needs
	// arm64 emulation on the machine.
	Arm64    bool
	Requires []string
	// Env are the KEY=VALUE settings of the publish step, in order.
	Env []string
	// Artifact is the one file the job stores ("" for base jobs).
	Artifact string
}

// Command is the job's publish step, as a shell command line.
func (j Job) Command() string {
	return strings.Join(append(slices.Clone(j.Env), "go", "run", "magefile.go", "-v", "publishImage", j.Image), " ")
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

// BaseJobName and ImageJobName are the job names; dev adds "-dev".
func BaseJobName(base, mpi string, dev bool) string {
	return suffix("build-and-publish-base-"+base+"-"+mpi, dev)
}

// ImageJobName is build-and-publish-docker-<image>-<M>, the old name.
func ImageJobName(image, mpi string, dev bool) string {
	return suffix("build-and-publish-docker-"+image+"-"+mpi, dev)
}

func suffix(name string, dev bool) string {
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

// comboJobs are the jobs of one matrix variant: its bases first, then its
// framework images, in catalog order.
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
	var frameworks []catalog.Image
	neededBase := map[string]bool{}
	for _, img := range catalog.All() {
		if img.IsBase() || (mpi != "0" && slices.Contains(mpi0Only, img.Name)) {
			continue
		}
		frameworks = append(frameworks, img)
		if img.Base != "" {
			neededBase[img.Base] = true
		}
	}
	arm64 := func(img catalog.Image) bool { return img.MultiArch && mpi == "0" }
	var jobs []Job
	for _, img := range catalog.All() {
		if !img.IsBase() || !neededBase[img.Name] {
			continue
		}
		j := Job{
			Name: BaseJobName(img.Name, mpi, dev), Image: img.Name, Base: true, MPI: mpi, Dev: dev,
			Machine: CPUMachine, Arm64: arm64(img), Env: env,
		}
		if dev {
			j.Requires = []string{ApproveDocker}
		}
		jobs = append(jobs, j)
	}
	for _, img := range frameworks {
		j := Job{
			Name: ImageJobName(img.Name, mpi, dev), Image: img.Name, MPI: mpi, Dev: dev,
			Machine: CPUMachine, Arm64: arm64(img), Env: env,
			// publish.ArtifactName's contract name (ci_test checks they agree;
			// publish's tests import this package, so it cannot import publish).
			Artifact: "publish-" + img.Name + "-" + mpi,
		}
		if slices.Contains(gpuImages, img.Name) {
			j.Machine = GPUMachine
		}
		if dev {
			j.Requires = append(j.Requires, ApproveDocker)
		}
		if img.Base != "" {
			j.Requires = append(j.Requires, BaseJobName(img.Base, mpi, dev))
		}
		jobs = append(jobs, j)
	}
	return jobs, nil
}

// MatrixLines prints the CI jobs of the release workflow, one a line: name,
// settings, image and the jobs it requires.
func MatrixLines() ([]string, error) {
	ws, err := Workflows()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, j := range ws[0].Jobs {
		l := fmt.Sprintf("%s WITH_MPI=%s %s", j.Name, j.MPI, j.Image)
		if len(j.Requires) > 0 {
			l += " requires " + strings.Join(j.Requires, ",")
		}
		if j.Machine.GPU {
			l += " (GPU machine)"
		}
		out = append(out, l)
	}
	return out, nil
}
