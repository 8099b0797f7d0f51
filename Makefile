# support-sidecar. `make run` builds and starts the sidecar on loopback; `make test` runs
# every test (unit, integration as root with unshare, end-to-end with podman).
MUSL      := x86_64-unknown-linux-musl
STATIC    := target/$(MUSL)/release/sidecar
CREDS     := .sidecar-credentials
LISTEN    ?= 127.0.0.1:8889
IMAGE     ?= localhost/support-sidecar:latest
TOOLKIT_IMAGE ?= localhost/support-sidecar:toolkit
export CONTAINERS_CONF ?= $(CURDIR)/tests/e2e/containers.conf

.PHONY: build static image run test lint bench deps test-deps

build:
	cargo build --release

deps:
	./scripts/deps.sh

# The tests also need an rpm with ndb (Debian's has none): built once into target/ndb-rpm.
test-deps:
	./scripts/deps.sh test
	./scripts/build-ndb-rpm

# A static, stripped musl binary. musl-gcc (musl-tools) compiles the C libraries of the
# native package path: SQLite, liblzma, zstd.
static: deps
	cargo build --release --target $(MUSL)
	@file $(STATIC) | grep -Eq 'static(-pie)? linked' || { echo "$(STATIC) is not statically linked"; exit 1; }
	@echo "$(STATIC): $$(stat -c %s $(STATIC)) bytes, static"

# Two tags: $(IMAGE) (the binary alone) and $(TOOLKIT_IMAGE) (plus /toolkit: Debian's
# static busybox with a link per applet, for `exec --tools /toolkit`). Both FROM scratch.
image: static
	rm -rf target/toolkit && mkdir -p target/toolkit/bin
	cp /bin/busybox target/toolkit/bin/busybox
	@file target/toolkit/bin/busybox | grep -q 'statically linked' || { echo "/bin/busybox is not static: apt-get install busybox-static"; exit 1; }
	for a in $$(target/toolkit/bin/busybox --list); do [ "$$a" = busybox ] || ln -s busybox target/toolkit/bin/$$a; done
	podman build -t $(IMAGE) --target sidecar -f image/Containerfile .
	podman build -t $(TOOLKIT_IMAGE) --target toolkit -f image/Containerfile .

# Serves this machine's containers and processes on $(LISTEN). The password is generated
# on first use into $(CREDS) (git-ignored) and printed.
run: static
	@if [ ! -s $(CREDS) ]; then \
	  umask 077; echo "admin:$$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')" > $(CREDS); \
	fi
	@echo "user admin, password $$(cut -d: -f2- $(CREDS))   (in $(CREDS))"
	@echo "try: curl --digest --user admin:$$(cut -d: -f2- $(CREDS)) http://$(LISTEN)/"
	exec $(STATIC) serve --listen $(LISTEN) --credentials $(CREDS)

test: test-deps static
	cargo test -- --test-threads=2
	./tests/e2e/run.sh
	./tests/e2e/prototype.sh
	./tests/e2e/native.sh

lint:
	cargo fmt --check
	cargo clippy --all-targets -- -D warnings

bench: test-deps static
	./scripts/bench
