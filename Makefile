# The README's commands. Every target installs what it needs first (idempotent).
SHELL := /bin/bash
PYTHON ?= python3
export FLARE_HOME ?= $(CURDIR)/.flare
export DAGSTER_HOME ?= $(FLARE_HOME)/dagster
DEB_PACKAGES := openjdk-17-jre-headless libxerial-sqlite-jdbc-java libpostgresql-jdbc-java libmariadb-java postgresql mariadb-server chromium fonts-liberation

.PHONY: setup demo dev test test-fast bench lint validate clean

setup: .flare/.setup-done

.flare/.setup-done: pyproject.toml scripts/setup.sh Makefile
	bash scripts/setup.sh $(DEB_PACKAGES)
	@mkdir -p .flare && touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	@mkdir -p $(DAGSTER_HOME) && cp dagster.yaml $@

demo: setup $(DAGSTER_HOME)/dagster.yaml
	flare demo

dev: setup $(DAGSTER_HOME)/dagster.yaml
	dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

test: setup
	$(PYTHON) -m pytest -q

# the unit tier: planning and validation logic, no Spark (seconds); `make test` runs it too
test-fast: setup
	$(PYTHON) -m pytest -q -m unit

bench: setup
	$(PYTHON) -m benchmarks

lint: setup
	ruff check flare_assets flare_assets_tests benchmarks && ruff format --check flare_assets flare_assets_tests benchmarks

validate: setup
	flare validate $${FLARE_PIPELINES:-flare_assets/demo/pipelines}
	dagster definitions validate -w workspace.yaml
	dg check defs

clean:
	rm -rf .flare
