# The two commands a newcomer runs first: `make up` and `make test`. See README.md.
STACK ?= dev
OUT ?= rendered/$(STACK)
VENV := venv
PY := $(VENV)/bin/python

.PHONY: up test test-unit render check-keys bench bench-eval bench-pipeline reference tools images venv preview

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt requirements-test.txt examples/python-service/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -r requirements-test.txt
	touch $@

## promtool/amtool/prometheus/alertmanager, otelcol, the Pulumi engine, the Docker provider and
## kube-apiserver, node-exporter and kube-state-metrics at the pinned versions (cached)
tools:
	scripts/build-prom-tools.sh
	scripts/build-otelcol.sh
	scripts/build-pulumi.sh
	scripts/build-docker-provider.sh
	scripts/build-kube-apiserver.sh
	scripts/build-actionlint.sh
	scripts/build-node-exporter.sh
	scripts/build-kube-state-metrics.sh

## local Prometheus/Alertmanager/collector images from those binaries (needs a Docker engine)
images: tools
	python3 scripts/build-local-images.py

## the whole test suite: unit, golden, real tools, real processes, real Pulumi engine. The fast
## part runs on every core; the real processes and the engine run one test at a time (timed waits).
test: venv tools
	$(PY) -m pytest -m "not slow and not engine" -n auto
	$(PY) -m pytest -m "slow or engine"

## the fast suite only (no real processes, no engine), on every core
test-unit: venv
	$(PY) -m pytest -m "not slow and not engine" -n auto

## every rendered config (and Kubernetes manifests) of a stack, offline: make render STACK=prod
render: venv
	$(PY) scripts/render.py --stack $(STACK) --out $(OUT)

## every Loki/Tempo/Mimir/Pyroscope config, Grafana provisioning file, flag and env of a render
## against upstream's reference for the pinned version: make render STACK=prod && make check-keys DIR=rendered/prod
DIR ?= $(OUT)
check-keys: venv
	$(PY) -m keycheck.check $(DIR)

## deploy a stack: make up STACK=dev
up: venv
	scripts/up.sh $(STACK)

## preview with diff (what CI shows on pull requests): make preview STACK=prod
preview: venv
	scripts/up.sh $(STACK) preview

## figures for this machine: program evaluation, then the rendered prod pipeline under load (~10 min)
bench: bench-eval bench-pipeline

bench-eval: venv
	$(PY) benchmarks/run.py

## Prometheus, collector and Alertmanager (pinned binaries, built if missing) under load on loopback
bench-pipeline: venv
	$(PY) benchmarks/pipeline.py

## regenerate the configuration reference in README.md from the pydantic schema
reference: venv
	$(PY) -m observability_stack.config.reference --write README.md
