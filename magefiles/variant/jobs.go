package variant

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// How the default JOBS is chosen.
//
// JOBS bounds how many `docker buildx build`s run at once. BuildKit runs the
// steps of all of them side by side, so the bound is what keeps a real
// publish from running out of memory. The recipes compile with one compiler
// per CPU (make -j$(nproc); PyTorch's extension builds of apex and DeepSpeed
// run a compiler per CPU too), and a heavy C++/CUDA compiler process (nvcc, or
// g++ on TensorFlow's headers for Horovod's ops) peaks at about
// jobMemoryPerCPU. So one real GPU framework build may need CPUs x
// jobMemoryPerCPU at its peak, and the default is as many builds as fit in
// the machine's memory that way: JOBS = memory / (CPUs x 2 GiB), at least
// minDefaultJobs, at most maxDefaultJobs. 2 CPUs and 23.5 GiB give 5;
// CircleCI's large (4 CPUs, 15 GiB) and xlarge (8 CPUs, 32 GiB) machines give
// 2. It is the memory of the machine the tool runs on (its cgroup limit when
// lower), which is the builder's memory with the default docker-container
// builder; for a remote builder, set JOBS for that machine.
const (
	jobMemoryPerCPU = 2 << 30
	minDefaultJobs  = 2
	maxDefaultJobs  = 16
)

// DefaultJobs is the default JOBS for a machine with memBytes of memory and
// cpus CPUs (see above); memBytes 0 (unknown) gives minDefaultJobs.
func DefaultJobs(memBytes uint64, cpus int) int {
	cpus = max(cpus, 1)
	n := int(memBytes / (uint64(cpus) * jobMemoryPerCPU))
	return min(max(n, minDefaultJobs), maxDefaultJobs)
}

// defaultJobs is worked out once per process: the machine does not change
// while the tool runs.
var defaultJobs = sync.OnceValue(func() int {
	return DefaultJobs(machineMemory(), runtime.NumCPU())
})

// machineMemory is MemTotal of /proc/meminfo, or the memory limit of the
// process's cgroup (v2 memory.max, v1 memory.limit_in_bytes) when lower; 0
// when unknown.
func machineMemory() uint64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	mem := MemTotal(string(b))
	for _, path := range []string{"/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"} {
		if b, err := os.ReadFile(path); err == nil {
			if limit, err := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64); err == nil && limit > 0 && limit < mem {
				mem = limit
			}
		}
	}
	return mem
}

// MemTotal parses the MemTotal line of /proc/meminfo ("MemTotal: N kB")
// into bytes; 0 when it is missing.
func MemTotal(meminfo string) uint64 {
	for _, line := range strings.Split(meminfo, "\n") {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(f[1], 10, 64)
			if err != nil {
				return 0
			}
			return kb << 10
		}
	}
	return 0
}
