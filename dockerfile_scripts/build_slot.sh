#!/usr/bin/env bash
# build_slot.sh COMMAND [ARG...]: runs COMMAND holding one of the builder's
# build slots, so that however many builds run on one BuildKit daemon at once
# (a publish of every image, a `docker buildx bake`, several CI jobs on one
# builder), only as many memory-heavy steps (compilers, conda, pip of the
# frameworks) run side by side as the builder's memory holds.
#
# The slots are lock files in SLOT_DIR, a BuildKit cache mount that every
# build on the daemon shares:
#   RUN --mount=type=cache,id=determined-build-slots,target=/tmp/det/build-slots,sharing=shared ...
# A slot is held with flock(1) for as long as COMMAND runs; the kernel drops
# the lock when the step ends, however it ends, so a cancelled or killed
# build leaves no slot taken. The cache mount is not part of any step's cache
# key or of the image.
#
# How many: one heavy step compiles with one compiler per CPU (make -j$(nproc),
# PyTorch extension builds), and a C++/CUDA compiler process (nvcc, g++ on
# TensorFlow's headers) peaks at about 2 GiB, so a step may need CPUs x 2 GiB:
# slots = memory / (CPUs x 2 GiB), at least 1, where memory is MemTotal or the
# step's cgroup memory limit when lower, and CPUs is nproc, both as the step
# sees them, that is on the builder (each node of a multi-node builder counts
# its own). BUILD_SLOTS (a whole number >= 1) overrides the count.
# `build_slot.sh --count` prints the count and exits (PROC_MEMINFO and
# CGROUP_ROOT, for the tests, say where /proc/meminfo and /sys/fs/cgroup are).
set -euo pipefail

SLOT_DIR="${SLOT_DIR:-/tmp/det/build-slots}"
PROC_MEMINFO="${PROC_MEMINFO:-/proc/meminfo}"
CGROUP_ROOT="${CGROUP_ROOT:-/sys/fs/cgroup}"
GIB=$((1024 * 1024 * 1024))

# builder_memory: bytes of memory the step can use.
builder_memory() {
    local mem limit path
    mem=$(awk '/^MemTotal:/ { print $2 }' "${PROC_MEMINFO}")
    if ! [[ "${mem}" =~ ^[0-9]+$ ]]; then
        echo "build_slot.sh: no MemTotal in ${PROC_MEMINFO}" >&2
        exit 2
    fi
    mem=$((mem * 1024))
    for path in "${CGROUP_ROOT}/memory.max" "${CGROUP_ROOT}/memory/memory.limit_in_bytes"; do
        if [[ -r "${path}" ]]; then
            limit=$(cat "${path}")
            if [[ "${limit}" =~ ^[0-9]+$ ]] && ((limit > 0 && limit < mem)); then
                mem=${limit}
            fi
        fi
    done
    echo "${mem}"
}

# slot_count: the number of slots (see above).
slot_count() {
    local n cpus
    if [[ -n "${BUILD_SLOTS:-}" ]]; then
        if ! [[ "${BUILD_SLOTS}" =~ ^[1-9][0-9]*$ ]]; then
            echo "build_slot.sh: BUILD_SLOTS=${BUILD_SLOTS} is not a whole number >= 1" >&2
            exit 2
        fi
        echo "${BUILD_SLOTS}"
        return
    fi
    cpus=$(nproc 2>/dev/null || echo 1)
    n=$(($(builder_memory) / (cpus * 2 * GIB)))
    echo $((n < 1 ? 1 : n))
}

if (($# == 0)); then
    echo "usage: build_slot.sh COMMAND [ARG...] | --count" >&2
    exit 2
fi
if [[ "$1" == --count ]]; then
    slot_count
    exit 0
fi
if [[ -n "${BUILD_SLOT_HELD:-}" ]]; then
    # Already inside a slot (a heavy script calling another): never wait for
    # a second one, which could deadlock.
    exec "$@"
fi
slots=$(slot_count)
mkdir -p "${SLOT_DIR}"
waited=0
while true; do
    for ((i = 0; i < slots; i++)); do
        exec {fd}>>"${SLOT_DIR}/slot-${i}"
        if flock -n "${fd}"; then
            if ((waited > 0)); then
                echo "build_slot.sh: got build slot $((i + 1)) of ${slots} after ${waited}s" >&2
            fi
            status=0
            BUILD_SLOT_HELD=$((i + 1)) "$@" || status=$?
            exit "${status}"
        fi
        exec {fd}>&-
    done
    if ((waited == 0)); then
        echo "build_slot.sh: all ${slots} build slots of this builder are taken; waiting" >&2
    fi
    sleep 1
    waited=$((waited + 1))
done
