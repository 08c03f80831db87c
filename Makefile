# One entry point for set-up, checks and the main job. Every target reuses .venv.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test lint docs docs-build demo serve clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# torch first: the CPU wheel on disk; a range resolved later would pull a CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff format --check .
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/mypy bench  # the benchmark scripts (not a package)

# The documentation site (docs/, mkdocs.yml): a broken link or reference fails the build.
docs-build: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir site

docs: $(STAMP)
	$(BIN)/mkdocs serve --dev-addr 127.0.0.1:8001

# The service tests talk to a real Redis on 127.0.0.1:6379 (started here if none answers),
# and the landscape page's tests to Debian's Chromium (installed here if missing).
test: lint docs-build
	bash deploy/ensure-redis.sh
	bash deploy/ensure-chromium.sh
	OMP_NUM_THREADS=1 $(BIN)/pytest -n 2 --dist loadfile

# The service with the shipped models (models/) on http://$(HOST):$(PORT); Ctrl-C stops it.
HOST ?= 127.0.0.1
PORT ?= 8000
serve: $(STAMP)
	$(BIN)/nld serve --models models --host $(HOST) --port $(PORT)

# Generate exp1, train the default exp1 preset, evaluate it on the test split.
# Re-running it continues (or reuses) the run instead of starting over.
DEMO := runs/demo
demo: $(STAMP)
	test -f $(DEMO)/data/test.npz || $(BIN)/nld data generate --spec exp1 --out $(DEMO)/data
	R=; if [ -f $(DEMO)/exp1-overdamped/trainer.safetensors ]; then R=--resume; fi; \
	$(BIN)/nld train --preset exp1-overdamped --data $(DEMO)/data/train.npz \
		--out $(DEMO)/exp1-overdamped $$R
	$(BIN)/nld evaluate $(DEMO)/exp1-overdamped --data $(DEMO)/data/test.npz --spec exp1 \
		--out $(DEMO)/eval.json

clean:
	rm -rf $(VENV) runs site .pytest_cache .mypy_cache .ruff_cache
