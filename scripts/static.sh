#!/usr/bin/env bash
# Builds the plugin as one static binary.
#
#   scripts/static.sh            target/static/contrail-k8s-cni          (x86_64, at most 921,600 bytes)
#   scripts/static.sh aarch64    target/static/contrail-k8s-cni-aarch64  (arm64, at most 1 MiB)
#
# x86_64: the x86_64-unknown-linux-musl target (installed with rustup when
# missing). Fallback, when that target cannot be installed (offline, no
# rustup): glibc with +crt-static, which only warns about the size.
# aarch64: the aarch64-unknown-linux-musl target, linked by Debian's
# gcc-aarch64-linux-gnu (both installed when missing); no fallback.
# Prints the size in bytes and `file` output, and fails when the result is
# not static, or (musl only) exceeds LIMIT bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=contrail-k8s-cni
ARCH=${1:-x86_64}
OUT=target/static

case "$ARCH" in
    x86_64) MUSL=x86_64-unknown-linux-musl; NAME=$BIN; LIMIT=${LIMIT:-921600} ;;
    aarch64 | arm64) ARCH=aarch64; MUSL=aarch64-unknown-linux-musl; NAME=$BIN-aarch64; LIMIT=${LIMIT:-1048576} ;;
    *) echo "static.sh: unknown architecture $ARCH (x86_64 or aarch64)" >&2; exit 2 ;;
esac

have_musl() {
    rustup target list --installed 2>/dev/null | grep -qx "$MUSL"
}

# Size flags for the musl builds (numbers in docs/performance.md):
# - non-PIE: a static-pie carries its own relocation table (about 40 KB
#   here). The price is no ASLR for this short-lived process, which reads
#   only local input (env, stdin, the node's agent);
# - no DWARF unwind tables (about 120 KB): panic=abort and a panic hook
#   that prints no backtrace leave nothing to read them
#   (scripts/static-no-eh-frame.ld, and no .eh_frame_hdr);
# - registry paths cut from panic locations (also keeps the build
#   machine's paths out of the binary), no build-id note;
# - the toolchain's own lld when rustup ships it, for identical code
#   folding (about 10 KB) and no page padding between segments.
size_flags() {
    local host gcc_ld d
    printf '%s\n' -C relocation-model=static -C link-arg=-Wl,--build-id=none \
        -C link-arg=-Wl,--no-eh-frame-hdr -C "link-arg=-Wl,-T,$PWD/scripts/static-no-eh-frame.ld"
    for d in "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/; do
        if [[ -d $d ]]; then printf '%s\n' "--remap-path-prefix=${d%/}/="; fi
    done
    host=$(rustc -vV | sed -n 's/^host: //p')
    gcc_ld="$(rustc --print sysroot)/lib/rustlib/$host/bin/gcc-ld"
    if [[ -x $gcc_ld/ld.lld ]]; then
        printf '%s\n' -C "link-arg=-B$gcc_ld" -C link-arg=-fuse-ld=lld -C link-arg=-Wl,--icf=all
    fi
}

# cargo build of the musl target with RUSTFLAGS and the size flags, one
# flag per line joined with 0x1f (paths may contain spaces).
build_musl() {
    local flags
    mapfile -t flags < <(for f in ${RUSTFLAGS:-}; do printf '%s\n' "$f"; done; size_flags)
    CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f'; echo "${flags[*]}") \
        cargo build --release --locked --target "$MUSL" --bin "$BIN" --target-dir target/static-build
}

if [[ $ARCH == aarch64 ]]; then
    if ! command -v aarch64-linux-gnu-gcc >/dev/null; then
        SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq gcc-aarch64-linux-gnu
    fi
    have_musl || rustup target add "$MUSL"
    # Rust ships musl's libc.a and start files for the target; the cross
    # gcc is only the linker driver.
    CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc build_musl
    built="target/static-build/$MUSL/release/$BIN"
    fallback=0
elif have_musl || { command -v rustup >/dev/null && rustup target add "$MUSL" && have_musl; }; then
    build_musl
    built="target/static-build/$MUSL/release/$BIN"
    fallback=0
else
    echo "static.sh: $MUSL unavailable; falling back to glibc +crt-static" >&2
    host=$(rustc -vV | sed -n 's/^host: //p')
    # A separate target dir keeps the static objects apart from normal builds.
    RUSTFLAGS="${RUSTFLAGS:-} -C target-feature=+crt-static" \
        cargo build --release --locked --target "$host" --bin "$BIN" --target-dir target/crt-static
    built="target/crt-static/$host/release/$BIN"
    fallback=1
fi

mkdir -p "$OUT"
# Copy then rename: a runner of the old file never sees a half-written one.
cp "$built" "$OUT/.$NAME.tmp"
mv -f "$OUT/.$NAME.tmp" "$OUT/$NAME"
size=$(stat -c %s "$OUT/$NAME")
desc=$(file -b "$OUT/$NAME")
echo "$OUT/$NAME: $size bytes"
echo "file: $desc"

status=0
if ! grep -Eq 'static(-pie)? linked|statically linked' <<<"$desc"; then
    echo "static.sh: not statically linked" >&2
    status=1
fi
if [[ $ARCH == aarch64 ]] && ! grep -q 'ARM aarch64' <<<"$desc"; then
    echo "static.sh: not an aarch64 binary" >&2
    status=1
fi
if ((size > LIMIT)); then
    echo "static.sh: $size bytes is over the $LIMIT-byte budget" >&2
    # Static glibc is always larger (about 1.3 MB); the budget is for musl.
    ((fallback)) || status=1
fi
exit $status
