# Chaperone — every target bootstraps its own toolchain: Node >= 22.19 (Node 24 from the npm
# registry into .tools/ when the system one is older), npm dependencies, host packages and the
# test control plane. `make test` on a fresh clone needs nothing else.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

# `make doctor` and `make help` must work on a machine that cannot run Node yet.
ifneq ($(filter-out doctor help,$(or $(MAKECMDGOALS),help)),)
NODE_BIN := $(shell hack/ensure-node.sh)
ifeq ($(NODE_BIN),)
$(error could not provide Node >= 22.19; see the message above, or run 'make doctor')
endif
export PATH := $(NODE_BIN):$(PATH)
endif
# Native addons (better-sqlite3, libpg-query) build from source against the Node we run on.
ifneq ($(findstring /.tools/,$(NODE_BIN)),)
export npm_config_nodedir := $(abspath $(NODE_BIN)/..)
endif

DEPS_STAMP := node_modules/.chaperone-deps
WORKSPACE_MANIFESTS := package.json package-lock.json $(wildcard */package.json)

.PHONY: help
help: ## list targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{ printf "  make %-16s %s\n", $$1, $$2 }'

$(DEPS_STAMP): $(WORKSPACE_MANIFESTS)
	npm ci --no-audit --no-fund
	@touch $@

.PHONY: doctor
doctor: ## what the host has and lacks (every tool of hack/host-tools.txt, versions); the fix for what is missing
	@bash hack/doctor.sh

.PHONY: deps
deps: $(DEPS_STAMP) host ## install npm dependencies and host packages

.PHONY: host
host: ## Debian packages and the unprivileged test account (idempotent)
	bash hack/setup-host.sh

.PHONY: control-plane
control-plane: ## build kube-apiserver + etcd from the Go module proxy (cached in ~/.cache/chaperone)
	bash hack/build-control-plane.sh >/dev/null

.PHONY: helm
helm: ## build helm from the Go module proxy for the chart tests (cached in ~/.cache/chaperone)
	bash hack/build-helm.sh >/dev/null

# A real single-node cluster on this machine (root): containerd + kubelet + control plane, pods on a
# bridge with no way out. Idempotent; prints the admin kubeconfig path. IMAGES="a.tar b.tar" imports
# OCI archives too. `cluster-down` undoes every host change it made.
.PHONY: cluster-up cluster-down
cluster-up: ## start the local single-node Kubernetes cluster (root; prints KUBECONFIG)
	bash hack/cluster-up.sh $(IMAGES)
cluster-down: ## stop the local cluster and undo everything it changed on the host
	bash hack/cluster-down.sh

.PHONY: build
build: $(DEPS_STAMP) ## compile every workspace (tsc -b)
	npx tsc -b

# OCI images without Docker: dist/images/NAME.tar (for `ctr -n k8s.io images import` and
# `kind load image-archive`), dist/images/oci/ (one OCI layout), images.env (NAME_IMAGE=ref lines,
# also printed). Tags are <package version>-<manifest digest>: unchanged sources, unchanged tags.
.PHONY: images
images: build ## build the sidecar, operator, collector and demo-agent images into dist/images/
	node hack/build-images.ts

# The end-to-end suite in real pods (as root): on the running local cluster, or one it starts and
# stops again. It imports the images and installs the Helm chart itself. CHAPERONE_E2E_KUBECONFIG
# points it at another cluster instead (see e2e-kind and docs/development.md).
.PHONY: e2e
e2e: images helm ## end-to-end tests in real pods of the local cluster (root; starts it if needed)
	bash hack/e2e.sh

# The same suite on kind, for machines with a Docker engine (not these): creates a kind cluster,
# loads the images, runs the suite, deletes the cluster. See docs/development.md.
.PHONY: e2e-kind
e2e-kind: images helm control-plane ## end-to-end tests on a kind cluster (needs Docker and kind)
	bash hack/e2e-kind.sh

.PHONY: typecheck
typecheck: build
	npx tsc -p hack/tsconfig.json

.PHONY: lint
lint: $(DEPS_STAMP) ## biome lint + format check; no import circles in the sidecar
	npx biome check .
	npx dpdm --no-tree --no-warning --no-progress --exit-code circular:1 'sidecar/src/**/*.ts'

.PHONY: gen
gen: $(DEPS_STAMP) ## regenerate api/src/generated from crds/
	node hack/gen-api-types.ts

.PHONY: test
test: lint typecheck host control-plane helm images ## lint, typecheck, unit + integration tests, then the e2e suite in real pods (root)
	npx vitest run --project unit --project integration
	bash hack/e2e.sh

.PHONY: test-unit
test-unit: $(DEPS_STAMP) ## unit tests only (no servers)
	npx vitest run --project unit

.PHONY: test-integration
test-integration: $(DEPS_STAMP) host control-plane helm ## integration tests (PostgreSQL, sshd, kube-apiserver)
	npx vitest run --project integration

# `make demo` runs the sidecar standalone; `make demo MODE=cluster` runs the whole operator story on
# the test control plane (webhook injection, JIT role, kubectl approval, TokenReview to the collector).
MODE ?= standalone
.PHONY: demo
demo: build host ## an agent through the sidecar: masking, approval, denial, recording (MODE=cluster: with the operator)
ifeq ($(MODE),cluster)
	bash hack/build-control-plane.sh >/dev/null
	node hack/demo-cluster.ts
else
	node hack/demo.ts
endif

.PHONY: demo-api
demo-api: build host control-plane ## the CRDs on a real kube-apiserver: apply, refuse invalid, approve by kubectl patch
	node hack/demo-api.ts

.PHONY: bench
bench: build host ## benchmarks (ratios against baselines measured in the same run; not tests)
	@command -v pgbench >/dev/null && test -x /usr/sbin/pgbouncer || { echo "bench needs pgbench and pgbouncer: apt-get install -y postgresql-contrib pgbouncer"; exit 1; }
	node bench/pg-gateway.ts
	node bench/collector.ts

# Protocol fuzzing of the PostgreSQL gateway: FRAMES (default 1,000,000), MINUTES (10), SEED.
.PHONY: fuzz
fuzz: build host ## fuzz the sidecar's PostgreSQL gateway (>= 1M client frames; a short run is part of make test)
	node hack/fuzz-postgres.ts

# The adversarial masking corpus (testkit/src/pg-adversarial), directly and through the sidecar.
.PHONY: adversarial
adversarial: build host ## attacks on masking: each must reveal directly and leak nothing through the sidecar (ONLY=id|class)
	node hack/adversarial-postgres.ts

.PHONY: dev-postgres dev-sshd dev-control-plane dev-oidc
dev-postgres: build host ## run a harness PostgreSQL by hand (Ctrl-C stops it)
	node testkit/dist/cli.js postgres
dev-sshd: build host ## run a harness sshd by hand
	node testkit/dist/cli.js sshd
dev-control-plane: build control-plane ## run etcd + kube-apiserver with CRDs by hand
	node testkit/dist/cli.js control-plane
dev-oidc: build ## run the local OIDC issuer by hand
	node testkit/dist/cli.js oidc

.PHONY: clean
clean: ## remove build output (keeps .tools and the control-plane cache)
	rm -rf */dist
