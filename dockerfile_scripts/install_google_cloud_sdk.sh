#!/usr/bin/env bash
# Installs the Google Cloud SDK (gcloud, gsutil) from Google's apt repository,
# whose signing key goes into /usr/share/keyrings/cloud.google.gpg. The
# package is google-cloud-cli: the repository no longer has the old name
# google-cloud-sdk ("has no installation candidate" since 2026).
set -euo pipefail
# shellcheck source-path=SCRIPTDIR
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

keyring=/usr/share/keyrings/cloud.google.gpg
log "installing the Google Cloud SDK"
apt_install apt-transport-https ca-certificates gnupg
work="$(mktemp -d)"
fetch https://packages.cloud.google.com/apt/doc/apt-key.gpg "${work}/key.gpg"
gpg --batch --yes --dearmor -o "${keyring}" "${work}/key.gpg"
rm -rf "${work}"
echo "deb [signed-by=${keyring}] https://packages.cloud.google.com/apt cloud-sdk main" \
    >/etc/apt/sources.list.d/google-cloud-sdk.list
apt_install google-cloud-cli
