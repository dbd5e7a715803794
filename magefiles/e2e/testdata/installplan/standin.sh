#!/bin/bash
# Recording stand-in for the network installers and the build tools a
# busybox stand-in base lacks, for the install-plan e2e test
# (installplan_e2e_test.go). It is linked under each tool's name in
# /usr/local/bin (ahead of busybox in PATH), appends one line per call to
# /var/log/installplan/calls and does the least the recipes' scripts rely on
# afterwards: a file where a download was asked for, a source tree in a
# downloaded tarball or clone, users in /etc/passwd, conda's bin directory.
#
# Like the real tools it refuses what would fail for real, and where the
# outside world decides what an install gets, it answers as that world does
# today, from the recorded indexes in /usr/local/share/installplan
# (testdata/installplan/{apt,pypi,conda}):
#   - apt-get update with an NVIDIA CUDA list left in sources.list.d (the
#     2022 key rotation makes it fail), apt-get install without lists;
#   - apt-get install of a package that is not in the recorded package lists
#     of the archives apt-get update saw (Ubuntu's suite by
#     /etc/os-release, Google's cloud-sdk repository when its source is
#     listed): "Unable to locate package" / "has no installation candidate";
#   - conda update --all moves Python to the newest patch of its minor
#     series (conda 4.10's classic solver) unless conda-meta/pinned or
#     --freeze-installed holds it;
#   - pip resolves the packages of the recorded PyPI index (pypi/index:
#     versions and dependencies) to the newest version allowed by the
#     requirement and every --constraint file, as pip does, and keeps what is
#     installed in /var/lib/installplan/site; python -m deepspeed.env_report
#     fails with pydantic 2 installed, as deepspeed 0.8.3 does;
#   - a tool from a package that was not installed (make, gcc, git, curl,
#     wget, gpg, unattended-upgrade): "command not found";
#   - libfabric's configure --enable-verbs without libibverbs-dev and
#     librdmacm-dev, --enable-efa on Ubuntu 18.04 (rdma-core 17), Open MPI's
#     --with-pmi without libpmi2-0-dev.
#
# A log line: TOOL <TAB> CWD <TAB> ARGS <TAB> ENV, where ARGS and ENV (the
# HOROVOD_*, DS_BUILD_* and TORCH_CUDA_ARCH_LIST variables) are lists
# separated by \x1f.
set -euo pipefail

log=/var/log/installplan/calls
state=/var/lib/installplan
data=/usr/local/share/installplan
tool="$(basename "$0")"
mkdir -p "$(dirname "${log}")" "${state}/dpkg"

join() {
    local IFS=$'\x1f'
    printf '%s' "$*"
}

record() {
    local envs=()
    local line
    while IFS= read -r line; do
        envs+=("${line}")
    done < <(env | grep -E '^(HOROVOD_|DS_BUILD_|TORCH_CUDA_ARCH_LIST=)' | sort || true)
    local args="$*"
    args="$(join "$@")"
    printf '%s\t%s\t%s\t%s\n' "${tool}" "${PWD}" "${args//$'\n'/\\n}" "$(join "${envs[@]}")" >>"${log}"
}

installed() {
    local p
    for p in "$@"; do
        if [[ -e "${state}/dpkg/${p}" ]]; then
            return 0
        fi
    done
    return 1
}

needs() {
    if ! installed "$@"; then
        echo "bash: ${tool}: command not found (stand-in: install one of: $*)" >&2
        exit 127
    fi
}

# source_tree DIR: what a downloaded source tree holds, as stand-ins.
source_tree() {
    mkdir -p "$1/contrib"
    local f
    for f in configure autogen.sh mlnxofedinstall build-deb-packages.sh contrib/configure-release; do
        ln -sf /usr/local/bin/standin "$1/${f}"
    done
}

# top_dir URL: the directory a release tarball unpacks to.
top_dir() {
    local url="$1" base
    base="$(basename "${url}")"
    base="${base%.tar.gz}"
    base="${base%.tgz}"
    base="${base%.tar.bz2}"
    if [[ "${url}" == */archive/refs/tags/* ]]; then
        # GitHub source archives: REPO-TAG without the tag's leading v.
        local repo="${url%/archive/*}"
        base="$(basename "${repo}")-${base#v}"
    fi
    printf '%s\n' "${base}"
}

download() {
    local url="$1" out="$2"
    case "${url}" in
    *.tar.gz | *.tgz | *.tar.bz2)
        local tmp
        tmp="$(mktemp -d)"
        local top
        top="$(top_dir "${url}")"
        source_tree "${tmp}/${top}"
        local z=z
        if [[ "${url}" == *.tar.bz2 ]]; then z=j; fi
        tar -c${z}f "${out}" -C "${tmp}" "${top}"
        rm -rf "${tmp}"
        ;;
    *.sh)
        printf '#!/bin/bash\nexec /usr/local/bin/conda-installer "$@"\n' >"${out}"
        ;;
    *)
        printf 'stand-in download of %s\n' "${url}" >"${out}"
        ;;
    esac
}

# vlt A B: true if version A < version B (dot-separated numbers; other
# characters in a part are ignored).
vlt() {
    local IFS=.
    local -a a b
    read -ra a <<<"$1"
    read -ra b <<<"$2"
    local i n=$((${#a[@]} > ${#b[@]} ? ${#a[@]} : ${#b[@]})) x y
    for ((i = 0; i < n; i++)); do
        x="${a[i]:-0}" y="${b[i]:-0}"
        x="${x//[!0-9]/}" y="${y//[!0-9]/}"
        x="${x:-0}" y="${y:-0}"
        if ((10#${x} < 10#${y})); then return 0; fi
        if ((10#${x} > 10#${y})); then return 1; fi
    done
    return 1
}

# satisfies VERSION SPECS: true if VERSION meets every comma-separated PEP 440
# specifier of SPECS (==, !=, <=, >=, <, >, ~=; ==X.* and !=X.* prefixes).
satisfies() {
    local v="$1" spec w specs
    IFS=',' read -ra specs <<<"$2"
    for spec in "${specs[@]}"; do
        spec="${spec// /}"
        case "${spec}" in
        "") ;;
        "=="*)
            w="${spec#==}"
            if [[ "${w}" == *'.*' ]]; then [[ "${v}." == "${w%\*}"* ]] || return 1; else [[ "${v}" == "${w}" ]] || return 1; fi
            ;;
        "!="*)
            w="${spec#!=}"
            if [[ "${w}" == *'.*' ]]; then [[ "${v}." != "${w%\*}"* ]] || return 1; else [[ "${v}" != "${w}" ]] || return 1; fi
            ;;
        "<="*) if vlt "${spec#<=}" "${v}"; then return 1; fi ;;
        ">="*) if vlt "${v}" "${spec#>=}"; then return 1; fi ;;
        "~="*)
            w="${spec#~=}"
            if vlt "${v}" "${w}"; then return 1; fi
            [[ "${v}" == "${w%.*}".* ]] || return 1
            ;;
        "<"*) vlt "${v}" "${spec#<}" || return 1 ;;
        ">"*) vlt "${spec#>}" "${v}" || return 1 ;;
        esac
    done
}

# norm NAME: a Python project name as pip compares them.
norm() {
    local n="${1,,}"
    n="${n//_/-}"
    printf '%s' "${n//./-}"
}

# pip_constraints FILE...: the name<TAB>specs lines of constraint files.
pip_constraints() {
    local f line name
    for f in "$@"; do
        while IFS= read -r line || [[ -n "${line}" ]]; do
            line="${line%%#*}"
            line="${line// /}"
            [[ -n "${line}" ]] || continue
            name="${line%%[<>=!~\[;]*}"
            printf '%s\t%s\n' "$(norm "${name}")" "${line#"${name}"}"
        done <"${f}"
    done
}

# pip_resolve NAME SPECS: installs NAME (and its recorded dependencies) at
# the newest version of the recorded index allowed by SPECS and the
# constraints in ${constraints}; keeps an installed version that is allowed.
# A project not in the index is recorded with its pinned version, if any.
pip_resolve() {
    local name="$1" spec="$2" cons="" have="" v pick="" versions=() line dep
    cons="$(printf '%s\n' "${constraints}" | awk -F'\t' -v n="${name}" '$1 == n { printf "%s,", $2 }')"
    if [[ -e "${state}/site/${name}" ]]; then
        have="$(cat "${state}/site/${name}")"
    fi
    line="$(grep -E "^${name} " "${data}/pypi/index" 2>/dev/null | head -n 1 || true)"
    if [[ -z "${line}" ]]; then
        pick="${spec#==}"
        if [[ "${spec}" != ==* ]]; then pick="${have:-unpinned}"; fi
    elif [[ -n "${have}" ]] && satisfies "${have}" "${spec},${cons}"; then
        return 0
    else
        read -ra versions <<<"${line#* }"
        for v in "${versions[@]}"; do
            if satisfies "${v}" "${spec},${cons}"; then pick="${v}"; fi
        done
        if [[ -z "${pick}" ]]; then
            echo "ERROR: Could not find a version that satisfies the requirement ${name}${spec} (constraints: ${cons:-none}) (from versions: ${versions[*]})" >&2
            echo "ERROR: No matching distribution found for ${name}${spec}" >&2
            exit 1
        fi
    fi
    echo "${pick}" >"${state}/site/${name}"
    while IFS= read -r dep; do
        [[ -n "${dep}" ]] || continue
        local dname="${dep%%[<>=!~]*}"
        pip_resolve "$(norm "${dname}")" "${dep#"${dname}"}"
    done < <(awk -v n="${name}" '$1 == ">" && $2 == n { for (i = 3; i <= NF; i++) print $i }' "${data}/pypi/index")
}

# pip_install_reqs ARGS...: the arguments of `pip install`: requirements,
# -r files, --constraint files and pip options.
pip_install_reqs() {
    local reqs=() files=() a
    while (($# > 0)); do
        a="$1"
        case "${a}" in
        --constraint | -c) files+=("$2"); shift ;;
        -r | --requirement)
            while IFS= read -r line || [[ -n "${line}" ]]; do
                line="${line%%#*}"
                line="${line// /}"
                [[ -n "${line}" ]] && reqs+=("${line}")
            done <"$2"
            shift
            ;;
        -f | --find-links | --no-binary | --only-binary | --index-url | --extra-index-url) shift ;;
        -*) ;;
        *) reqs+=("${a}") ;;
        esac
        shift
    done
    constraints="$(pip_constraints "${files[@]}")"
    mkdir -p "${state}/site"
    local r name spec base
    for r in "${reqs[@]}"; do
        case "${r}" in
        git+*)
            base="${r%@*}"
            base="$(basename "${base}")"
            name="${base%.git}" spec=""
            ;;
        http*://*.whl)
            base="$(basename "${r}")"
            name="${base%%-*}"
            base="${base#*-}"
            spec="==${base%%-*}"
            ;;
        *)
            name="${r%%[<>=!~\[;]*}"
            spec="${r#"${name}"}"
            spec="${spec#\[*\]}"
            ;;
        esac
        pip_resolve "$(norm "${name}")" "${spec}"
    done
}

case "${tool}" in
apt-get)
    record "$@"
    cmd=""
    pkgs=()
    for a in "$@"; do
        case "${a}" in
        -*) ;;
        *) if [[ -z "${cmd}" ]]; then cmd="${a}"; else pkgs+=("${a}"); fi ;;
        esac
    done
    case "${cmd}" in
    update)
        if grep -rqs 'developer.download.nvidia.com' /etc/apt/sources.list.d/; then
            echo "W: GPG error: https://developer.download.nvidia.com/compute/cuda/repos InRelease: NO_PUBKEY A4B469963BF863CC" >&2
            echo "E: The repository 'https://developer.download.nvidia.com/compute/cuda/repos InRelease' is not signed." >&2
            exit 100
        fi
        # The package lists of the archives the sources name, as recorded.
        mkdir -p /var/lib/apt/lists
        suite=focal
        if grep -qs 'VERSION_ID="18.04"' /etc/os-release; then suite=bionic; fi
        cat "${data}/apt/ubuntu-${suite}.list" >/var/lib/apt/lists/stand-in
        if grep -rqs 'packages.cloud.google.com/apt cloud-sdk' /etc/apt/sources.list.d/; then
            cat "${data}/apt/cloud-sdk.list" >>/var/lib/apt/lists/stand-in
        fi
        ;;
    install)
        if [[ ! -e /var/lib/apt/lists/stand-in ]]; then
            echo "E: Unable to locate package ${pkgs[0]:-} (stand-in: no apt-get update since the lists were removed)" >&2
            exit 100
        fi
        for p in "${pkgs[@]}"; do
            if grep -qxF -- "!${p}" /var/lib/apt/lists/stand-in; then
                echo "E: Package '${p}' has no installation candidate" >&2
                exit 100
            fi
            if ! grep -qxF -- "${p}" /var/lib/apt/lists/stand-in; then
                echo "E: Unable to locate package ${p}" >&2
                exit 100
            fi
        done
        for p in "${pkgs[@]}"; do
            touch "${state}/dpkg/${p}"
            case "${p}" in
            openssh-server)
                mkdir -p /etc/ssh
                for k in rsa ecdsa ed25519; do
                    echo "stand-in host key" >"/etc/ssh/ssh_host_${k}_key"
                    echo "stand-in host key" >"/etc/ssh/ssh_host_${k}_key.pub"
                done
                ;;
            libpmi2-0-dev)
                if grep -qs 'VERSION_ID="18.04"' /etc/os-release; then
                    mkdir -p /usr/include/slurm-wlm
                else
                    mkdir -p /usr/include/slurm
                fi
                ;;
            esac
        done
        ;;
    esac
    ;;
dpkg)
    if [[ "${1:-}" == --print-architecture ]]; then
        case "$(uname -m)" in
        aarch64) echo arm64 ;;
        *) echo amd64 ;;
        esac
        exit 0
    fi
    record "$@"
    ;;
curl | wget)
    needs "${tool}"
    url=""
    out=""
    config=0
    while (($# > 0)); do
        case "$1" in
        -o | -O | --output)
            out="$2"
            shift
            ;;
        --config)
            if [[ "$2" == - ]]; then config=1; fi
            shift
            ;;
        --retry | --retry-delay)
            shift
            ;;
        -*) ;;
        *) url="$1" ;;
        esac
        shift
    done
    if ((config)); then
        # The URL comes on stdin (a secret): record only that it did.
        line="$(cat)"
        url="${line#url = \"}"
        url="${url%\"}"
        record "--config" "-" "-o" "${out}"
    else
        record "${url}" "-o" "${out}"
    fi
    download "${url}" "${out:-$(basename "${url}")}"
    ;;
git)
    needs git
    record "$@"
    if [[ "${1:-}" == clone ]]; then
        dir="${*: -1}"
        source_tree "${dir}"
    fi
    ;;
configure | configure-release)
    record "$@"
    project="$(basename "${PWD}")"
    for a in "$@"; do
        case "${a}" in
        --prefix=*) echo "${a#--prefix=}" >.stand-in-prefix ;;
        esac
    done
    if [[ "${project}" == libfabric-* && " $* " == *" --enable-verbs "* ]] &&
        ! { installed libibverbs-dev && installed librdmacm-dev; }; then
        echo "configure: error: verbs provider requested, but dependencies not found (rdma/rdma_cma.h)" >&2
        exit 1
    fi
    if [[ "${project}" == libfabric-* && " $* " == *" --enable-efa "* ]] && grep -qs 'VERSION_ID="18.04"' /etc/os-release; then
        echo "configure: error: EFA provider requested, but rdma-core >= 27 not found (Ubuntu 18.04 has 17)" >&2
        exit 1
    fi
    if [[ "${project}" == openmpi-* && " $* " == *" --with-pmi "* ]] && ! installed libpmi2-0-dev; then
        echo "configure: error: PMI support requested (--with-pmi) but pmi2.h not found" >&2
        exit 1
    fi
    ;;
make)
    needs make build-essential
    record "$@"
    prefix=""
    if [[ -f .stand-in-prefix ]]; then prefix="$(cat .stand-in-prefix)"; fi
    install=0
    for a in "$@"; do
        case "${a}" in
        PREFIX=* | prefix=*) prefix="${a#*=}" ;;
        install | lib_install) install=1 ;;
        esac
    done
    if ((install)) && [[ -n "${prefix}" ]]; then
        mkdir -p "${prefix}/lib" "${prefix}/bin"
        case "$(basename "${PWD}")" in
        libfabric-*) touch "${prefix}/lib/libfabric.so" ;;
        nccl) touch "${prefix}/lib/libnccl.so" ;;
        esac
    fi
    ;;
conda-installer)
    record "$@"
    prefix=""
    while (($# > 0)); do
        if [[ "$1" == -p ]]; then prefix="$2"; shift; fi
        shift
    done
    mkdir -p "${prefix}/bin" "${prefix}/conda-meta"
    for t in conda python python3 pip pip3; do
        ln -sf /usr/local/bin/standin "${prefix}/bin/${t}"
    done
    ;;
conda)
    record "$@"
    prefix="$(dirname "$(dirname "$0")")"
    for a in "$@"; do
        case "${a}" in
        python=*) echo "${a#python=}" >"${state}/python-version" ;;
        esac
    done
    if [[ "${1:-}" == update && " $* " == *" --all "* && " $* " != *" --freeze-installed "* ]]; then
        # The classic solver takes the newest Python of the same minor
        # series (conda/python-versions), unless a pin holds it.
        have="$(cat "${state}/python-version")"
        pin="$(awk '$1 == "python" { $1 = ""; print }' "${prefix}/conda-meta/pinned" 2>/dev/null | tr -d ' =' || true)"
        newest="$(awk -v m="${have%.*}" '$1 == m { print $2 }' "${data}/conda/python-versions")"
        if [[ "${pin}" != "${have}" && -n "${newest}" ]]; then
            echo "${newest}" >"${state}/python-version"
        fi
    fi
    ;;
python | python3 | pip | pip3)
    record "$@"
    if [[ "${1:-}" == -c ]]; then
        if [[ "$2" == *platform.python_version* ]]; then
            cat "${state}/python-version"
        fi
        exit 0
    fi
    if [[ "${1:-} ${2:-}" == "-m deepspeed.env_report" ]]; then
        pydantic="$(cat "${state}/site/pydantic" 2>/dev/null || true)"
        if [[ -n "${pydantic}" ]] && ! vlt "${pydantic}" 2; then
            echo "pydantic.errors.PydanticImportError: deepspeed's config (pydantic ${pydantic}): deepspeed 0.8.3 needs pydantic<2 (stand-in)" >&2
            exit 1
        fi
        exit 0
    fi
    if [[ "${1:-} ${2:-} ${3:-}" == "-m pip install" ]]; then
        pip_install_reqs "${@:4}"
        for a in "$@"; do
            case "${a}" in
            horovod*) ln -sf /usr/local/bin/standin "$(dirname "$0")/horovodrun" ;;
            esac
        done
    fi
    ;;
cc | gcc | g++)
    needs build-essential gcc g++
    record "$@"
    prev=""
    for a in "$@"; do
        if [[ "${a}" == -print-multiarch ]]; then
            echo "$(uname -m)-linux-gnu"
        fi
        if [[ "${prev}" == -o ]]; then echo "stand-in object" >"${a}"; fi
        prev="${a}"
    done
    ;;
gpg)
    needs gnupg
    record "$@"
    prev=""
    for a in "$@"; do
        if [[ "${prev}" == -o ]]; then echo "stand-in keyring" >"${a}"; fi
        prev="${a}"
    done
    ;;
sha256sum | md5sum)
    # The stand-in downloads cannot match: record what was checked, pass.
    want="$(cat)"
    record "$@" "${want}"
    ;;
unattended-upgrade)
    needs unattended-upgrades
    record "$@"
    ;;
groupadd | useradd)
    record "$@"
    id="" gid="" home="" shell="/bin/sh" create=0 name=""
    while (($# > 0)); do
        case "$1" in
        --gid | -g) gid="$2"; shift ;;
        --uid | -u) id="$2"; shift ;;
        --home-dir | -d) home="$2"; shift ;;
        --shell | -s) shell="$2"; shift ;;
        --create-home | -m) create=1 ;;
        *) name="$1" ;;
        esac
        shift
    done
    if [[ "${tool}" == groupadd ]]; then
        echo "${name}:x:${gid}:" >>/etc/group
    else
        echo "${name}:x:${id}:${gid}::${home}:${shell}" >>/etc/passwd
        if ((create)); then mkdir -p "${home}"; fi
    fi
    ;;
install)
    # coreutils' install, which busybox-static lacks: [-D] [-m MODE] SRC DST.
    mode=0755 mkdirs=0 files=()
    while (($# > 0)); do
        case "$1" in
        -D) mkdirs=1 ;;
        -m) mode="$2"; shift ;;
        *) files+=("$1") ;;
        esac
        shift
    done
    if ((mkdirs)); then mkdir -p "$(dirname "${files[1]}")"; fi
    cp "${files[0]}" "${files[1]}"
    chmod "${mode}" "${files[1]}"
    ;;
getent)
    file=/etc/$1
    grep -E "^$2:" "${file}"
    ;;
*)
    # ldconfig, horovodrun, mlnxofedinstall, autogen.sh, ...: record only.
    record "$@"
    ;;
esac
