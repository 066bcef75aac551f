#!/usr/bin/env bash
# The services the reproduce tests and the demo need: a Docker daemon and an OCI registry on
# 127.0.0.1:5000, and the Debian tools the integration tests use: qemu-user-static (cross-CPU
# builds), golang-go with golang-golang-x-mod-dev (the Go reference for the transparency log).
#
#   scripts/services.sh up     start what is missing (idempotent; a no-op where Docker runs)
#   scripts/services.sh down   stop what `up` started on this machine (never a daemon or registry
#                              that was already there), remove its state and registry storage
#
# Where `docker info` already answers (GitHub runners, a developer's Docker Desktop) no daemon is
# installed or started. Otherwise the Debian packages are installed when missing and `dockerd` is
# started in the background. The registry is reused when something already answers on
# 127.0.0.1:5000; else Debian's `docker-registry` runs it, else the `registry:2` image does.
# What was started is recorded in $VERIFY_MODEL_SERVICES_DIR (default /tmp/verify-model-services).
set -euo pipefail

STATE_DIR=${VERIFY_MODEL_SERVICES_DIR:-/tmp/verify-model-services}
REGISTRY_ADDR=127.0.0.1:5000
REGISTRY_URL="http://$REGISTRY_ADDR/v2/"
REGISTRY_CONTAINER=verify-model-registry
WAIT_SECONDS=${VERIFY_MODEL_SERVICES_WAIT:-60}

say() { echo "services: $*"; }
die() {
  echo "services: error: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo --non-interactive "$@"
  else
    die "not root and no sudo: cannot run $1"
  fi
}

docker_answers() { docker info >/dev/null 2>&1; }
registry_answers() { curl --silent --fail --max-time 2 --output /dev/null "$REGISTRY_URL"; }

# True when the pid recorded in $1 is alive and runs the program named $2 (guards against a
# recycled pid: `down` must never kill something it did not start).
recorded_process_alive() {
  local pidfile=$1 comm=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  [ -r "/proc/$pid/comm" ] && [ "$(cat "/proc/$pid/comm")" = "$comm" ]
}

# wait_until WHAT LOG CHECK [PID]: until CHECK succeeds; fails early when PID (the launcher) exits.
wait_until() {
  local what=$1 log=$2 check=$3 pid=${4:-} deadline=$((SECONDS + WAIT_SECONDS)) reason
  until "$check"; do
    reason=''
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then reason='exited'; fi
    if [ "$SECONDS" -ge "$deadline" ]; then reason="did not answer within ${WAIT_SECONDS}s"; fi
    if [ -n "$reason" ]; then
      echo "services: error: $what $reason; last lines of $log:" >&2
      tail -n 30 "$log" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
}

missing_packages() {
  local package
  for package in "$@"; do
    if [ "$(dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null)" != 'install ok installed' ]; then
      echo "$package"
    fi
  done
}

install_packages() {
  local missing
  if ! command -v dpkg-query >/dev/null; then
    say "not a Debian system: make sure these are installed: $*"
    return
  fi
  mapfile -t missing < <(missing_packages "$@")
  if [ "${#missing[@]}" -eq 0 ]; then
    say "packages present: $*"
    return
  fi
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them"
  say "installing ${missing[*]}"
  local install=(apt-get install -y --no-install-recommends "${missing[@]}")
  # An update only when the package lists are absent or too old to resolve the install.
  if ! compgen -G '/var/lib/apt/lists/*Packages*' >/dev/null ||
    ! as_root env DEBIAN_FRONTEND=noninteractive "${install[@]}" >"$STATE_DIR/apt.log" 2>&1; then
    as_root apt-get update >"$STATE_DIR/apt.log" 2>&1 || die "apt-get update failed (see $STATE_DIR/apt.log)"
    as_root env DEBIAN_FRONTEND=noninteractive "${install[@]}" >>"$STATE_DIR/apt.log" 2>&1 ||
      die "apt-get install ${missing[*]} failed (see $STATE_DIR/apt.log)"
  fi
}

start_dockerd() {
  say "starting dockerd (log: $STATE_DIR/dockerd.log)"
  # setsid: the daemon outlives this script and an interrupt in the calling terminal.
  as_root setsid dockerd >"$STATE_DIR/dockerd.log" 2>&1 </dev/null &
  wait_until dockerd "$STATE_DIR/dockerd.log" docker_answers $!
  # The daemon's own pid (with sudo, $! would be sudo's) is what `down` stops.
  as_root cat /var/run/docker.pid >"$STATE_DIR/dockerd.pid"
  say "dockerd up (pid $(cat "$STATE_DIR/dockerd.pid"), storage driver $(docker info --format '{{.Driver}}'))"
}

start_registry() {
  if command -v docker-registry >/dev/null; then
    mkdir -p "$STATE_DIR/registry-data"
    cat >"$STATE_DIR/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE_DIR/registry-data
  delete:
    enabled: true
http:
  addr: $REGISTRY_ADDR
EOF
    say "starting docker-registry on $REGISTRY_ADDR (log: $STATE_DIR/registry.log)"
    setsid docker-registry serve "$STATE_DIR/registry.yml" >"$STATE_DIR/registry.log" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/registry.pid"
    wait_until registry "$STATE_DIR/registry.log" registry_answers "$(cat "$STATE_DIR/registry.pid")"
  else
    say "starting the registry:2 container $REGISTRY_CONTAINER on $REGISTRY_ADDR"
    docker rm -f "$REGISTRY_CONTAINER" >/dev/null 2>&1 || true
    docker run -d --name "$REGISTRY_CONTAINER" -p "$REGISTRY_ADDR:5000" registry:2 >"$STATE_DIR/registry.log"
    echo "$REGISTRY_CONTAINER" >"$STATE_DIR/registry.container"
    wait_until registry "$STATE_DIR/registry.log" registry_answers
  fi
  say "registry up on $REGISTRY_ADDR"
}

up() {
  mkdir -p "$STATE_DIR"
  if docker_answers; then
    if recorded_process_alive "$STATE_DIR/dockerd.pid" dockerd; then
      say "dockerd already running (started by services.sh, pid $(cat "$STATE_DIR/dockerd.pid"))"
    else
      say "docker already answers: using it as is"
    fi
    install_packages busybox-static git debootstrap qemu-user-static golang-go golang-golang-x-mod-dev
  else
    if [[ "$(docker info 2>&1 || true)" == *'permission denied'* ]]; then
      die "a Docker daemon runs but this user may not use its socket: add the user to the docker group (then log in again) or run with sudo"
    fi
    install_packages docker.io docker-registry skopeo busybox-static git iptables curl debootstrap qemu-user-static golang-go golang-golang-x-mod-dev
    start_dockerd
  fi
  if registry_answers; then
    say "registry already answers on $REGISTRY_ADDR: using it"
  else
    start_registry
  fi
}

stop_recorded_process() {
  local name=$1 pidfile=$2 comm=$3 pid
  if recorded_process_alive "$pidfile" "$comm"; then
    pid=$(cat "$pidfile")
    say "stopping $name (pid $pid)"
    as_root kill "$pid"
    for _ in $(seq 1 60); do
      [ -d "/proc/$pid" ] || break
      sleep 0.5
    done
    [ ! -d "/proc/$pid" ] || die "$name (pid $pid) did not exit within 30s"
  fi
  rm -f "$pidfile"
}

down() {
  if [ ! -d "$STATE_DIR" ]; then
    say "nothing recorded in $STATE_DIR: nothing to stop"
    return
  fi
  if [ -f "$STATE_DIR/registry.container" ]; then
    say "removing the container $REGISTRY_CONTAINER"
    docker rm -f "$REGISTRY_CONTAINER" >/dev/null 2>&1 || true
    rm -f "$STATE_DIR/registry.container"
  fi
  stop_recorded_process docker-registry "$STATE_DIR/registry.pid" docker-registry
  stop_recorded_process dockerd "$STATE_DIR/dockerd.pid" dockerd
  rm -rf "$STATE_DIR"
  say "down"
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  *) die "usage: $0 up|down" ;;
esac
