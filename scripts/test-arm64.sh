#!/usr/bin/env bash
# Reruns the test suites that execute the plugin binary against the arm64
# static build (scripts/static.sh aarch64), run by qemu-user through
# binfmt_misc: the tests exec the file like any other program, so the
# plugin's own syscalls, ioctls and netlink messages go through qemu's
# translation, while the tests themselves stay native. Then the unit tests
# and the netlink/netns kernel tests are built for aarch64 and run whole
# under qemu.
#
# Installs qemu-user-static when missing, mounts binfmt_misc when absent and
# registers Debian's aarch64 entry when it is not registered. When that is
# impossible (no root, a container without binfmt_misc) it prints a
# SKIPPED line, and fails instead under CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

SUITES=(plugin_veth plugin_faults plugin_modes plugin_cni11 bad_input cni_cli libcni)
# Tests that cannot work under qemu-user, by exact name, with the reason.
# None today: the plugin's parent (Multus detection reads its comm) is a
# native process, and the kill tests signal the qemu process itself, which
# is the plugin.
declare -A EXCLUDE=()

BINFMT=/proc/sys/fs/binfmt_misc
ENTRY=qemu-aarch64
CONF=/usr/lib/binfmt.d/$ENTRY.conf

skip() {
    if [[ ${CI:-} == true ]]; then
        echo "test-arm64.sh: $1; CI=true: failing instead of skipping" >&2
        exit 1
    fi
    echo "SKIPPED: arm64 plugin under qemu-user: $1"
    exit 0
}

SUDO=""; [[ $(id -u) -eq 0 ]] || SUDO="sudo"
if ! command -v qemu-aarch64-static >/dev/null || [[ ! -r $CONF ]]; then
    { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq qemu-user-static; } \
        || skip "qemu-user-static cannot be installed"
fi
if [[ ! -e $BINFMT/register ]]; then
    $SUDO mount -t binfmt_misc binfmt_misc "$BINFMT" 2>/dev/null \
        || skip "binfmt_misc is not mounted and cannot be mounted on $BINFMT"
fi
if [[ ! -e $BINFMT/$ENTRY ]]; then
    # The entry's F flag makes the kernel open the interpreter now, so it
    # also works in mount namespaces that do not see /usr/libexec.
    $SUDO sh -c "cat '$CONF' > '$BINFMT/register'" 2>/dev/null \
        || skip "cannot register $CONF in $BINFMT"
fi
[[ $(head -1 "$BINFMT/status") == enabled && $(head -1 "$BINFMT/$ENTRY") == enabled ]] \
    || skip "binfmt_misc or its $ENTRY entry is disabled"

scripts/static.sh aarch64
# libcni finds the plugin by its type name in CNI_PATH: keep the name.
dir=target/qemu
mkdir -p "$dir"
cp target/static/contrail-k8s-cni-aarch64 "$dir/contrail-k8s-cni"
plugin=$PWD/$dir/contrail-k8s-cni
if ! version=$("$plugin" --version 2>&1); then
    echo "test-arm64.sh: $ENTRY is registered but $plugin does not run: $version" >&2
    exit 1
fi

args=()
for s in "${SUITES[@]}"; do args+=(--test "$s"); done
filters=()
for name in "${!EXCLUDE[@]}"; do
    echo "excluded under qemu: $name (${EXCLUDE[$name]})"
    filters+=(--skip "$name" --exact)
done

echo "running ${SUITES[*]} against $plugin ($(file -b "$plugin" | cut -d, -f1-2)), $version"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
status=0
CONTRAIL_CNI_PLUGIN=$plugin cargo test --no-fail-fast "${args[@]}" -- "${filters[@]}" 2>&1 | tee "$log" || status=$?

# The library's unit tests and the netlink/netns layer on the real kernel,
# built for aarch64 and run in-process under qemu too.
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_MUSL_LINKER=aarch64-linux-gnu-gcc \
    cargo test --no-fail-fast --target aarch64-unknown-linux-musl --target-dir target/qemu-build \
    --lib --test netlink_kernel 2>&1 | tee -a "$log" || status=$?

# One line per suite: passed / failed / skipped-by-root counts from libtest.
echo "arm64 under qemu-user: $plugin"
awk '
    /Running unittests/ { suite = "unit, in qemu"; next }
    /Running tests\/.*aarch64/ { suite = "netlink_kernel, in qemu"; next }
    /Running tests\// { sub(/.*Running tests\//, ""); sub(/\.rs.*/, ""); suite = $0 }
    /^test result:/ {
        for (i = 1; i <= NF; i++) {
            if ($(i + 1) ~ /^passed/) p = $i
            if ($(i + 1) ~ /^failed/) f = $i
        }
        printf "  %-24s %3d passed, %d failed\n", suite, p, f
        tp += p; tf += f
    }
    END { printf "  %-24s %3d passed, %d failed\n", "total", tp, tf }
' "$log"
if [[ $(id -u) -ne 0 ]]; then
    echo "  (not root: the real-kernel tests among these returned early, SKIPPED)"
fi
exit $status
