# The LER platform. `make run` starts everything on embedded defaults; `make test` runs the tests.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: setup engines run test test-fast bench lint fmt schemas-lock clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-* && touch $@

setup: $(STAMP)                       ## create the virtualenv and install the platform

engines:                              ## install/start PostgreSQL, Chromium, kustomize, Kafka, FerretDB
	bash engines/setup

run: setup                            ## start broker, stores, every service and processor
	bash engines/setup kafka || echo "Apache Kafka jars not resolved: ler run falls back to Tansu"
	$(BIN)/ler run

test: setup engines                   ## every test tier (faults and e2e in a parallel process)
	$(BIN)/python -m tests.tiers

test-fast: setup                      ## unit tests only
	$(BIN)/python -m pytest -m unit -q

bench: setup engines                  ## print throughput and latency figures (bench/results/latest.json)
	$(BIN)/python -m bench

lint: setup                           ## ruff check, ruff format --check, mypy
	$(BIN)/ruff check . && $(BIN)/ruff format --check . && $(BIN)/mypy

fmt: setup                            ## format the code
	$(BIN)/ruff check --fix . && $(BIN)/ruff format .

schemas-lock: setup                   ## record the fingerprints of released schema versions
	$(BIN)/python -m ler.avro --lock

clean:                                ## remove the virtualenv and local data
	rm -rf $(VENV) var
