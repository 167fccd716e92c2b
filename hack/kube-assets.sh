#!/usr/bin/env bash
# Provide etcd, kube-apiserver and kube-controller-manager for the local control plane, printing the
# folder that holds them. The controller manager runs the garbage collector, so owner references
# clean up children in tests the way they do in a cluster.
#
# Order of preference:
#   1. $KUBEBUILDER_ASSETS, when it names a folder with both binaries (the envtest convention);
#   2. the cache ($KAIZEN_CACHE_DIR, default ~/.cache/kaizen/kube-assets/v1.20.2);
#   3. a build: etcd from Debian's etcd-server package, kube-apiserver and kube-controller-manager
#      compiled from Debian's `kubernetes` source package (the only way to get them without
#      downloading upstream binaries).
# Idempotent: a second run with the cache in place prints the folder and does nothing else.
# Progress goes to stderr; the folder is the only thing on stdout.
set -euo pipefail

version="v1.20.2"
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
export DEBIAN_FRONTEND=noninteractive

# kubectl drives every test and `kaizen up`; Debian's kubernetes-client matches the server built below.
if ! command -v kubectl >/dev/null; then
  echo "kube-assets: installing kubectl (Debian's kubernetes-client)" >&2
  $SUDO apt-get update -qq >&2
  $SUDO apt-get install -y -qq --no-install-recommends kubernetes-client >&2
fi
complete() { [[ -x "$1/kube-apiserver" && -x "$1/kube-controller-manager" && -x "$1/etcd" ]]; }
if [[ -n "${KUBEBUILDER_ASSETS:-}" ]] && complete "$KUBEBUILDER_ASSETS"; then
  echo "$KUBEBUILDER_ASSETS"
  exit 0
fi

cache="${KAIZEN_CACHE_DIR:-$HOME/.cache/kaizen}/kube-assets/$version"
if complete "$cache"; then
  echo "$cache"
  exit 0
fi

log() { echo "kube-assets: $*" >&2; }

# One builder at a time: a second caller waits for the first and then finds the cache.
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9
if complete "$cache"; then echo "$cache"; exit 0; fi

if ! grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ && ! grep -qs '^deb-src' /etc/apt/sources.list; then
  log "adding deb-src entries for Debian's kubernetes source package"
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    $SUDO sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources \
      | $SUDO tee /etc/apt/sources.list.d/kaizen-deb-src.sources >/dev/null
  else
    grep '^deb ' /etc/apt/sources.list | sed 's/^deb /deb-src /' \
      | $SUDO tee /etc/apt/sources.list.d/kaizen-deb-src.list >/dev/null
  fi
fi
log "apt-get update + install (etcd-server golang-go rsync and Go vendor fixes)"
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends etcd-server golang-go rsync dpkg-dev make \
  golang-github-modern-go-reflect2-dev golang-github-json-iterator-go-dev >&2
# Debian starts etcd as a service on install; Kaizen runs its own on free ports.
$SUDO systemctl disable --now etcd >/dev/null 2>&1 || $SUDO pkill -x etcd >/dev/null 2>&1 || true
cp "$(command -v etcd || echo /usr/bin/etcd)" "$cache/etcd.tmp" && mv "$cache/etcd.tmp" "$cache/etcd"

work="$(mktemp -d "${TMPDIR:-/tmp}/kaizen-k8s-src.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "fetching Debian's kubernetes source package into $work"
(cd "$work" && apt-get source --download-only kubernetes >&2 && dpkg-source -x --no-check kubernetes_*.dsc src >&2)
tree="$work/src"
# Go 1.19 crashes this tree's JSON encoding with the vendored reflect2/json-iterator;
# Debian's own newer copies are drop-in replacements.
for pkg in modern-go/reflect2 json-iterator/go; do
  rm -rf "$tree/vendor/github.com/$pkg"
  mkdir -p "$tree/vendor/github.com/$pkg"
  cp -r "/usr/share/gocode/src/github.com/$pkg/." "$tree/vendor/github.com/$pkg/"
done
mkdir -p "$tree/.go/src/k8s.io"
ln -sfn ../../.. "$tree/.go/src/k8s.io/kubernetes"
targets=()
for binary in kube-apiserver kube-controller-manager; do
  [[ -x "$cache/$binary" ]] || targets+=("cmd/$binary")
done
log "building ${targets[*]} (about 7 minutes each on 2 cores, once)"
(cd "$tree/.go/src/k8s.io/kubernetes" && GOPATH="$tree/.go" CGO_ENABLED=0 GOFLAGS=-mod=vendor \
  make WHAT="${targets[*]}" >&2)
for target in "${targets[@]}"; do
  binary="${target#cmd/}"
  cp "$tree/_output/bin/$binary" "$cache/$binary.tmp"
  mv "$cache/$binary.tmp" "$cache/$binary"
done
log "cached in $cache"
echo "$cache"
