#!/usr/bin/env bash
# install-deps.sh - installs every Debian 12 package needed to build, test,
# benchmark and fuzz vmodule (compilers, libraries, mosquitto, the Python test
# tools). Idempotent: when dpkg already reports every package installed it
# does nothing (no apt-get at all), unless --force is given.
#
#   scripts/install-deps.sh            install what is missing
#   scripts/install-deps.sh --force    apt-get update + install even if present
#   scripts/install-deps.sh --list     print the package list and exit
#   scripts/install-deps.sh --check    exit 0 if all installed, 1 otherwise
#
# Works as root with no stdin (CI, Docker); uses sudo only when not root.
set -euo pipefail

# Build: compiler, make, pkg-config and the -dev packages the Makefile's
# pkg-config line names (libuv libmosquitto libssl libcrypto libcurl libcjson).
BUILD_PKGS=(
  build-essential pkg-config
  libuv1-dev libmosquitto-dev libssl-dev libcurl4-openssl-dev libcjson-dev
)
# Tests: cmocka for the C unit tests; a real broker, real clients and Python
# peers for the integration tests (python3-yaml reads conf/docker-compose.yml
# and the Kubernetes files of conf/k8s/); socat for PTY/TCP plumbing; openssl
# to make throw-away certificates; iproute2 (ss) and procps (pgrep, ps) for
# diagnosis; systemd for systemd-analyze / systemd-sysusers (test_deploy.py
# rates and verifies the installed unit offline); strace (test_deploy.py
# checks every system call the daemon makes is inside the unit's filter).
TEST_PKGS=(
  libcmocka-dev
  mosquitto mosquitto-clients
  python3 python3-pytest python3-serial python3-paho-mqtt python3-yaml
  socat openssl ca-certificates iproute2 procps systemd strace
)
# Fuzzing (make fuzz): clang and its libFuzzer / sanitizer runtimes
# (Debian 12 has clang 14); util-linux's unshare is essential already.
FUZZ_PKGS=(clang libclang-rt-14-dev)
PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}" "${FUZZ_PKGS[@]}")

usage() {
  sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'
}

force=0
case "${1:-}" in
  "") ;;
  --force) force=1 ;;
  --list) printf '%s\n' "${PKGS[@]}"; exit 0 ;;
  --check) ;;
  -h|--help) usage; exit 0 ;;
  *) echo "install-deps.sh: unknown option: $1" >&2; usage >&2; exit 2 ;;
esac

# Prints the packages dpkg does not report as fully installed ("ii"). A package
# that was removed but left its config files shows "rc" and counts as missing.
missing_pkgs() {
  local p status
  for p in "${PKGS[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null || true)
    [[ "$status" == ii* ]] || printf '%s\n' "$p"
  done
}

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-deps.sh: this script needs a Debian-family system (dpkg and apt-get)" >&2
  exit 1
fi

mapfile -t missing < <(missing_pkgs)

if [[ "${1:-}" == --check ]]; then
  if ((${#missing[@]})); then
    echo "missing: ${missing[*]}"
    exit 1
  fi
  echo "all ${#PKGS[@]} packages installed"
  exit 0
fi

if ((force == 0 && ${#missing[@]} == 0)); then
  echo "install-deps.sh: all ${#PKGS[@]} packages already installed (use --force to reinstall)"
  exit 0
fi

SUDO=()
if [[ "$(id -u)" != 0 ]]; then
  if ! command -v sudo >/dev/null 2>&1; then
    echo "install-deps.sh: not root and sudo is not installed; run as root" >&2
    exit 1
  fi
  # -n: never prompt when there is no terminal to answer on (CI); a prompt on a
  # terminal is fine.
  if [[ -t 0 ]]; then SUDO=(sudo); else SUDO=(sudo -n); fi
fi

if ((force)); then
  echo "install-deps.sh: --force: installing ${PKGS[*]}"
  to_install=("${PKGS[@]}")
else
  echo "install-deps.sh: installing missing packages: ${missing[*]}"
  to_install=("${missing[@]}")
fi

# DEBIAN_FRONTEND keeps debconf from asking; the dpkg options keep existing
# config files (e.g. /etc/mosquitto/mosquitto.conf) without a question.
APT=("${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q -y
     -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold)
"${APT[@]}" update </dev/null
"${APT[@]}" install --no-install-recommends "${to_install[@]}" </dev/null

mapfile -t missing < <(missing_pkgs)
if ((${#missing[@]})); then
  echo "install-deps.sh: still missing after apt-get: ${missing[*]}" >&2
  exit 1
fi
echo "install-deps.sh: done"
