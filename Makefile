# resilient-operator: the two commands a user needs are `make run` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
CLUSTER := e2e/cluster.sh

.PHONY: help venv crds lint unit e2e chaos test run run-here cluster-up cluster-down cluster-status bench-converge bench-healing bench-rollout mutation clean

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

crds: $(STAMP)  ## regenerate the CRD from the pydantic models, and the RBAC from the kinds table
	$(BIN)/python -m resilient_operator.resource.crd > crds/resilientservices.resilience.dev.yaml
	$(BIN)/python -m resilient_operator.kube.rbac > manifests/base/rbac-reconcile.yaml

lint: $(STAMP)
	$(BIN)/ruff check operator tests e2e $(wildcard bench)
	$(BIN)/mypy
	cd operator && ../$(BIN)/lint-imports ../pyproject.toml
	$(BIN)/hadolint Dockerfile

unit: $(STAMP)
	$(BIN)/pytest -q tests

# e2e: against $KUBECONFIG if it answers, else against the local cluster, started and stopped here
e2e: $(STAMP)
	bash e2e/with-cluster.sh --stop -- $(BIN)/pytest -q -m "not chaos" e2e

# the long fault-injection tests (a 60 s API server outage ...); make test runs the fast ones
chaos: $(STAMP)
	bash e2e/with-cluster.sh --stop -- $(BIN)/pytest -q -m chaos e2e

test: lint unit e2e

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

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .mypy_cache .ruff_cache
