#!/usr/bin/env bash
# Build an example's trainer image from Debian packages, push it to the local registry and print
# its pinned reference.
#
#   scripts/build-trainer-image.sh [EXAMPLE]               build or reuse the image; the LAST line
#                                          of stdout is <registry>/verify-model/<trainer>@sha256:<hex>
#   scripts/build-trainer-image.sh [EXAMPLE] --print-lock  print the image's package list, i.e. the
#                                          content of examples/<EXAMPLE>/requirements.lock
#
# EXAMPLE (default tiny-model) picks the packages and names:
#   tiny-model  --include=python3-numpy                 verify-model/tiny-trainer   (~150 MB)
#   torch-cnn   --include=python3-torch,python3-numpy   verify-model/torch-trainer  (~1.3 GB)
#
# The root filesystem is `debootstrap --variant=minbase --include=<packages> bookworm` from the
# Debian mirror this machine's apt uses (override: DEBIAN_MIRROR), trimmed (apt lists and caches,
# docs, man pages, translations, logs), given a uid 1000 user, packed with deterministic tar options
# and `docker import`ed. Its installed packages are compared with the example's requirements.lock.
#
# Caches, so that a second run is instant:
#   - the registry tag bookworm-<key> (key = sha256 of this script, the example and the lock): when
#     it exists its digest is printed at once, without Docker;
#   - the rootfs tarball $VERIFY_MODEL_CACHE/<trainer>-rootfs.tar (default cache dir
#     ~/.cache/verify-model) with its package list and key beside it: when the registry lost the
#     image, it is imported and pushed again without a new debootstrap;
#   - the downloaded .debs ($VERIFY_MODEL_CACHE/debootstrap-debs, shared by the examples), so a
#     rebuild downloads nothing.
# When the mirror has moved on since requirements.lock was written, the image is built from what it
# serves now, with a warning and the diff (STRICT_LOCK=1 refuses instead); --print-lock then prints
# the image's actual lock, which the demo pins in its copy of the source.
# Logs go to stderr. Needs debootstrap and root (or sudo) for a cold build, Docker and a registry
# (scripts/services.sh up) for import and push; REGISTRY defaults to 127.0.0.1:5000 (plain HTTP).
set -euo pipefail

SCRIPT=$(realpath "${BASH_SOURCE[0]}")
EXAMPLES_DIR=$(dirname "$SCRIPT")/../examples
REGISTRY=${REGISTRY:-127.0.0.1:5000}
SUITE=bookworm
ARCH=amd64
CACHE_DIR=${VERIFY_MODEL_CACHE:-$HOME/.cache/verify-model}
DEBS_DIR=$CACHE_DIR/debootstrap-debs
IMAGE_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Per example: the packages debootstrap adds to minbase and the trainer's name (repository and
# cache files).
select_example() {
  EXAMPLE=$1
  case "$EXAMPLE" in
    tiny-model)
      INCLUDE=python3-numpy
      TRAINER=tiny-trainer
      ;;
    torch-cnn)
      INCLUDE=python3-torch,python3-numpy
      TRAINER=torch-trainer
      ;;
    *) die "unknown example '$EXAMPLE' (usage: $0 [tiny-model|torch-cnn] [--print-lock])" ;;
  esac
  LOCK_FILE=$EXAMPLES_DIR/$EXAMPLE/requirements.lock
  REPOSITORY=verify-model/$TRAINER
  IMAGE=$REGISTRY/$REPOSITORY
  ROOTFS_TAR=$CACHE_DIR/$TRAINER-rootfs.tar
  ROOTFS_PACKAGES=$CACHE_DIR/$TRAINER-rootfs.packages
  ROOTFS_KEY=$CACHE_DIR/$TRAINER-rootfs.key
}

log() { echo "build-trainer-image: $*" >&2; }
die() {
  echo "build-trainer-image: error: $*" >&2
  exit 1
}

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo --non-interactive "$@"; fi
}

# The first mirror apt is configured with for $SUITE (one-line .list or deb822 .sources format).
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then
    echo "$DEBIAN_MIRROR"
    return
  fi
  local files=() mirror
  for file in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
    [ -f "$file" ] && files+=("$file")
  done
  [ "${#files[@]}" -gt 0 ] || die 'no apt sources on this machine; set DEBIAN_MIRROR'
  mirror=$(awk -v suite="$SUITE" '
    function found() {
      if (!printed && types ~ / deb / && suites ~ (" " suite " ") && uri != "") {
        print uri; printed = 1; exit
      }
    }
    FNR == 1 { found(); types = ""; suites = ""; uri = "" }
    /^[[:space:]]*deb[[:space:]]/ {
      line = $0; gsub(/\[[^]]*\]/, "", line); split(line, field)
      if (field[3] == suite) { print field[2]; printed = 1; exit }
      next
    }
    /^Types:/ { types = " " substr($0, 7) " " }
    /^Suites:/ { suites = " " substr($0, 8) " " }
    /^URIs:/ { uri = $2 }
    /^[[:space:]]*$/ { found(); types = ""; suites = ""; uri = "" }
    END { found() }
  ' "${files[@]}")
  [ -n "$mirror" ] || die "no apt source for $SUITE in ${files[*]}; set DEBIAN_MIRROR"
  echo "$mirror"
}

# debootstrap fetches with wget, which honours http_proxy; apt's proxy setting is the machine's.
export_apt_proxy() {
  local APT_HTTP_PROXY=''
  if [ -z "${http_proxy:-}" ] && command -v apt-config >/dev/null; then
    eval "$(apt-config shell APT_HTTP_PROXY Acquire::http::Proxy)"
    if [ -n "$APT_HTTP_PROXY" ]; then export http_proxy=$APT_HTTP_PROXY; fi
  fi
}

# requirements.lock: every installed package as <name>:<arch>=<version>, sorted bytewise.
package_list() {
  local root=$1
  echo "# Debian packages inside the $EXAMPLE trainer image (dpkg-query in its root filesystem)."
  echo "# debootstrap --variant=minbase --arch=$ARCH --include=$INCLUDE $SUITE"
  # tiny-model is the default example: its lock keeps the command without the name.
  local name=" $EXAMPLE"
  [ "$EXAMPLE" != tiny-model ] || name=''
  echo "# Regenerate: scripts/build-trainer-image.sh$name --print-lock > examples/$EXAMPLE/requirements.lock"
  as_root chroot "$root" dpkg-query --show \
    --showformat='${db:Status-Abbrev} ${Package}:${Architecture}=${Version}\n' |
    awk '$1 == "ii" { print $2 }' | LC_ALL=C sort
}

cache_key() {
  local packages=$1
  { cat "$SCRIPT"; printf '%s\n%s' "$EXAMPLE" "$packages"; } | sha256sum | cut -c1-64
}

trim_rootfs() {
  local root=$1
  as_root find "$root/var/cache/apt" "$root/var/lib/apt/lists" "$root/var/log" "$root/dev" \
    "$root/run" "$root/tmp" "$root/usr/share/doc" "$root/usr/share/man" "$root/usr/share/info" \
    "$root/usr/share/locale" "$root/usr/share/lintian" -mindepth 1 -delete
  as_root find "$root/var/cache/debconf" "$root/var/lib/dpkg" "$root/etc" -maxdepth 1 \
    \( -name '*-old' -o -name 'passwd-' -o -name 'group-' -o -name 'shadow-' -o -name 'gshadow-' \) \
    -delete
  as_root rm -f "$root/var/cache/ldconfig/aux-cache"
  # Host-specific or build-time values debootstrap leaves behind.
  as_root truncate --size=0 "$root/etc/machine-id" "$root/etc/resolv.conf"
  echo build | as_root tee "$root/etc/hostname" >/dev/null
  # Password-change dates are build days; an empty field means "aging disabled" (shadow(5)).
  as_root sed -i -E 's/^([^:]*:[^:]*:)[0-9]*:/\1:/' "$root/etc/shadow"
  # The contract runs the build as 1000:1000; give the ids a name.
  echo 'build:x:1000:1000:build:/tmp:/usr/sbin/nologin' | as_root tee -a "$root/etc/passwd" >/dev/null
  echo 'build:!::0:99999:7:::' | as_root tee -a "$root/etc/shadow" >/dev/null
  echo 'build:x:1000:' | as_root tee -a "$root/etc/group" >/dev/null
  echo 'build:!::' | as_root tee -a "$root/etc/gshadow" >/dev/null
}

# debootstrap, trim, pack; leaves the tarball, its package list and its key in the cache.
build_rootfs() {
  local mirror work started=$SECONDS
  mirror=$(debian_mirror)
  export_apt_proxy
  work=$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")
  # shellcheck disable=SC2064 # expand $work now: it is local
  trap "as_root rm -rf '$work'" EXIT
  log "debootstrap $SUITE from $mirror (a few minutes)"
  # --cache-dir keeps the downloaded .debs (checked against the Release files on reuse).
  mkdir -p "$DEBS_DIR"
  as_root debootstrap --foreign --variant=minbase --arch="$ARCH" --include="$INCLUDE" \
    --cache-dir="$DEBS_DIR" "$SUITE" "$work/root" "$mirror" >&2
  # The second stage runs dpkg in the new root. Without an fsync after every file (mmdebstrap's
  # default) it is much faster; the tree only ends up in a tarball.
  as_root mkdir -p "$work/root/etc/dpkg/dpkg.cfg.d"
  echo force-unsafe-io | as_root tee "$work/root/etc/dpkg/dpkg.cfg.d/unsafe-io" >/dev/null
  as_root chroot "$work/root" /debootstrap/debootstrap --second-stage >&2
  as_root rm "$work/root/etc/dpkg/dpkg.cfg.d/unsafe-io"
  trim_rootfs "$work/root"
  package_list "$work/root" >"$work/packages"
  as_root tar --create --file=- --directory="$work/root" --format=gnu --sort=name --mtime=@0 \
    --owner=0 --group=0 --numeric-owner . >"$work/rootfs.tar"
  # The key is written last: it is what marks the tarball and package list as complete.
  rm -f "$ROOTFS_KEY"
  mv "$work/rootfs.tar" "$ROOTFS_TAR"
  mv "$work/packages" "$ROOTFS_PACKAGES"
  cache_key "$(cat "$ROOTFS_PACKAGES")" >"$ROOTFS_KEY"
  as_root rm -rf "$work"
  trap - EXIT
  log "rootfs built in $((SECONDS - started))s: $ROOTFS_TAR ($(du -h "$ROOTFS_TAR" | cut -f1))"
}

# The cached rootfs, when one exists that this version of the script built with these packages.
cached_rootfs_matches() {
  local key=$1
  [ -f "$ROOTFS_TAR" ] && [ -f "$ROOTFS_KEY" ] && [ "$(cat "$ROOTFS_KEY")" = "$key" ]
}

# The manifest digest the registry serves for a tag (what `docker pull` by digest checks).
registry_digest() {
  local tag=$1 digest
  digest=$(curl --silent --fail --head --max-time 10 \
    --header 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    --header 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$REGISTRY/v2/$REPOSITORY/manifests/$tag" |
    tr -d '\r' | awk 'tolower($1) == "docker-content-digest:" { print $2 }') || return 1
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || return 1
  echo "$digest"
}

import_and_push() {
  local tag=$1 started=$SECONDS
  docker info >/dev/null 2>&1 || die 'Docker does not answer (start it: scripts/services.sh up)'
  curl --silent --fail --max-time 5 --output /dev/null "http://$REGISTRY/v2/" ||
    die "no registry answers at http://$REGISTRY/v2/ (start it: scripts/services.sh up)"
  log "docker import $ROOTFS_TAR as $IMAGE:$tag"
  docker import --change "ENV PATH=$IMAGE_PATH" --change 'CMD ["python3"]' \
    --message "verify-model $EXAMPLE trainer (scripts/build-trainer-image.sh $EXAMPLE)" \
    "$ROOTFS_TAR" "$IMAGE:$tag" >&2
  docker tag "$IMAGE:$tag" "$IMAGE:$SUITE"
  docker push "$IMAGE:$tag" >&2
  docker push "$IMAGE:$SUITE" >&2
  log "imported and pushed in $((SECONDS - started))s"
}

print_lock() {
  local packages
  if [ -f "$ROOTFS_PACKAGES" ]; then packages=$(cat "$ROOTFS_PACKAGES"); else packages=''; fi
  if [ -z "$packages" ] || ! cached_rootfs_matches "$(cache_key "$packages")"; then build_rootfs; fi
  cat "$ROOTFS_PACKAGES"
}

build_image() {
  [ -f "$LOCK_FILE" ] || die "$LOCK_FILE is missing: create it with $0 $EXAMPLE --print-lock"
  local lock key tag digest
  lock=$(cat "$LOCK_FILE")
  key=$(cache_key "$lock")
  tag=$SUITE-${key:0:16}
  if digest=$(registry_digest "$tag"); then
    log "reusing $IMAGE:$tag"
    echo "$IMAGE@$digest"
    return
  fi
  if cached_rootfs_matches "$key"; then
    log "reusing the cached rootfs $ROOTFS_TAR"
  elif [ "${STRICT_LOCK:-0}" != 1 ] && [ -f "$ROOTFS_PACKAGES" ] &&
    cached_rootfs_matches "$(cache_key "$(cat "$ROOTFS_PACKAGES")")"; then
    log "reusing the cached rootfs $ROOTFS_TAR (built from a newer mirror state, see below)"
  else
    build_rootfs
  fi
  if ! cached_rootfs_matches "$key"; then
    diff -u "$LOCK_FILE" "$ROOTFS_PACKAGES" >&2 || true
    local drift="the packages debootstrap installed differ from $LOCK_FILE (diff above: the mirror moved on)"
    [ "${STRICT_LOCK:-0}" != 1 ] || die "$drift. Regenerate on purpose: $0 $EXAMPLE --print-lock > examples/$EXAMPLE/requirements.lock"
    log "warning: $drift; building from what the mirror serves now. Its lock: $0 $EXAMPLE --print-lock" \
      "(set STRICT_LOCK=1 to refuse)"
    key=$(cache_key "$(cat "$ROOTFS_PACKAGES")")
    tag=$SUITE-${key:0:16}
    if digest=$(registry_digest "$tag"); then
      log "reusing $IMAGE:$tag"
      echo "$IMAGE@$digest"
      return
    fi
  fi
  import_and_push "$tag"
  digest=$(registry_digest "$tag") || die "the registry does not serve $IMAGE:$tag after the push"
  echo "$IMAGE@$digest"
}

main() {
  local example=tiny-model
  if [ $# -gt 0 ] && [[ $1 != --* ]]; then
    example=$1
    shift
  fi
  select_example "$example"
  mkdir -p "$CACHE_DIR"
  # One build at a time per example and cache (the demo and the tests may run together).
  exec 9>"$CACHE_DIR/$TRAINER.flock"
  flock 9
  case "${1:-}" in
    --print-lock) print_lock ;;
    '') build_image ;;
    *) die "unknown argument '$1' (usage: $0 [tiny-model|torch-cnn] [--print-lock])" ;;
  esac
}

main "$@"
