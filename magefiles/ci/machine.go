package ci

import (
	"regexp"
	"slices"
	"strings"
)

// Machine is a CircleCI machine executor.
type Machine struct {
	Executor, Image, ResourceClass string
}

// CPUMachine runs every job, the DeepSpeed ones included. Ubuntu 24.04 by
// date tag, so the image (and the Go it bootstraps from) changes only when
// this line does; ubuntu-2004 images stopped at 2024.11.1.
//
// The DeepSpeed jobs left the GPU class: nothing in their build uses a GPU.
// DeepSpeed's ops are compiled ahead of time with nvcc from the CUDA devel
// base image for the architectures in TORCH_CUDA_ARCH_LIST (the catalog sets
// it for every image that compiles CUDA code, as apex does), which needs the
// CUDA toolkit, not a device; and the RUN steps of a docker-container
// builder never see the machine's GPU anyway, so the old GPU machine (with
// nvidia as Docker's default runtime) bought nothing but a scarcer, dearer
// resource class.
var CPUMachine = Machine{Executor: "machine", Image: "ubuntu-2404:2026.05.1", ResourceClass: "xlarge"}

// Machines are the executors of the config.
func Machines() []Machine { return []Machine{CPUMachine} }

// What CircleCI's validator (its YAML language server, mid-2026 tables)
// accepts, from the contract (old-makefile.md, last section). The config's
// executors must be among them and pinned by date (not current/edge).
var (
	acceptedLinuxImage = regexp.MustCompile(`^ubuntu-(2404|2204|2004):(\d{4})\.(\d{2})\.(\d+)$`)
	acceptedGPUImages  = []string{"linux-cuda-11:default", "linux-cuda-12:default", "linux-cuda-13:default"}
	acceptedGPUClasses = []string{"gpu.nvidia.small.gen2", "gpu.nvidia.small.multi", "gpu.nvidia.medium", "gpu.nvidia.medium.multi", "gpu.nvidia.large"}
	// The Linux machine resource classes of CircleCI's docs.
	acceptedLinuxClasses = []string{"medium", "large", "xlarge", "2xlarge", "2xlarge+"}
	// newestDate is each Linux image line's newest date tag the validator knows.
	newestDate = map[string]string{"2404": "2026.05.1", "2204": "2026.05.1", "2004": "2024.11.1"}
)

// CheckMachine says why CircleCI's validator would reject a machine image
// and resource class, or "" when it accepts them. GPU images go with GPU
// classes, Linux images with Linux classes.
func CheckMachine(image, class string) string {
	if slices.Contains(acceptedGPUImages, image) {
		if !slices.Contains(acceptedGPUClasses, class) {
			return "GPU machine image " + image + " with resource class " + class + ": accepted GPU classes are " + strings.Join(acceptedGPUClasses, ", ")
		}
		return ""
	}
	m := acceptedLinuxImage.FindStringSubmatch(image)
	if m == nil {
		return "unknown machine image " + image + ": accepted are ubuntu-2404:<date>, ubuntu-2204:<date>, ubuntu-2004:<date> (pinned by date tag) and " + strings.Join(acceptedGPUImages, ", ")
	}
	if date := m[2] + "." + m[3] + "." + m[4]; dateAfter(date, newestDate[m[1]]) {
		return "machine image " + image + " is newer than the newest ubuntu-" + m[1] + " image the validator knows (" + newestDate[m[1]] + ")"
	}
	if !slices.Contains(acceptedLinuxClasses, class) {
		return "Linux machine image " + image + " with resource class " + class + ": accepted are " + strings.Join(acceptedLinuxClasses, ", ")
	}
	return ""
}

// dateAfter compares CircleCI date tags YYYY.MM.N.
func dateAfter(a, b string) bool {
	pa, pb := acceptedLinuxImage.FindStringSubmatch("ubuntu-2404:"+a), acceptedLinuxImage.FindStringSubmatch("ubuntu-2404:"+b)
	if pa == nil || pb == nil {
		return true
	}
	for i := 2; i <= 4; i++ {
		x, y := atoi(pa[i]), atoi(pb[i])
		if x != y {
			return x > y
		}
	}
	return false
}

// atoi reads the digits the date pattern matched.
func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}
