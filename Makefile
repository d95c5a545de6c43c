# resilient-operator: the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLUSTER := e2e/cluster.sh
CHART := charts/resilient-operator

PROMTOOL = $$(bash $(CLUSTER) build-prometheus)/promtool

.PHONY: help venv crds chart krew schemas rules rules-test lint unit e2e chaos test image test-image container-engine run run-here cluster-up cluster-down cluster-status bench-converge bench-healing bench-rollout bench-soak mutation clean

help:
	@echo "make run    set up, start a cluster unless KUBECONFIG names one, install the CRD,"
	@echo "            apply the sample and run the operator in the foreground"
	@echo "make test   lint, unit tests, then e2e tests against a real cluster"

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
	  { echo "Python 3.11 or newer is needed"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $@

venv: $(STAMP)

# regenerate the CRD from the pydantic models and the RBAC from the kinds table (then the chart's
# copies)
crds: $(STAMP)
	$(BIN)/python -m resilient_operator.resource.crd > crds/resilientservices.resilience.dev.yaml
	$(BIN)/python -m resilient_operator.kube.rbac > manifests/base/rbac-reconcile.yaml
	$(MAKE) --no-print-directory chart

# the files the Helm chart shares with crds/, the kinds table and manifests/overlays/prometheus
# (tests/test_chart.py fails when they differ)
chart: $(STAMP)
	cp crds/resilientservices.resilience.dev.yaml $(CHART)/crds/
	$(BIN)/python -m resilient_operator.kube.rbac --chart > $(CHART)/files/rbac-reconcile.yaml
	rm -rf $(CHART)/files/prometheus && mkdir -p $(CHART)/files/prometheus
	cd manifests/overlays/prometheus && cp $$(ls *.yaml *.json 2>/dev/null | \
	  grep -vx kustomization.yaml) $(CURDIR)/$(CHART)/files/prometheus/

# the krew archive of kubectl rsvc (dist/krew/) and plugins/krew/rsvc.yaml with its sha256; set
# KREW_URL_BASE to where releases are published (the archive is expected at
# $(KREW_URL_BASE)/v<version>/kubectl-rsvc-v<version>.tar.gz)
KREW_URL_BASE ?= https://github.com/resilient-operator/resilient-operator/releases/download
krew: $(STAMP)
	$(BIN)/python plugins/krew/build.py dist/krew $(KREW_URL_BASE)

# kubeconform's schemas of the built-in kinds we use, from the API server's own OpenAPI (the
# cluster of KUBECONFIG, else the local one); committed, so make lint needs no cluster
schemas: $(STAMP)
	bash e2e/with-cluster.sh --stop -- bash -c \
	  'rm -f schemas/*.json && $(BIN)/python e2e/kube_schemas.py cluster schemas'

# ruff, mypy, import contracts, hadolint; then e2e/validate.sh: helm lint, kubeconform and
# kube-score on manifests/, overlays, samples and the chart, krew's manifest check (the tools are
# built from Go modules on first use)
# the PrometheusRule (from the plain rule files) and the Grafana dashboard of the prometheus overlay
rules: $(STAMP)
	$(BIN)/python hack/prometheusrule.py > manifests/overlays/prometheus/prometheusrule.yaml
	$(BIN)/python hack/dashboard.py > manifests/overlays/prometheus/dashboard.json

# promtool check and unit-test the rules (prometheus and promtool are built on first use: before
# the unit tests in `make test`, so theirs that need promtool run too)
rules-test:
	@promtool=$(PROMTOOL) && \
	$$promtool check rules manifests/overlays/prometheus/rules/*.yaml && \
	$$promtool test rules tests/rules/*.test.yaml

lint: $(STAMP)
	$(BIN)/ruff check operator tests e2e plugins hack $(wildcard bench)
	$(BIN)/mypy
	cd operator && ../$(BIN)/lint-imports ../pyproject.toml
	$(BIN)/hadolint Dockerfile
	PYTHON=$(BIN)/python bash e2e/validate.sh

unit: $(STAMP)
	$(BIN)/pytest -q tests

# e2e: against $KUBECONFIG if it answers, else against the local cluster, started and stopped here
e2e: $(STAMP)
	bash e2e/with-cluster.sh --stop -- $(BIN)/pytest -q -m "not chaos" e2e

# the long fault-injection tests (a 60 s API server outage ...); make test runs the fast ones
chaos: $(STAMP)
	bash e2e/with-cluster.sh --stop -- $(BIN)/pytest -q -m chaos e2e

test: lint rules-test unit e2e

# the operator's image, with Docker where a daemon answers, else podman (make container-engine)
image:
	bash e2e/image.sh build

# the image built and run by the engine against the cluster (make e2e runs it too, with the rest)
test-image: $(STAMP)
	bash e2e/with-cluster.sh --stop -- $(BIN)/pytest -q e2e/test_image.py

# installs and configures rootful podman (apt-get) unless a Docker daemon answers; CI runs it
container-engine:
	bash e2e/container-setup.sh setup

# mutation testing of the decision modules against the fast unit tests (not part of make test).
# mutmut wants the package under src/, so it runs on a copy in build/mutation. MUTANTS selects
# (mutant name globs); the default is the decision modules and the availability policy. Niced
# and on one process: the machine is shared. The score per module is printed at the end.
MUTATION_DIR := build/mutation
MUTANTS ?= resilient_operator.policy.healing.* resilient_operator.policy.conditions.* \
	resilient_operator.policy.rollout.* resilient_operator.builders.children.x_pod_disruption_budget*
$(VENV)/.mutation-installed: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,mutation]'
	@touch $@

mutation: $(VENV)/.mutation-installed
	rm -rf $(MUTATION_DIR) && mkdir -p $(MUTATION_DIR)/src
	cp -Rp operator/resilient_operator $(MUTATION_DIR)/src/
	cp -Rp tests manifests crds pyproject.toml $(MUTATION_DIR)/
	cd $(MUTATION_DIR) && nice -n 19 $(abspath $(BIN))/mutmut run --max-children 1 \
	  $(foreach m,$(MUTANTS),'$(m)') > mutmut.log
	cd $(MUTATION_DIR) && $(abspath $(BIN))/mutmut results --all true | \
	  $(abspath $(BIN))/python $(abspath tests/mutation_score.py) $(foreach m,$(MUTANTS),'$(m)')

run: $(STAMP)
	bash e2e/with-cluster.sh -- $(MAKE) --no-print-directory run-here

# the part of `make run` that needs a cluster: CRD, sample, then the operator in the foreground
run-here:
	kubectl apply --server-side --force-conflicts -k crds/
	kubectl wait --for=condition=Established crd/resilientservices.resilience.dev --timeout=60s
	kubectl apply -f manifests/samples/web.yaml
	@echo
	@echo "The sample ResilientService 'web' is applied. In another shell:"
	@echo "  export KUBECONFIG=$$KUBECONFIG"
	@echo "  kubectl get rsvc web -o wide && kubectl describe rsvc web"
	@echo "  kubectl get deploy,svc,pdb,hpa,pods -l app.kubernetes.io/instance=web"
	@echo "  curl -s localhost:8080/metrics | grep ^resilient_"
	@echo "Ctrl-C stops the operator; 'bash $(CLUSTER) down' stops the local cluster."
	@echo
	exec $(BIN)/resilient-operator --liveness http://127.0.0.1:8081/healthz

cluster-up:
	bash $(CLUSTER) up
cluster-down:
	bash $(CLUSTER) down
cluster-status:
	bash $(CLUSTER) status

# benchmarks print numbers (see README); ARGS="--count 1000" etc. are passed through
bench-converge: $(STAMP)
	bash e2e/with-cluster.sh -- $(BIN)/python bench/converge.py $(ARGS)
bench-healing: $(STAMP)
	bash e2e/with-cluster.sh -- $(BIN)/python bench/healing.py $(ARGS)
bench-rollout: $(STAMP)
	bash e2e/with-cluster.sh -- $(BIN)/python bench/rollout.py $(ARGS)
# an hour at 1,000 services with a fault every 5 s (ARGS="--minutes 10 --services 100" for less)
bench-soak: $(STAMP)
	bash e2e/with-cluster.sh -- $(BIN)/python bench/soak.py $(ARGS)

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
