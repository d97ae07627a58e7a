#!/usr/bin/env bash
# Builds the plugin as one static binary: target/static/contrail-k8s-cni.
#
# Preferred: the x86_64-unknown-linux-musl target (installed with rustup when
# missing). Fallback, when that target cannot be installed (offline, no
# rustup): glibc with +crt-static. Prints the size in bytes and `file` output,
# and fails when the result is not static, or (musl only) exceeds LIMIT bytes.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=contrail-k8s-cni
MUSL=x86_64-unknown-linux-musl
LIMIT=${LIMIT:-921600}
OUT=target/static

have_musl() {
    rustup target list --installed 2>/dev/null | grep -qx "$MUSL"
}

# Size flags for the musl build (numbers in docs/performance.md):
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

if have_musl || { command -v rustup >/dev/null && rustup target add "$MUSL" && have_musl; }; then
    # One flag per line, then joined with 0x1f: paths may contain spaces.
    mapfile -t flags < <(for f in ${RUSTFLAGS:-}; do printf '%s\n' "$f"; done; size_flags)
    CARGO_ENCODED_RUSTFLAGS=$(IFS=$'\x1f'; echo "${flags[*]}") \
        cargo build --release --locked --target "$MUSL" --bin "$BIN" --target-dir target/static-build
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
cp "$built" "$OUT/$BIN"
size=$(stat -c %s "$OUT/$BIN")
desc=$(file -b "$OUT/$BIN")
echo "$OUT/$BIN: $size bytes"
echo "file: $desc"

status=0
if ! grep -Eq 'static(-pie)? linked|statically linked' <<<"$desc"; then
    echo "static.sh: not statically linked" >&2
    status=1
fi
if ((size > LIMIT)); then
    echo "static.sh: $size bytes is over the $LIMIT-byte budget" >&2
    # Static glibc is always larger (about 1.3 MB); the budget is for musl.
    ((fallback)) || status=1
fi
exit $status
