#!/usr/bin/env bash
# install-deps.sh: the Debian 12 packages offboard needs to build, test and demo.
# Idempotent; runs apt-get only when something is missing.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libldap-dev libyaml-dev libcurl4-openssl-dev libsqlite3-dev
      libcriterion-dev slapd ldap-utils python3 openssl ca-certificates
      # scripts/deb-check.sh (ctest package_debian) builds and lints the Debian
      # package (debian/); it installs nothing here. Its opt-in chroot install
      # (OFFBOARD_DEB_CHROOT=1) also needs debootstrap, not installed by default.
      dpkg-dev debhelper lintian
      # The AD and 389-DS integration tests run a real Samba AD DC and a real
      # 389 Directory Server (tests/harness/samba.sh, ds389.sh).
      samba samba-ad-dc samba-ad-provision ldb-tools 389-ds-base libnss3-tools
      # systemd-analyze rates the shipped units (tests/unit/test_units.c).
      systemd
      # the service test asks /healthz and /metrics over a unix socket.
      curl
      # The scim connector reads SCIM answers with jansson (agent/scim.c); its
      # tests run a real SCIM server on node (tests/harness/scim).
      libjansson-dev nodejs
      # Under journald the log lines go through libsystemd's journal API with
      # their fields (agent/log.c).
      libsystemd-dev
      # tests/integration/test_schema.c checks the JSON documents against schemas/*.schema.json.
      python3-jsonschema
      # tests/integration/test_html.c loads the HTML report in a headless Chromium.
      chromium)
# npm installs that server's pinned packages (once, into the build tree). A
# node from elsewhere (NodeSource) brings its own npm and conflicts with
# Debian's, so only a missing command asks for the package.
command -v npm >/dev/null 2>&1 || pkgs+=(npm)
missing=()
for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
                echo "install-deps: run as root to install: ${missing[*]}" >&2
                exit 1
        fi
        echo "install-deps: installing ${missing[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q
        # slapd's postinst would start a system slapd where it can; ours never uses it.
        apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
