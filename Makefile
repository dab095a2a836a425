# One-command environment: every target bootstraps .venv when missing and is a no-op when it is current.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv test test-slow test-all lint demo bench soak clean-venv gpu-wheels gpu-wheels-train gpu-photos

$(STAMP): requirements.txt setup.py setup.cfg
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

venv: $(STAMP)

## The README's test command: every test not marked slow (gpu tests skip without CUDA).
test: $(STAMP)
	$(PY) -m pytest -q -m "not slow" test

## The tests marked slow (training runs, exports, cross-process ROS, the real launch system).
test-slow: $(STAMP)
	$(PY) -m pytest -q -m slow test

## The full suite, as CI runs it.
test-all: test test-slow

## Style and static checks (.ruff.toml), as CI runs them.
lint: $(STAMP)
	$(VENV)/bin/ruff check .

## The first command of the README: fake camera + node with the default model, plate captured, frames scored (out/demo/).
demo: $(STAMP)
	$(PY) -m matte_ros.tools.demo

clean-venv:
	rm -rf $(VENV)

## Performance table (README "Performance"): model, fast path, bf16 and engine timings. BENCH_ARGS=--quick for a short run.
bench: $(STAMP)
	$(PY) -m matte_ros.tools.bench $(BENCH_ARGS)

## Soak benchmark: camera and node for SOAK_MINUTES (default 30), node memory and rates over time (out/soak/).
SOAK_MINUTES ?= 30
soak: $(STAMP)
	$(PY) -m matte_ros.tools.soak --minutes $(SOAK_MINUTES)

## Wheels for a GPU machine without network (.ci/gpu-check, docs/deployment.md): the packages its Python 3.12 lacks, into .whl/.
gpu-wheels: $(STAMP)
	.ci/gpu-wheels

## The GPU training recipe's wheels alone (training/recipes/gpu.sh): kornia and its dependencies, no ROS, into .whl-train/.
gpu-wheels-train: $(STAMP)
	GPU_WHEELS=.whl-train .ci/gpu-wheels --only kornia

## The GPU training recipe's photographs (training and stress suite) into .photos/, with the size that would travel.
gpu-photos: $(STAMP)
	$(PY) .ci/gpu_photos.py
