# The one shell library of scripts/* and lab/*: paths, logging, apt, dockerd, the virtualenvs. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NETDIAG_VENV:-$ROOT/.venv}
# ansible-builder and ansible-runner, apart from the collection's pins (lab/ee/ee-image)
EE_VENV=${NETDIAG_EE_VENV:-$ROOT/.venv-ee}
COLL_ROOT=$ROOT/.ansible/collections
export ANSIBLE_COLLECTIONS_PATH=$COLL_ROOT
export ANSIBLE_CONFIG=$ROOT/ansible.cfg
export PATH=$VENV/bin:$PATH
APT_PACKAGES=(docker.io mmdebstrap hping3 iptables nftables conntrack curl iproute2 util-linux procps
              qemu-system-x86 qemu-utils e2fsprogs zstd openssh-client ethtool git iputils-ping shellcheck
              chromium)
LOG_PREFIX=${LOG_PREFIX:-}

log() { printf '\033[1m== %s%s\033[0m\n' "${LOG_PREFIX:+$LOG_PREFIX: }" "$*" >&2; }
die() { printf '%s%s\n' "${LOG_PREFIX:+$LOG_PREFIX: }" "$*" >&2; exit 1; }
need() { command -v "$1" >/dev/null 2>&1; }
# progress: the lines of apt's and pip's output that show a long step moving, indented, on stderr
progress() { { grep --line-buffered -E '^(Get:|Unpacking|Setting up|Collecting|Successfully installed)' || true; } \
  | sed -u 's/^/   /' >&2; }

# apt_install PKG...: installs the packages that are not installed yet, with apt's progress on stderr.
apt_install() {
  local missing=() p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -gt 0 ] || return 0
  [ "$(id -u)" = 0 ] || die "missing Debian packages; install as root: apt-get install ${missing[*]}"
  log "apt-get install ${missing[*]} (a few minutes on a fresh machine)"
  apt-get update -q >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" | progress \
    || die "apt-get install ${missing[*]} failed"
  for p in "${missing[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || die "apt-get could not install $p"
  done
}

ensure_apt() { apt_install "${APT_PACKAGES[@]}"; }

# ensure_dockerd: a running Docker daemon (started in the background when none answers; no systemd here).
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  log "starting dockerd in the background (log /var/log/netdiag-dockerd.log)"
  # without the caller's descriptors above 2: under `flock /tmp/netdiag-heavy.lock scripts/test` dockerd would
  # inherit the lock's descriptor and hold the machine-wide lock for as long as it runs (it did: every heavy job waited)
  (
    for fd in "/proc/$BASHPID/fd/"*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    exec nohup dockerd >/var/log/netdiag-dockerd.log 2>&1
  ) &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  tail -20 /var/log/netdiag-dockerd.log >&2
  die "dockerd did not become ready within 30 s"
}

# make_venv DIR PYTHON REQUIREMENTS...: a virtualenv with pinned requirements, made when it is missing (or its
# Python is gone) and brought up to the pins in place when they change: never removed under a process using it
# (work trees at different commits may share one through NETDIAG_VENV).
make_venv() {
  local dir=$1 python=$2 stamp want; shift 2
  stamp=$dir/.requirements.sha256
  want=$(cat "$@" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$dir/bin/python" ] || ! "$dir/bin/python" -c '' 2>/dev/null; then
    log "virtualenv $dir ($(basename "$python"); $*)"
    rm -rf "$dir"
    "$python" -m venv "$dir"
  fi
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "virtualenv $dir: installing $*"
    local req args=()
    for req in "$@"; do args+=(-r "$req"); done
    "$dir/bin/pip" install --disable-pip-version-check --progress-bar off "${args[@]}" | progress \
      || die "pip could not install $* into $dir"
    echo "$want" > "$stamp"
  fi
}

ensure_venv() {
  make_venv "$VENV" python3 "$ROOT/requirements.txt" "$ROOT/requirements-test.txt"
  # the collection, importable by ansible from the work tree
  local link=$COLL_ROOT/ansible_collections/netdiag/packetloss
  if [ "$(readlink "$link" 2>/dev/null)" != "$ROOT" ]; then
    mkdir -p "$COLL_ROOT/ansible_collections/netdiag"
    ln -sfn "$ROOT" "$link"
  fi
}

ensure_ee_venv() { make_venv "$EE_VENV" python3 "$ROOT/requirements-ee.txt"; }

bootstrap() {
  ensure_apt
  ensure_venv
  ensure_dockerd
}
