# Build, serve and test the study site.  `make` alone lists the targets.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# what `setup` leaves behind; each is redone when its lock file changes
VENV_STAMP := $(VENV)/.setup-stamp
NODE_STAMP := node_modules/.package-lock.json

# Material for MkDocs prints a banner about its successor on every build
export NO_MKDOCS_2_WARNING := 1

# `make site JOBS=4`: tasks of the build computed at once (default: the machine's cores);
# `make site SCHEDULER=tcp://host:8786`: on a Dask cluster that shares the cache folder
ifdef JOBS
export UNIMODEL_JOBS := $(JOBS)
endif
ifdef SCHEDULER
export UNIMODEL_SCHEDULER := $(SCHEDULER)
endif

.DEFAULT_GOAL := help
.PHONY: help setup serve site test bench clean

help:
	@echo "make setup   create .venv (CPU PyTorch, the package, docs and test tools) and install MathJax (npm ci)"
	@echo "make serve   build the site and serve it at http://127.0.0.1:8000/ (rebuilds on changes)"
	@echo "make site    build the site into site/ with --strict (JOBS=N workers, default: the cores; SCHEDULER=tcp://... a Dask cluster)"
	@echo "make test    lint and format-check the code (ruff), then run all the tests (pytest; the browser tests need /usr/bin/chromium)"
	@echo "make bench   time a clean build, a second build and rebuilds; weigh the VAE chapter (JSON on stdout)"
	@echo "make clean   remove site/ and .cache/ (built site, cached figures)"

setup: $(VENV_STAMP) $(NODE_STAMP)

# torch first, pinned: that resolves to the CPU build; left to the package's
# dependencies pip would pull the CUDA packages (gigabytes).
$(VENV_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install torch==2.13.0
	$(BIN)/pip install -e '.[docs,test]'
	touch $@

$(NODE_STAMP): package-lock.json package.json
	npm ci
	touch $@

serve: setup
	$(BIN)/mkdocs serve -a 127.0.0.1:8000

site: setup
	$(BIN)/mkdocs build --strict

# one worker process per core (pytest-xdist); the first worker that needs the built site builds it, the others copy that build
test: setup
	$(BIN)/ruff check src tests
	$(BIN)/ruff format --check src tests
	$(BIN)/python -m pytest -n auto

# on a copy of the repository, with its own cache: never touches .cache/ or site/
bench: setup
	$(BIN)/unimodel bench build

clean:
	rm -rf site/ .cache/
