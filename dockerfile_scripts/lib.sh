#!/usr/bin/env bash
# Helpers sourced by the other dockerfile_scripts (not run on its own).
set -euo pipefail

# SCRIPTS is the directory holding the dockerfile_scripts.
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

# log MESSAGE...: progress on stderr, prefixed with the calling script's name.
log() {
    printf '[%s] %s\n' "$(basename "${0}")" "$*" >&2
}

# enabled VALUE: true for "1", false for "", "0" or unset (empty WITH_* means 0).
enabled() {
    [[ "${1:-0}" == "1" ]]
}

# target_arch: the Debian architecture of the image being built (amd64, arm64).
target_arch() {
    if [[ -n "${TARGETARCH:-}" ]]; then
        printf '%s\n' "${TARGETARCH}"
    else
        dpkg --print-architecture
    fi
}

# fetch URL DEST: download with retries, failing on HTTP errors.
fetch() {
    curl --fail --silent --show-error --location --retry 5 --retry-delay 3 -o "${2}" "${1}"
}

# apt_install PACKAGE...: refreshes the package lists, installs without
# recommends, and removes the lists again.
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get update
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    rm -rf /var/lib/apt/lists/*
}

# pip_install ARGS...: pip of the image's Python (conda's, first in PATH),
# without cache and always under pip-constraints.txt, which caps protobuf at
# 3.20.x: google-cloud-storage and others pull protobuf 4, with which
# TensorFlow 1.15, tensorflow-rocm 2.7 and Horovod fail to import.
pip_install() {
    python -m pip install --no-cache-dir --disable-pip-version-check \
        --constraint "${SCRIPTS}/pip-constraints.txt" "$@"
}

# pip_spec_install "SPEC": install a *_PIP build argument; its value is split on
# whitespace on purpose ("torch==1.12.0+cpu -f URL"). Empty means skip.
pip_spec_install() {
    local spec=()
    read -ra spec <<<"${1:-}"
    if ((${#spec[@]} == 0)); then
        return 0
    fi
    pip_install "${spec[@]}"
}

# make_jobs: parallelism for make.
make_jobs() {
    nproc 2>/dev/null || echo 2
}
