# contrail-k8s-cni: see README.md. Every target installs what it needs.
SHELL := /bin/bash
MUSL := x86_64-unknown-linux-musl
PREFIX ?= /opt/cni
DESTDIR ?=
INSTALL_ARGS ?=

.PHONY: build static static-arm64 test lint demo bench bench-netlink install deps clean

build:
	cargo build --release

static:
	scripts/static.sh

# target/static/contrail-k8s-cni-aarch64 (musl, cross-linked; see docs/kernels.md)
static-arm64:
	scripts/static.sh aarch64

deps:
	scripts/deps.sh

test: deps lint
	cargo test --no-fail-fast
	scripts/test-arm64.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

demo: deps
	scripts/demo.sh

bench: deps
	scripts/bench.sh

bench-netlink:
	scripts/bench-netlink.sh

# The binary installs itself: `contrail-k8s-cni install --bin-dir
# $(DESTDIR)$(PREFIX)/bin --conf-dir $(DESTDIR)/etc/cni/net.d $(INSTALL_ARGS)`
# (e.g. INSTALL_ARGS="--force --conf my.json"; docs/operations.md).
install: build
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" scripts/install.sh $(INSTALL_ARGS)

clean:
	cargo clean
