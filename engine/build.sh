#!/usr/bin/env bash
# Builds the Pulumi engine from its Go modules into one directory (default: the project venv's bin/):
#   pulumi                           the CLI and deployment engine, v3.259.0 (engine/go.mod)
#   pulumi-language-python           the Python language host (engine/langhost/go.mod, see there why v3.79.0)
#   pulumi-language-python-exec      the program launcher the host runs; from the sdk/v3 v3.259.0 module
#   pulumi-resource-pulumi-python    the dynamic-provider launcher; from the sdk/v3 v3.259.0 module
# Skips everything that is already present at the pinned version; Go's module and build caches are reused.
# Usage: engine/build.sh [BIN_DIR]
set -euo pipefail

PULUMI_VERSION=v3.259.0
LANGHOST_VERSION=v3.79.0
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${1:-"$here/../.venv/bin"}
mkdir -p "$bin"
bin=$(cd "$bin" && pwd)

say() { printf 'engine: %s\n' "$*"; }
die() { printf 'engine: error: %s\n' "$*" >&2; exit 1; }

version_of() { # prints the version a binary reports, or nothing
  [ -x "$1" ] || return 0
  case "$(basename "$1")" in
    pulumi) "$1" version 2>/dev/null || true ;;
    *) cat "$1.version" 2>/dev/null || true ;;
  esac
}

need_pulumi=1 need_langhost=1
[ "$(version_of "$bin/pulumi")" = "$PULUMI_VERSION" ] && need_pulumi=0
[ "$(version_of "$bin/pulumi-language-python")" = "$LANGHOST_VERSION" ] && need_langhost=0
runtime_files_ok=1
for f in pulumi-language-python-exec pulumi-resource-pulumi-python; do
  [ -x "$bin/$f" ] && [ "$(cat "$bin/$f.version" 2>/dev/null)" = "$PULUMI_VERSION" ] || runtime_files_ok=0
done
if [ $need_pulumi = 0 ] && [ $need_langhost = 0 ] && [ $runtime_files_ok = 1 ]; then
  say "pulumi $PULUMI_VERSION and the Python language host are present in $bin"
  exit 0
fi

command -v go >/dev/null 2>&1 || die "Go is required to build the Pulumi engine (go 1.25 or newer on PATH); install Go and re-run"
gover=$(go env GOVERSION | sed 's/^go//')
case "$gover" in
  1.2[5-9]*|1.[3-9]*) ;;
  *) die "Go $gover is too old to build Pulumi $PULUMI_VERSION: Go 1.25 or newer is needed" ;;
esac

export CGO_ENABLED=0 GOFLAGS="-mod=readonly -buildvcs=false"
ldflags() { echo "-w -s -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$1"; }
build() { # module-dir version output package
  local dir=$1 version=$2 out=$3 pkg=$4 start
  start=$(date +%s)
  (cd "$dir" && go build -trimpath -tags osusergo,grpcnotrace -ldflags "$(ldflags "$version")" -o "$out.tmp" "$pkg") \
    || die "building $pkg failed (see the Go output above); the Go module proxy must serve its modules"
  mv -f "$out.tmp" "$out"
  say "built $(basename "$out") $version in $(( $(date +%s) - start ))s"
}

if [ $need_pulumi = 1 ]; then
  say "building pulumi $PULUMI_VERSION from Go modules into $bin"
  say "a cold build downloads ~1.8 GB of modules and takes 4-10 minutes on 2 cores; later runs reuse Go's caches"
  build "$here" "$PULUMI_VERSION" "$bin/pulumi" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
fi
if [ $need_langhost = 1 ]; then
  say "building pulumi-language-python $LANGHOST_VERSION"
  build "$here/langhost" "$LANGHOST_VERSION" "$bin/pulumi-language-python" \
    github.com/pulumi/pulumi/sdk/v3/python/cmd/pulumi-language-python
  echo "$LANGHOST_VERSION" > "$bin/pulumi-language-python.version"
fi

# The launchers ship inside the sdk/v3 module zip; zips drop the executable bit.
sdk_dir=$(cd "$here" && go mod download -json github.com/pulumi/pulumi/sdk/v3@"$PULUMI_VERSION" \
  | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$sdk_dir/python" ] || die "cannot find the sdk/v3 $PULUMI_VERSION module in Go's module cache"
for f in cmd/pulumi-language-python-exec dist/pulumi-resource-pulumi-python; do
  name=$(basename "$f")
  install -m 0755 "$sdk_dir/python/$f" "$bin/$name"
  echo "$PULUMI_VERSION" > "$bin/$name.version"
done
say "ready: $("$bin/pulumi" version) in $bin"
