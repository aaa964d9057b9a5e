# The two commands a newcomer runs first: `make up` and `make test`. See README.md.
STACK ?= dev
OUT ?= rendered/$(STACK)
VENV := venv
PY := $(VENV)/bin/python

.PHONY: up test test-unit render bench reference tools images venv preview

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-test.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-test.txt
	touch $@

## promtool/amtool/prometheus/alertmanager, otelcol, the Pulumi engine, the Docker provider and
## kube-apiserver at the pinned versions (cached)
tools:
	scripts/build-prom-tools.sh
	scripts/build-otelcol.sh
	scripts/build-pulumi.sh
	scripts/build-docker-provider.sh
	scripts/build-kube-apiserver.sh

## local Prometheus/Alertmanager/collector images from those binaries (needs a Docker engine)
images: tools
	python3 scripts/build-local-images.py

## the whole test suite: unit, golden, real tools, real processes, real Pulumi engine
test: venv tools
	$(PY) -m pytest

## the fast suite only (no real processes, no engine)
test-unit: venv
	$(PY) -m pytest -m "not slow and not engine"

## every rendered config (and Kubernetes manifests) of a stack, offline: make render STACK=prod
render: venv
	$(PY) scripts/render.py --stack $(STACK) --out $(OUT)

## deploy a stack: make up STACK=dev
up: venv
	scripts/up.sh $(STACK)

## preview with diff (what CI shows on pull requests): make preview STACK=prod
preview: venv
	scripts/up.sh $(STACK) preview

bench: venv
	$(PY) benchmarks/run.py

## regenerate the configuration reference in README.md from the pydantic schema
reference: venv
	$(PY) -m config.reference --write README.md
