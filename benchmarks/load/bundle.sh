#!/usr/bin/env bash
# bundle.sh: assembles everything scaling.sh needs to run on a bare Linux x86-64 machine (no compiler, no
# nginx, no load tool, no network) into one folder, by default build/bundle/ (git-ignored, as all of build/):
#
#   scaling.sh              the benchmark (a copy of benchmarks/load/scaling.sh)
#   bin/hello               examples/hello, linked statically (the CMake target hello_static)
#   bin/http_load           the load generator (tools/http_load.cpp), linked statically
#   bin/nginx, bin/taskset  this machine's nginx and taskset, run through the bundled dynamic loader:
#   lib/                      lib/ld-linux-x86-64.so.2 --library-path lib bin/nginx ...
#                           with the shared libraries ldd lists for them (taskset is used only where the
#                           target has none of its own)
#   nginx.conf.in           peers/nginx.conf.in with N workers and a reuseport listener (see scaling.sh)
#   MANIFEST                what was bundled, from which commit, and the sizes
#
# It builds the two static binaries first (in --build-dir, configured with the release preset when it does
# not exist yet), checks that they are static and that the bundled nginx starts from the bundle, and fails
# when the folder would not fit the 64 MiB a device run can carry. Then run, on any machine:
#   build/bundle/scaling.sh --help
#
# Usage: benchmarks/load/bundle.sh [options]
#   --build-dir DIR   CMake build folder to build and take the binaries from (default build/release)
#   --out DIR         the bundle folder (default build/bundle); an existing bundle there is replaced
#   --no-build        take the binaries as they are in --build-dir, without building
#   -h, --help        this help
set -euo pipefail

load_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source-path=SCRIPTDIR source=lib/cli.sh
source "$load_dir/lib/cli.sh"
root_dir=$(cd "$load_dir/../.." && pwd)
build_dir=$root_dir/build/release
out_dir=$root_dir/build/bundle
build=1
# A device run carries at most 64 MiB of extra files; leave room for anything else the lead carries.
max_bundle_mib=48

die() { echo "bundle.sh: $1" >&2; exit 1; }

while (( $# > 0 )); do
  case $1 in
    --build-dir) build_dir=${2:-}; shift ;;
    --out) out_dir=${2:-}; shift ;;
    --no-build) build=0 ;;
    -h|--help) usage; exit 0 ;;
    *) usage_error "unknown option '$1'" ;;
  esac
  shift
done
[[ -n $build_dir && -n $out_dir ]] || usage_error "--build-dir and --out need a folder"
for tool in ldd sed du readlink; do
  command -v "$tool" >/dev/null || die "$tool is required"
done

if (( build )); then
  if [[ ! -f $build_dir/CMakeCache.txt ]]; then
    [[ $build_dir == "$root_dir/build/release" ]] || die "$build_dir is not a configured CMake build folder"
    (cd "$root_dir" && cmake --preset release >/dev/null)
  fi
  cmake --build "$build_dir" -j2 --target hello_static http_load
fi

# is_static FILE: true when FILE is an executable that needs no dynamic loader.
is_static() {
  local answer
  answer=$(LC_ALL=C ldd "$1" 2>&1) || true  # ldd fails on a static executable
  [[ $answer == *'not a dynamic executable'* || $answer == *'statically linked'* ]]
}
for binary in hello_static http_load; do
  [[ -x $build_dir/bin/$binary ]] || die "$build_dir/bin/$binary is missing (CMake builds it only where static linking works)"
  is_static "$build_dir/bin/$binary" || die "$build_dir/bin/$binary is not statically linked"
done
nginx=$(command -v nginx 2>/dev/null || echo /usr/sbin/nginx)
[[ -x $nginx ]] || die "nginx is not installed (scripts/install-deps.sh --bench)"
taskset=$(command -v taskset) || die "taskset is required (util-linux)"

# Replace only a folder that is empty or an earlier bundle: never delete something else by mistake.
if [[ -e $out_dir ]]; then
  [[ -f $out_dir/MANIFEST || -z $(ls -A "$out_dir") ]] || die "$out_dir exists and is not a bundle; not replacing it"
  rm -rf "$out_dir"
fi
mkdir -p "$out_dir/bin" "$out_dir/lib"
# Marks the folder as a bundle from the start, so that a run that fails half-way can be replaced by the next.
echo "incomplete: bundle.sh did not finish" >"$out_dir/MANIFEST"
cp "$build_dir/bin/hello_static" "$out_dir/bin/hello"
cp "$build_dir/bin/http_load" "$out_dir/bin/http_load"
cp "$load_dir/scaling.sh" "$out_dir/scaling.sh"
chmod +x "$out_dir/scaling.sh"

# bundle_dynamic FILE: copies FILE to bin/ and every shared library ldd resolves for it to lib/, under the
# name it is asked for (the soname), with the dynamic loader as lib/ld-linux-x86-64.so.2.
bundle_dynamic() {
  cp "$1" "$out_dir/bin/"
  local line library
  while read -r line; do
    case $line in
      *' => '/*) library=${line#* => }; library=${library%% (*} ;;  # libc.so.6 => /lib/.../libc.so.6 (0x...)
      /*) library=${line%% (*} ;;                                   # /lib64/ld-linux-x86-64.so.2 (0x...)
      *'=> not found'*) die "$1 needs a library that is not installed: $line" ;;
      *) continue ;;                                                # linux-vdso.so.1: in the kernel
    esac
    cp -L "$library" "$out_dir/lib/$(basename "$library")"
  done < <(LC_ALL=C ldd "$1")
}
bundle_dynamic "$nginx"
bundle_dynamic "$taskset"
loader=$out_dir/lib/ld-linux-x86-64.so.2
[[ -x $loader ]] || die "ldd named no dynamic loader ld-linux-x86-64.so.2 for nginx (not x86-64?)"

# nginx.conf.in: the 2-core harness's nginx configuration, so that both benchmarks measure the same nginx
# set-up, with two changes for several workers: @WORKERS@ worker processes, and `reuseport`, which gives
# each worker its own listening socket as hello's SO_REUSEPORT shards do (without it the workers share one
# socket and the kernel hands out connections unevenly). @USER@ becomes a `user` line when scaling.sh runs
# as root, since nginx would otherwise switch its workers to a user the bare machine may not have.
sed -e 's/^worker_processes 1;$/worker_processes @WORKERS@;\n@USER@/' \
    -e 's/ backlog=4096;$/ backlog=4096 reuseport;/' \
    -e '1i # Generated by benchmarks/load/bundle.sh from peers/nginx.conf.in: @WORKERS@ workers, reuseport.' \
    "$load_dir/peers/nginx.conf.in" >"$out_dir/nginx.conf.in"
for placeholder in '^worker_processes @WORKERS@;$' '^@USER@$' ' backlog=4096 reuseport;$'; do
  grep -q -e "$placeholder" "$out_dir/nginx.conf.in" ||
    die "peers/nginx.conf.in changed: cannot make '$placeholder' in the bundle's nginx.conf.in"
done

# The bundled nginx must start from the bundle alone; -V prints its version and build options.
nginx_version=$("$loader" --library-path "$out_dir/lib" "$out_dir/bin/nginx" -V 2>&1) ||
  die "the bundled nginx does not run: $nginx_version"
nginx_version=${nginx_version%%$'\n'*}
"$loader" --library-path "$out_dir/lib" "$out_dir/bin/taskset" -c 0 true ||
  die "the bundled taskset does not run"

size_kib=$(du -sk "$out_dir" | cut -f1)
{
  echo "switchboard scaling bundle, made $(date -u +%Y-%m-%dT%H:%M:%SZ) on $(uname -srm)"
  echo "commit: $(git -C "$root_dir" rev-parse HEAD 2>/dev/null || echo unknown)$(
    [[ -z $(git -C "$root_dir" status --porcelain 2>/dev/null) ]] || echo ' (with uncommitted changes)')"
  echo "$nginx_version ($nginx)"
  echo "size: $(( (size_kib + 1023) / 1024 )) MiB"
  (cd "$out_dir" && du -ak . | sort -k2 | sed 's/^/  /')
} >"$out_dir/MANIFEST"
(( size_kib <= max_bundle_mib * 1024 )) ||
  die "the bundle takes $(( size_kib / 1024 )) MiB, more than the $max_bundle_mib MiB allowed"

echo "bundle.sh: $out_dir: $(( (size_kib + 1023) / 1024 )) MiB ($size_kib KiB)"
echo "  run it with: ${out_dir#"$root_dir"/}/scaling.sh   (--help for the options)"
