# Two commands do all the set-up on a fresh machine (Python 3.11+):
#   make demo   create .venv, install, generate synthetic data and run the pipeline into data/warehouse.duckdb
#   make test   create .venv, install, run the whole suite on DuckDB and PostgreSQL
PYTHON ?= python3
VENV ?= .venv
KPR_TEST_POSTGRES_URL ?= postgresql://postgres@127.0.0.1:5432/postgres

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade pip
	$(VENV)/bin/python -m pip install --quiet -e '.[test]'
	touch $@

.PHONY: install demo test bench
install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(VENV)/bin/kpr-pipeline demo

test: $(VENV)/.installed
	KPR_TEST_POSTGRES_URL=$(KPR_TEST_POSTGRES_URL) $(VENV)/bin/python -m pytest -p no:cacheprovider --durations=20 -n 2 --dist worksteal

bench: $(VENV)/.installed
	$(VENV)/bin/python bench/generator_bench.py
