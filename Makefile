# Every install step lives here: CI runs `make test` on a clean clone.
PYTHON ?= python3
VENV := .venv
STAGE ?= prod
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test package deploy lint bench bench-cost clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

## Run socialcare locally on the embedded AWS until Ctrl-C.
demo: $(STAMP)
	$(BIN)/python -m local.demo

## Run the linters, then the whole test suite.
test: lint
	$(BIN)/python -m pytest -n 2 --dist loadfile

## ruff, and mypy on chalicelib/ (untyped definitions refused in domain, services and ports).
## The import rule between layers is a test: tests/test_architecture.py.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

## Build the deployment package (SAM) merged with infra/, as `chalice deploy` would ship it:
## for review and cfn-lint, or for a CloudFormation pipeline that deploys it as stack
## socialcare-$(STAGE)-pipeline after `python infra/deploy.py --stage $(STAGE) --check-pipeline`.
package: $(STAMP)
	rm -rf build/package
	$(BIN)/python infra/merge.py build/merge-template.yaml --stage $(STAGE)
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(BIN)/chalice package --stage $(STAGE) \
		--merge-template build/merge-template.yaml build/package

## Deploy (or update) a stage in one command: infra/ stack, its outputs into .chalice/config.json,
## policies, `chalice deploy`, then what Chalice cannot configure itself (infra/deploy.py).
## Optional: REGION=eu-west-1 PROFILE=name PARAMS="Key=Value ..." (parameters of infra/template.yaml).
deploy: $(STAMP)
	$(BIN)/python infra/deploy.py --stage $(STAGE) $(if $(REGION),--region $(REGION)) \
		$(if $(PROFILE),--profile $(PROFILE)) $(foreach p,$(PARAMS),--parameter $(p))

## Benchmarks (figures go to bench/README.md); VADER is a bench-only comparison.
bench: $(STAMP)
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	$(BIN)/python bench/coldstart.py
	$(BIN)/python bench/triage.py

## What a mention and a case cost: drives the pipeline on moto, counts every AWS request and unit,
## prices them (chalicelib/domain/prices.py) and writes the usage profile `estimate` reads (bench/COST.md).
bench-cost: $(STAMP)
	$(BIN)/python bench/cost.py

clean:
	rm -rf $(VENV) build .pytest_cache
