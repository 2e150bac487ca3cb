#!/usr/bin/env bash
# Checks the LibTorch Debian package: builds it from the test suite's binary (nothing is
# compiled), checks its contents, unpacks it with `dpkg-deb -x` into a temporary root and trains
# three steps on LibTorch with the unpacked binary in a bare environment: HOME an empty folder
# (no ~/.cache, so no Python and no torch wheel), PATH /usr/bin:/bin, no LD_LIBRARY_PATH.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS
fail() { echo "check_package: $*" >&2; exit 1; }

# gzip: the quickest compression; the package's contents are what is checked here.
summary=$(DEB_COMPRESSION="${DEB_COMPRESSION:-gzip}" bash scripts/package.sh libtorch)
echo "$summary"
deb=$(sed -n 's/^package: \(\/[^ ]*\.deb\) .*/\1/p' <<<"$summary" | tail -n 1)
[ -f "$deb" ] || fail "scripts/package.sh printed no package path"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"
home="$tmp/home"
mkdir -p "$root" "$home"

contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
expected=(
  ./usr/bin/hearth
  ./usr/share/applications/hearth.desktop
  ./usr/share/icons/hicolor/scalable/apps/hearth.svg
  ./usr/lib/hearth/libtorch_cpu.so
  ./usr/lib/hearth/libc10.so
)
for size in 32 48 64 128 256; do expected+=("./usr/share/icons/hicolor/${size}x${size}/apps/hearth.png"); done
for f in "${expected[@]}"; do
  grep -qxF "$f" <<<"$contents" || fail "$deb lacks $f"
done
if grep -E 'libtorch_cuda|libcudnn|libcublas|libnccl' <<<"$contents"; then
  fail "$deb carries CUDA libraries (above); it is meant for the CPU"
fi

dpkg-deb -x "$deb" "$root"
bin="$root/usr/bin/hearth"
if command -v desktop-file-validate >/dev/null; then
  desktop-file-validate "$root/usr/share/applications/hearth.desktop"
fi
# shellcheck disable=SC2016 # the rpath is the literal `$ORIGIN/../lib/hearth`
readelf -d "$bin" | grep -F '[$ORIGIN/../lib/hearth]' >/dev/null || fail "$bin: rpath is not \$ORIGIN/../lib/hearth"

# Every library resolves inside the unpacked root or the system, none in the torch wheel.
libs=$(env -i PATH=/usr/bin:/bin ldd -r "$bin" 2>&1)
if grep -E 'not found|undefined symbol' <<<"$libs"; then fail "$bin: unresolved libraries or symbols (above)"; fi
while read -r path; do
  case "$path" in
    "$root"/* | /lib/* | /lib64/* | /usr/lib/* | /usr/lib64/*) ;;
    *) fail "$bin loads $path, outside the package and the system" ;;
  esac
done < <(grep -o '=> /[^ ]*' <<<"$libs" | cut -c4-)

out=$(env -i HOME="$home" PATH=/usr/bin:/bin "$bin" train --backend libtorch --steps 3 \
  --layers 1 --heads 1 --width 16 --context 16 --batch 2 --out "$tmp/run" 2>&1) ||
  fail "the unpacked hearth failed to train: $out"
last=$(tail -n 1 <<<"$out")
[[ "$last" == "final step=3 "* ]] || fail "training ended with '$last', expected 'final step=3 ...': $out"

echo "check_package: $(basename "$deb") unpacked and trained on LibTorch with no Python: $last ($((SECONDS - start)) s)"
