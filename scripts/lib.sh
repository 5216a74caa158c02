# Shared by scripts/*: paths and the set-up every entry point needs. Sourced, not run.
# shellcheck shell=bash
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${NETDIAG_VENV:-$ROOT/.venv}
COLL_ROOT=$ROOT/.ansible/collections
export ANSIBLE_COLLECTIONS_PATH=$COLL_ROOT
export ANSIBLE_CONFIG=$ROOT/ansible.cfg
export PATH=$VENV/bin:$PATH
APT_PACKAGES=(docker.io mmdebstrap hping3 iptables nftables conntrack curl iproute2 util-linux procps
              qemu-system-x86 qemu-utils e2fsprogs zstd openssh-client ethtool git iputils-ping)

log() { printf '\033[1m== %s\033[0m\n' "$*" >&2; }

ensure_apt() {
  local missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "apt-get install ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

ensure_venv() {
  local stamp=$VENV/.requirements.sha256 want
  want=$(cat "$ROOT/requirements.txt" "$ROOT/requirements-test.txt" | sha256sum | cut -d' ' -f1)
  if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    log "virtualenv $VENV (requirements-test.txt)"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check -r "$ROOT/requirements-test.txt"
    echo "$want" > "$stamp"
  fi
  # the collection, importable by ansible from the work tree
  mkdir -p "$COLL_ROOT/ansible_collections/netdiag"
  ln -sfn "$ROOT" "$COLL_ROOT/ansible_collections/netdiag/packetloss"
}

ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  log "starting dockerd in the background (log /var/log/netdiag-dockerd.log)"
  nohup dockerd >/var/log/netdiag-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do docker info >/dev/null 2>&1 && return 0; sleep 0.5; done
  tail -20 /var/log/netdiag-dockerd.log >&2
  echo "dockerd did not become ready within 30 s" >&2
  return 1
}

bootstrap() {
  ensure_apt
  ensure_venv
  ensure_dockerd
}
