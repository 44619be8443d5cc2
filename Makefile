# Two commands for a fresh machine: `make demo` and `make test`. Each creates .venv if missing, installs
# torch==2.13.0 (the CPU build) first -- a bare `torch` requirement would pull a multi-GB CUDA build --
# then the package, then runs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: demo test lint bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install torch==2.13.0

$(VENV)/.installed-base: pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[faces,onnx,video,web]'
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(PY)
	$(PIP) install torch==2.13.0
	$(PIP) install -e '.[cluster,dev,faces,onnx,train,video,web]'
	touch $@ $(VENV)/.installed-base

demo: $(VENV)/.installed-base
	$(VENV)/bin/smfd demo

test: $(VENV)/.installed-dev
	$(PY) -m pytest -q

lint: $(VENV)/.installed-dev
	$(VENV)/bin/ruff check src tests scripts benchmarks

clean:
	rm -rf $(VENV) smfd-demo .pytest_cache
