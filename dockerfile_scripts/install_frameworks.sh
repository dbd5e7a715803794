#!/usr/bin/env bash
# Installs the deep-learning frameworks named by the *_PIP build arguments,
# each a pip argument list ("torch==1.12.0+cpu -f URL"); empty means skip:
#   TENSORFLOW_PIP, TORCH_PIP, TORCHVISION_PIP, TORCH_TB_PROFILER_PIP
#
# On arm64 the CPU pins name amd64-only wheels, so they are mapped (see
# docs/images.md): a "+cpu" local version is dropped (torch==1.12.0+cpu ->
# torch==1.12.0, the aarch64 wheels carry no local version), and
# tensorflow-cpu==V becomes tensorflow==V for V >= 2.10 (Google publishes
# aarch64 wheels of "tensorflow" from 2.10 on) or tensorflow-aarch64==V before.
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# version_ge A B: A >= B in version order.
version_ge() {
    [[ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -n 1)" == "$2" ]]
}

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
            local v="${word#tensorflow-cpu==}"
            if version_ge "${v}" 2.10; then
                word="tensorflow==${v}"
            else
                word="tensorflow-aarch64==${v}"
            fi
            ;;
        *==*+cpu)
            word="${word%+cpu}"
            ;;
        esac
        out+=("${word}")
    done
    printf '%s\n' "${out[*]}"
}

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
    python3 -c 'import tensorflow as tf; print("tensorflow", tf.__version__)'
fi
if [[ -n "${TORCH_PIP:-}" ]]; then
    python3 -c 'import torch; print("torch", torch.__version__)'
fi
