#!/usr/bin/env bash
# Installs what tests, the demo and the benchmarks need (Debian 12), once.
set -euo pipefail
need=()
for pkg in iproute2 util-linux iptables iputils-ping python3 gcc libc6-dev containernetworking-plugins golang-go golang-github-appc-cni-dev \
           gcc-aarch64-linux-gnu qemu-user-static \
           podman containerd runc busybox-static python3-grpcio python3-grpc-tools; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || need+=("$pkg")
done
if ((${#need[@]})); then
    SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}"
fi
if ! command -v cargo >/dev/null; then
    echo "cargo is missing: install Rust with rustup (https://rustup.rs) first" >&2
    exit 1
fi
rustup target list --installed 2>/dev/null | grep -q x86_64-unknown-linux-musl \
    || rustup target add x86_64-unknown-linux-musl || echo "note: musl target unavailable; make static falls back to glibc +crt-static" >&2
rustup target list --installed 2>/dev/null | grep -q aarch64-unknown-linux-musl \
    || rustup target add aarch64-unknown-linux-musl || echo "note: aarch64 musl target unavailable; make static-arm64 will try again" >&2
