# Every routine command of the project. `make help` lists them.
SHELL := /bin/bash
PY := .venv/bin/python
PYTHON ?= python3

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the routine commands
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-14s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.venv/.installed: pyproject.toml
	$(PYTHON) -m venv .venv
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,operator,gateway,trainer]'
	touch $@

.PHONY: setup
setup: .venv/.installed ## Create .venv/ with the project and its dev tools
	@echo "ready: .venv/bin/python, .venv/bin/kaizen"

.PHONY: kube-assets
kube-assets: ## Provide etcd + kube-apiserver (KUBEBUILDER_ASSETS, the cache, or a one-time build)
	@bash hack/kube-assets.sh

.PHONY: generate
generate: setup ## Regenerate crds/ and the chart's CRD templates from controllers/api
	$(PY) -m controllers.crdgen

.PHONY: lint
lint: setup ## ruff (lint + format check) and the layer contracts (import-linter, see pyproject.toml)
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/lint-imports

.PHONY: fmt
fmt: setup ## Apply ruff's fixes and formatting
	.venv/bin/ruff check --fix .
	.venv/bin/ruff format .

.PHONY: typecheck
typecheck: setup ## mypy --strict over controllers/ and trainer/
	.venv/bin/mypy

.PHONY: test-unit
test-unit: setup ## Unit tier: pure logic, schemas, CEL rules, generated-file drift
	$(PY) -m pytest tests/unit

.PHONY: test-envtest
test-envtest: setup ## Envtest tier: against a real etcd + kube-apiserver that the fixture starts
	@bash hack/kube-assets.sh >/dev/null
	$(PY) -m pytest tests/envtest

.PHONY: test-store
test-store: setup ## Store tier: every query path on a throwaway PostgreSQL and on SQLite
	@bash hack/postgres.sh
	$(PY) -m pytest tests/store

.PHONY: test-gateway
test-gateway: setup ## Gateway tier: the ingest API, concurrency, outages and kills
	@bash hack/postgres.sh
	$(PY) -m pytest tests/gateway

.PHONY: test-security
test-security: setup ## Security tier: every endpoint x identity on both stores, hijack/SSRF, body limits, fuzzing, scrubbing
	@bash hack/kube-assets.sh >/dev/null
	@bash hack/postgres.sh
	$(PY) -m pytest tests/security

.PHONY: fuzz
fuzz: setup ## Schemathesis over the gateway's OpenAPI document with 200 examples per operation (CI runs 12)
	@bash hack/kube-assets.sh >/dev/null
	@bash hack/postgres.sh
	KAIZEN_FUZZ_EXAMPLES=200 $(PY) -m pytest tests/security/test_fuzz.py

.PHONY: test
test: setup ## Everything CI runs: lint, typecheck and every test tier (fails on any skip)
	@bash hack/kube-assets.sh >/dev/null
	@bash hack/postgres.sh
	@bash hack/sandbox.sh
	@bash hack/browser.sh >/dev/null
	$(MAKE) --no-print-directory lint typecheck
	$(PY) -m pytest

.PHONY: bench-deps
bench-deps: setup
	@$(PY) -m pip install --quiet -e '.[bench]'

.PHONY: bench-quick
bench-quick: bench-deps ## Every benchmark in its --quick form (prints RESULT lines)
	@bash hack/postgres.sh
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b --quick || exit 1; done

.PHONY: bench
bench: bench-deps ## Every benchmark at full size (minutes each)
	@bash hack/postgres.sh
	@for b in bench/*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

.PHONY: base-model
base-model: setup ## Rebuild tiny://kaizen-coder, the loop's pre-trained base, in ~/.cache/kaizen/tiny (deterministic; ~3-8 min)
	$(PY) -m trainer.tiny kaizen-coder

.PHONY: up
up: setup ## The main job on embedded defaults: the whole loop on this machine (train, serve, promote, roll back)
	@bash hack/kube-assets.sh >/dev/null
	@bash hack/sandbox.sh
	.venv/bin/kaizen up

.PHONY: down
down: setup ## Stop what `make up` started
	.venv/bin/kaizen down

.PHONY: precommit
precommit: generate lint typecheck test ## Ready to commit: regenerate, then fail on any diff, lint, test
	git diff --exit-code -- crds charts || (echo "generated files changed: commit them" && exit 1)

.PHONY: test-chart
test-chart: setup ## Chart tier: lint/render/schema with the real Helm library, install+upgrade into a kube-apiserver, RBAC golden, pod security, Argo CD health in Lua
	@bash hack/kube-assets.sh >/dev/null
	$(PY) -m pytest tests/chart

.PHONY: test-trainer
test-trainer: setup ## Trainer tier: a real local Ray head, real TRL + PEFT training through the Jobs API
	$(PY) -m pytest tests/trainer

.PHONY: test-browser
test-browser: setup ## Browser tier: Playwright drives Debian's Chromium against a gateway process per store (axe-core, keyboard, light and dark)
	@bash hack/postgres.sh
	@bash hack/browser.sh >/dev/null
	$(PY) -m pytest tests/browser

.PHONY: screenshots
screenshots: setup ## Rewrite docs/screenshots/ (each page, light and dark) from a gateway with sample data
	@bash hack/postgres.sh
	@bash hack/browser.sh >/dev/null
	KAIZEN_SCREENSHOTS=docs/screenshots $(PY) -m pytest tests/browser/test_screenshots.py tests/browser/test_widget.py -k photographed

.PHONY: test-checker
test-checker: setup ## Checker tier: model-written programs graded in the bubblewrap sandbox (files, sockets, loops refused)
	@bash hack/sandbox.sh
	$(PY) -m pytest tests/checker

.PHONY: test-runtime
test-runtime: setup ## Runtime tier: the RayJob and InferenceService stand-ins against real processes
	@bash hack/kube-assets.sh >/dev/null
	$(PY) -m pytest tests/runtime

.PHONY: test-e2e
test-e2e: setup ## E2E tier: the operator as a process through the whole loop, replicas, chaos (20 lifecycles)
	@bash hack/kube-assets.sh >/dev/null
	@bash hack/postgres.sh >/dev/null
	@bash hack/browser.sh >/dev/null
	$(PY) -m pytest tests/e2e

.PHONY: chaos
chaos: setup ## The full chaos run: SIGKILL the operator through 200 lifecycles
	@bash hack/kube-assets.sh >/dev/null
	@bash hack/postgres.sh >/dev/null
	KAIZEN_CHAOS_LIFECYCLES=200 $(PY) -m pytest tests/e2e/test_chaos.py -s

# Container images. Tags: $(REGISTRY)/kaizen:$(VERSION) (operator, gateway and migration: operator/Dockerfile)
# and $(REGISTRY)/trainer:$(VERSION) (CPU) and :$(VERSION)-gpu (CUDA), from trainer/Dockerfile; VERSION is
# pyproject.toml's. Built with the first OCI builder found (buildah and podman need no daemon; as root
# without user namespaces: BUILDER_FLAGS='--storage-driver vfs' BUILD_FLAGS='--isolation chroot').
# Reproducible: file and history timestamps come from the last commit (SOURCE_DATE_EPOCH), and the
# Dockerfiles pin their bases.
VERSION ?= $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml | head -n 1)
REGISTRY ?= ghcr.io/kaizen-dev
TRAINER_VARIANTS ?= cpu gpu
BUILDER ?= $(firstword $(foreach b,buildah podman docker,$(if $(shell command -v $(b) 2>/dev/null),$(b))))
BUILDER_FLAGS ?=
BUILD_FLAGS ?=
SOURCE_DATE_EPOCH ?= $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
# buildah/podman: --timestamp pins every file and the history; docker (BuildKit >= 0.11) reads the build arg.
IMAGE_BUILD = $(strip $(if $(filter docker,$(BUILDER)),docker $(BUILDER_FLAGS) build --build-arg SOURCE_DATE_EPOCH=$(SOURCE_DATE_EPOCH),$(BUILDER) $(BUILDER_FLAGS) build --timestamp $(SOURCE_DATE_EPOCH)) $(BUILD_FLAGS))
IMAGE_PUSH = $(strip $(BUILDER) $(BUILDER_FLAGS)) push
TRAINER_TAG = $(VERSION)$(if $(filter gpu,$(1)),-gpu)

.PHONY: images
images: ## Build both images, <REGISTRY>/kaizen:<version> and <REGISTRY>/trainer:<version>[-gpu] (REGISTRY=… for yours)
	@test -n "$(BUILDER)" || { echo "no OCI builder: install buildah (apt-get install buildah), podman or docker"; exit 1; }
	$(IMAGE_BUILD) -f operator/Dockerfile -t $(REGISTRY)/kaizen:$(VERSION) .
	$(foreach v,$(TRAINER_VARIANTS),$(IMAGE_BUILD) -f trainer/Dockerfile --build-arg RAY_VARIANT=$(v) -t $(REGISTRY)/trainer:$(call TRAINER_TAG,$(v)) . &&) true

.PHONY: image-steps
image-steps: setup ## Run both Dockerfiles' RUN steps in clean venvs and start each image's command (no builder needed; minutes)
	$(PY) -m pytest -m image_steps tests/chart/test_image_steps.py

.PHONY: push-images
push-images: ## Push what `make images` built to REGISTRY (log in first: buildah/podman/docker login)
	$(IMAGE_PUSH) $(REGISTRY)/kaizen:$(VERSION)
	$(foreach v,$(TRAINER_VARIANTS),$(IMAGE_PUSH) $(REGISTRY)/trainer:$(call TRAINER_TAG,$(v)) &&) true
