# `make demo` and `make test` set everything up from scratch on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ddzoo-installed
# Offline default: the real datasets shipped beside the checkout (see ../shared/data/README.md).
ZOO_DATA_DIR ?= $(abspath ../shared/data)
export ZOO_DATA_DIR

.PHONY: venv demo test test-unit docs bench lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[onnx,report,hub,serve,audit,site,test,docs]'
	$(PY) -m pip install -q --no-deps torchattacks==3.5.1  # AutoAttack; its metadata would pull torchvision
	touch $@

demo: $(STAMP)
	$(PY) -m ddzoo.demo

# The test tiers (pytest markers; tests/tiers.py gives every test one):
#   unit         code on tiny synthetic models and tensors: no training, no real dataset, no server (seconds)
#   integration  the stages together on real data: the LeNet trained for the tests, its package, a stand-in hub,
#                the site in a browser
#   release      the bundled models' claims (a republished model changes them) and the live servers
# `make test` runs all three on CI's two cores: modules stay whole (their fixtures run once), in the order
# tests/tiers.py sets (--no-loadscope-reorder keeps it), the 30 slowest printed. One tier: pytest -m integration.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --no-loadscope-reorder --durations=30

test-unit: $(STAMP)
	$(PY) -m pytest -q -m unit --durations=5

# The documentation site (mkdocs.yml) into build/docs-site, warnings as errors; offline, a few seconds.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict --quiet

bench: $(STAMP)
	$(PY) -m pip install -q '.[bench]' && $(PY) -m pip install -q --no-deps torchattacks==3.5.1
	$(PY) bench/deepfool.py && $(PY) bench/train_step.py && $(PY) bench/verify.py

# ruff everywhere; pyright on the TensorRT code against PyPI's tensorrt-stubs (kept out of the venv: see
# [tool.pyright] in pyproject.toml), since TensorRT itself cannot be installed here.
lint: $(STAMP)
	$(PY) -m pip install -q ruff pyright && $(VENV)/bin/ruff check ddzoo tests bench scripts
	$(PY) -m pip install -q --no-deps --upgrade --target .lint/stubs tensorrt-stubs==10.13.0.35.1
	$(VENV)/bin/pyright

clean:
	rm -rf $(VENV) build *.egg-info
