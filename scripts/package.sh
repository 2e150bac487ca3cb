#!/usr/bin/env bash
# Builds the Debian packages with cargo-deb (metadata: `[package.metadata.deb]` in Cargo.toml).
#
#   scripts/package.sh [libtorch|flex|all]      (default: all; `make package` runs it)
#
# libtorch  `hearth`: the default build (studio + LibTorch) from `target/debug/hearth`, the same
#           binary the test suite builds, stripped of debug info. LibTorch's CPU libraries are
#           copied from where the binary finds them (the torch wheel in ~/.cache/hearth) into
#           /usr/lib/hearth, and the binary's rpath becomes `$ORIGIN/../lib/hearth`, so the
#           package needs no Python. The wheel's CUDA libraries (about 3 GB) are left out: the
#           link to libtorch_cuda is replaced by a small stub library whose few functions abort
#           with a message. The package trains on the CPU (`--backend libtorch`).
# flex      `hearth-flex`: the studio on the pure-Rust Flex backend, built with
#           `--no-default-features --features hearth/studio` (this compiles Burn a second time,
#           with other features).
#
# Files are staged in $CARGO_TARGET_DIR/release/hearth-deb/<variant>/ (cargo-deb reads asset
# paths `target/release/...` as that target dir) and the packages are written to
# $CARGO_TARGET_DIR/debian/. Compression (the LibTorch package holds ~470 MB): DEB_COMPRESSION=fast
# (default: xz -1), gzip (the system's gzip -1: quickest, larger; the test suite uses it) or
# small (xz -6: slowest, smallest).
# Installs what it needs when missing: patchelf, dpkg-dev (dpkg-shlibdeps), cargo-deb.
# shellcheck disable=SC2016 # rpaths are the literal `$ORIGIN...`, for the dynamic linker
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."
what="${1:-all}"
case "$what" in libtorch | flex | all) ;; *) echo "usage: $0 [libtorch|flex|all]" >&2; exit 2 ;; esac

die() { echo "package: $*" >&2; exit 1; }

# --- tools -----------------------------------------------------------------------------------
CARGO_DEB_VERSION=3.8.0
apt_missing=()
command -v patchelf >/dev/null || apt_missing+=(patchelf)
command -v dpkg-shlibdeps >/dev/null || apt_missing+=(dpkg-dev)
command -v readelf >/dev/null || apt_missing+=(binutils)
command -v cc >/dev/null || apt_missing+=(gcc)
if [ ${#apt_missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "package: installing ${apt_missing[*]}" >&2
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi
if ! command -v cargo-deb >/dev/null; then
  echo "package: installing cargo-deb $CARGO_DEB_VERSION" >&2
  # Its own temporary build folder, not the project's target dir.
  env -u CARGO_TARGET_DIR cargo install cargo-deb --locked --version "$CARGO_DEB_VERSION"
fi

target="${CARGO_TARGET_DIR:-$(cargo metadata --no-deps --format-version 1 |
  grep -o '"target_directory":"[^"]*"' | cut -d'"' -f4)}"
stage_root="$target/release/hearth-deb"
out="$target/debian"
mkdir -p "$stage_root" "$out"
case "${DEB_COMPRESSION:-fast}" in
  fast) compress=(--fast -Z xz) ;;
  gzip) compress=(--fast -Z gz --compress-system) ;;
  small) compress=(-Z xz) ;;
  *) die "DEB_COMPRESSION must be fast, gzip or small" ;;
esac

needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
is_system() { case "$1" in /lib/* | /lib64/* | /usr/lib/* | /usr/lib64/*) return 0 ;; esac; return 1; }

# Fails unless every library of the staged binary resolves inside the stage or the system, with
# no symbol left undefined (ldd -r), and without the caller's library path.
check_resolves() {
  local bin="$1" stage="$2" report
  report=$(env -i PATH=/usr/bin:/bin ldd -r "$bin" 2>&1) || die "ldd -r $bin failed: $report"
  if grep -E 'not found|undefined symbol' <<<"$report"; then die "$bin: unresolved (above)"; fi
  while read -r path; do
    case "$path" in "$stage"/*) continue ;; esac
    is_system "$path" || die "$bin resolves $path outside the package and the system"
  done < <(grep -o '=> /[^ ]*' <<<"$report" | cut -c4-)
}

# Builds the package of the variant whose files are staged; prints its path and sizes.
build_deb() {
  local variant="$1" deb
  local args=(--no-build --no-strip "${compress[@]}" -o "$out/")
  [ "$variant" = libtorch ] || args+=(--variant "$variant")
  deb=$(cargo deb "${args[@]}" | tail -n 1)
  [ -f "$deb" ] || die "cargo deb did not write a package ($deb)"
  echo "package: $deb $(du -h "$deb" | cut -f1) ($(stat -c %s "$deb") bytes; installed $(($(dpkg-deb -f "$deb" Installed-Size) / 1024)) MiB; Depends: $(dpkg-deb -f "$deb" Depends))"
}

stage_flex() {
  local dir="$stage_root/flex" src="$target/debug/hearth"
  # The whole workspace without default features: no member asks for LibTorch. This replaces
  # target/debug/hearth until the next default build (the libtorch stage runs one).
  cargo build --workspace --no-default-features --features hearth/studio --bins
  if needed "$src" | grep '^libtorch' >/dev/null; then die "$src links LibTorch; expected the Flex build"; fi
  rm -rf "$dir"
  mkdir -p "$dir/usr/bin"
  strip --strip-debug -o "$dir/usr/bin/hearth" "$src"
  check_resolves "$dir/usr/bin/hearth" "$dir"
}

stage_libtorch() {
  local dir="$stage_root/libtorch" src="$target/debug/hearth"
  local bin="$dir/usr/bin/hearth" lib="$dir/usr/lib/hearth" doc="$dir/doc"
  # The test suite's build: nothing to compile after `cargo test --workspace --all-targets`, and
  # it puts the default binary back in target/debug/hearth if another build replaced it.
  cargo build --workspace --all-targets
  needed "$src" | grep -x 'libtorch_cpu.so' >/dev/null || die "$src does not link LibTorch"
  grep -qa 'winit' "$src" || die "$src has no studio; expected the default build"
  rm -rf "$dir"
  # DEBIAN/ marks the stage as a package tree, so that dpkg-shlibdeps (cargo-deb's `$auto`
  # depends) follows `$ORIGIN` into usr/lib/hearth.
  mkdir -p "$dir/DEBIAN" "$dir/usr/bin" "$lib" "$doc"
  strip --strip-debug -o "$bin" "$src"

  # Where the development binary finds each library (through its rpath to the torch wheel).
  declare -A where=()
  local name arrow path rest
  while read -r name arrow path rest; do
    if [ "$arrow" = "=>" ] && [[ "$path" == /* ]]; then where[$name]=$(realpath "$path"); fi
  done < <(ldd "$src")

  # CUDA: drop libtorch_cuda (and what only it pulls in); the functions the binary imports from
  # it are defined by a stub that aborts, so that the dynamic linker (which binds eagerly) starts
  # the binary. They are reached only on a CUDA device, which this package does not offer.
  local cuda_libs=() n
  for n in $(needed "$src"); do
    case "$n" in libtorch_cuda*.so | libc10_cuda.so) cuda_libs+=("$n") ;; esac
  done
  if [ ${#cuda_libs[@]} -gt 0 ]; then
    local defined imports stub="$dir/nocuda.c"
    defined=$(for n in "${cuda_libs[@]}"; do
      [ -n "${where[$n]:-}" ] || die "$n: not found by ldd $src"
      nm -D --defined-only "${where[$n]}"
    done | awk '{print $3, $2}' | sort -u)
    imports=$(nm -D --undefined-only "$src" | awk '{print $2}' | sort -u |
      join - <(echo "$defined") || true)
    if [ -n "$imports" ] && grep -qv ' [TtWi]$' <<<"$imports"; then
      die "$src imports data from ${cuda_libs[*]}, which a stub cannot provide: $(grep -v ' [TtWi]$' <<<"$imports")"
    fi
    {
      cat <<'C'
#include <stdio.h>
#include <stdlib.h>
static void no_cuda(const char *name) {
  fprintf(stderr, "hearth: %s needs CUDA; this package carries LibTorch for the CPU only\n", name);
  abort();
}
C
      while read -r sym _; do
        if [ -n "$sym" ]; then echo "void $sym(void) { no_cuda(\"$sym\"); }"; fi
      done <<<"$imports"
    } >"$stub"
    cc -shared -fPIC -O2 -Wl,-soname,libhearth_nocuda.so -o "$lib/libhearth_nocuda.so" "$stub"
    rm "$stub"
    local patch=(--replace-needed "${cuda_libs[0]}" libhearth_nocuda.so)
    for n in "${cuda_libs[@]:1}"; do patch+=(--remove-needed "$n"); done
    patchelf "${patch[@]}" "$bin"
  fi
  patchelf --set-rpath '$ORIGIN/../lib/hearth' "$bin"

  # Bundle every library the patched binary needs that is not a system library, transitively;
  # each gets the rpath `$ORIGIN` so that they find one another.
  local queue=("$bin") f bundled=()
  while [ ${#queue[@]} -gt 0 ]; do
    f="${queue[0]}"
    queue=("${queue[@]:1}")
    for n in $(needed "$f"); do
      [ -e "$lib/$n" ] && continue
      path="${where[$n]:-}"
      if [ -z "$path" ]; then
        case "$n" in ld-linux*) continue ;; esac
        die "$n (needed by $f) was not found by ldd $src"
      fi
      is_system "$path" && continue
      cp -L "$path" "$lib/$n"
      chmod 644 "$lib/$n"
      patchelf --set-rpath '$ORIGIN' "$lib/$n"
      queue+=("$lib/$n")
      bundled+=("$n $path")
    done
  done
  check_resolves "$bin" "$dir"

  # Licences of the bundled libraries: the wheel (dist-info) that installed each one.
  {
    echo "Libraries in /usr/lib/hearth and where they come from."
    if [ -f "$lib/libhearth_nocuda.so" ]; then
      echo "libhearth_nocuda.so: stands in for LibTorch's CUDA library (its functions abort)."
    fi
    local entry site rel record dist
    for entry in "${bundled[@]}"; do
      n="${entry%% *}"
      path="${entry#* }"
      site="${path%/site-packages/*}/site-packages"
      dist=""
      if [ "$site" != "$path/site-packages" ] && [ -d "$site" ]; then
        rel="${path#"$site"/}"
        record=$(grep -l -F "$rel," "$site"/*.dist-info/RECORD 2>/dev/null | head -n 1 || true)
        if [ -n "$record" ]; then dist=$(basename "$(dirname "$record")" .dist-info); fi
      fi
      echo "$n: ${dist:-$path}"
      if [ -n "$dist" ]; then
        for f in "$site/$dist.dist-info"/licenses/* "$site/$dist.dist-info"/LICENSE* \
          "$site/$dist.dist-info"/License*; do
          if [ -f "$f" ]; then cp "$f" "$doc/$dist-$(basename "$f")"; fi
        done
      fi
    done
  } >"$doc/bundled-libraries.txt"
}

if [ "$what" = flex ] || [ "$what" = all ]; then
  stage_flex
  build_deb flex
fi
if [ "$what" = libtorch ] || [ "$what" = all ]; then
  stage_libtorch
  build_deb libtorch
fi
