#!/usr/bin/env bash
# Builds the kube-apiserver and etcd that the integration tests (test/integration,
# build tag "integration") run under controller-runtime's envtest, and prints the
# directory to export as KUBEBUILDER_ASSETS.
#
# Why build: this project's machines and CI reach only package registries, so
# envtest's usual prebuilt binaries cannot be downloaded; both servers are Go
# modules, so we build them from the Go module proxy with the local toolchain.
# A cold build takes 8-20 minutes on 2 cores; the result is cached outside the
# checkout and reused while both binaries run.
#
# Usage: hack/envtest-assets.sh            # build if missing, print the dir
#        KUBEBUILDER_ASSETS=$(hack/envtest-assets.sh) go test -tags integration ./test/integration/...
# Environment (all optional):
#   IDCHAIN_ENVTEST_DIR   cache root (default ${XDG_CACHE_HOME:-$HOME/.cache}/identitychain-envtest)
#   KUBE_VERSION          k8s.io/kubernetes version (default v1.36.3)
#   ETCD_VERSION          go.etcd.io/etcd/server/v3 version (default v3.6.16)
#   GO                    go command (default go)
set -euo pipefail

GO=${GO:-go}
KUBE_VERSION=${KUBE_VERSION:-v1.36.3}
ETCD_VERSION=${ETCD_VERSION:-v3.6.16}
ROOT=${IDCHAIN_ENVTEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/identitychain-envtest}
OUT="$ROOT/kube-apiserver-${KUBE_VERSION}_etcd-${ETCD_VERSION}"

# The local toolchain only: a go.mod asking for a newer Go must fail loudly,
# not download a toolchain; the caller's GOFLAGS (-race, -tags) are not ours.
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0 GOWORK=off

log() { printf 'envtest-assets: %s\n' "$*" >&2; }

# Both binaries present and runnable. `etcd --version` goes to a file, not a
# pipe: `| head -1` makes etcd die of SIGPIPE, which pipefail turns into failure.
assets_ok() {
	[[ -x "$OUT/kube-apiserver" && -x "$OUT/etcd" ]] || return 1
	"$OUT/kube-apiserver" --version >/dev/null 2>&1 || return 1
	"$OUT/etcd" --version >/dev/null 2>&1 || return 1
}

if assets_ok; then
	printf '%s\n' "$OUT"
	exit 0
fi

mkdir -p "$ROOT"
# Two `make test` runs at once must not build into the same directory.
exec 9>"$ROOT/.lock"
if command -v flock >/dev/null; then
	flock 9
	if assets_ok; then
		printf '%s\n' "$OUT"
		exit 0
	fi
fi

start=$SECONDS
work="$ROOT/src"
mkdir -p "$work" "$OUT"

# kube-apiserver: k8s.io/kubernetes requires its staging modules (k8s.io/api,
# client-go, ...) at v0.0.0 and replaces them with ./staging paths that the
# module zip does not contain, so `go install pkg@version` refuses it. Build it
# from a throwaway module that pins each staging module to the matching v0.X.Y.
build_kube_apiserver() {
	local dir="$work/kube-apiserver-$KUBE_VERSION" gomod staging minor
	gomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[[ -n "$gomod" && -f "$gomod" ]] || { log "cannot download k8s.io/kubernetes@$KUBE_VERSION"; return 1; }
	staging=$(awk '/^\t?k8s\.io\/[^ ]+ v0\.0\.0$/ {print $1}' "$gomod" | sed 's/^\t//')
	[[ -n "$staging" ]] || { log "no v0.0.0 staging requirements in $gomod"; return 1; }
	local sv="v0.${KUBE_VERSION#v1.}"
	minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
	rm -rf "$dir"; mkdir -p "$dir"
	{
		echo "module identitychain.local/envtest/kube-apiserver"
		echo
		echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
		echo
		echo "require k8s.io/kubernetes $KUBE_VERSION"
		echo
		echo "require ("
		for m in $staging; do echo "	$m $sv"; done
		echo ")"
		echo
		echo "replace ("
		for m in $staging; do echo "	$m v0.0.0 => $m $sv"; done
		echo ")"
	} >"$dir/go.mod"
	local vpkg=k8s.io/component-base/version
	log "building kube-apiserver $KUBE_VERSION"
	(cd "$dir" && "$GO" build -trimpath -o "$OUT/kube-apiserver.tmp" \
		-ldflags "-s -w -X $vpkg.gitVersion=$KUBE_VERSION -X $vpkg.gitMajor=1 -X $vpkg.gitMinor=$minor -X $vpkg.gitTreeState=clean" \
		k8s.io/kubernetes/cmd/kube-apiserver)
	mv "$OUT/kube-apiserver.tmp" "$OUT/kube-apiserver"
}

# etcd: its main package is the root of go.etcd.io/etcd/server/v3, whose
# go.mod replaces its sibling modules with ../ paths; same refusal, same cure
# (the siblings are required at the same version, so no replace is needed).
build_etcd() {
	local dir="$work/etcd-$ETCD_VERSION"
	rm -rf "$dir"; mkdir -p "$dir"
	local gomod
	gomod=$("$GO" mod download -json "go.etcd.io/etcd/server/v3@$ETCD_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
	[[ -n "$gomod" && -f "$gomod" ]] || { log "cannot download go.etcd.io/etcd/server/v3@$ETCD_VERSION"; return 1; }
	{
		echo "module identitychain.local/envtest/etcd"
		echo
		echo "go $(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")"
		echo
		echo "require go.etcd.io/etcd/server/v3 $ETCD_VERSION"
	} >"$dir/go.mod"
	log "building etcd $ETCD_VERSION"
	(cd "$dir" && "$GO" build -trimpath -o "$OUT/etcd.tmp" -ldflags "-s -w" go.etcd.io/etcd/server/v3)
	mv "$OUT/etcd.tmp" "$OUT/etcd"
}

[[ -x "$OUT/etcd" ]] && "$OUT/etcd" --version >/dev/null 2>&1 || build_etcd
[[ -x "$OUT/kube-apiserver" ]] && "$OUT/kube-apiserver" --version >/dev/null 2>&1 || build_kube_apiserver

assets_ok || { log "built binaries in $OUT do not run"; exit 1; }
log "kube-apiserver: $("$OUT/kube-apiserver" --version)"
log "built in $((SECONDS - start)) s"
printf '%s\n' "$OUT"
