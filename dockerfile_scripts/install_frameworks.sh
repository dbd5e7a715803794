#!/usr/bin/env bash
# Installs the deep-learning frameworks named by the *_PIP build arguments,
# each a pip argument list ("torch==1.12.0+cpu -f URL"); empty means skip:
#   TENSORFLOW_PIP, TORCH_PIP, TORCHVISION_PIP, TORCH_TB_PROFILER_PIP
# Arguments, if any, are pip requirements installed first (the ROCm stage
# passes protobuf==3.20.1).
#
# On arm64 the CPU pins name amd64-only wheels, so they are mapped as the
# previous images did: a "+cpu" local version is dropped (torch==1.12.0+cpu ->
# torch==1.12.0, the aarch64 wheels carry no local version) and
# tensorflow-cpu==V becomes tensorflow-aarch64==V.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# for_arch SPEC: SPEC with its requirements adapted to the target architecture.
for_arch() {
    local words=() out=() word
    read -ra words <<<"${1:-}"
    if [[ "$(target_arch)" != "arm64" ]]; then
        printf "%s\n" "${words[*]}"
        return
    fi
    for word in "${words[@]}"; do
        case "${word}" in
        tensorflow-cpu==*)
            word="tensorflow-aarch64==${word#tensorflow-cpu==}"
            ;;
        *==*+cpu)
            word="${word%+cpu}"
            ;;
        esac
        out+=("${word}")
    done
    printf '%s\n' "${out[*]}"
}

if (($# > 0)); then
    log "installing $*"
    pip_install "$@"
fi

for name in TENSORFLOW_PIP TORCH_PIP TORCHVISION_PIP TORCH_TB_PROFILER_PIP; do
    adapted="$(for_arch "${!name:-}")"
    if [[ -z "${adapted}" ]]; then
        log "${name} is empty: skipped"
        continue
    fi
    log "${name}: pip install ${adapted}"
    pip_spec_install "${adapted}"
done

if [[ -n "${TENSORFLOW_PIP:-}" ]]; then
    python -c 'import tensorflow as tf; print("tensorflow", tf.__version__)'
fi
if [[ -n "${TORCH_PIP:-}" ]]; then
    python -c 'import torch; print("torch", torch.__version__)'
fi
