# Two commands for a new user (both set everything up first):
#   make quickstart   train, evaluate and export a small SST-2 classifier (a few minutes on 2 CPU cores)
#   make test         run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# The offline data catalogue; point it elsewhere with ADVCL_DATA_DIR=/path make ...
export ADVCL_DATA_DIR ?= $(abspath ../shared/data)
export HF_HUB_OFFLINE ?= 1

.PHONY: setup quickstart test completions mutation

setup: $(VENV)/.installed

# torch first and pinned: the CPU wheel; an unpinned torch would pull several GB of CUDA packages.
# WordNet for the text attacks comes from Debian (installed when we are root and it is missing).
$(VENV)/.installed: pyproject.toml
	@if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ] && ! dpkg -s wordnet-base >/dev/null 2>&1; then \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends wordnet-base wordnet-sense-index; fi
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e ".[test]"
	touch $@

quickstart: setup
	$(BIN)/advcl train --recipe recipes/quickstart.toml --overwrite
	$(BIN)/advcl eval --model runs/quickstart --data sst2:validation
	$(BIN)/advcl export --model runs/quickstart --output exports/quickstart --overwrite
	$(BIN)/python -c "from transformers import AutoModelForSequenceClassification as M, AutoTokenizer as T; \
	m = M.from_pretrained('exports/quickstart'); t = T.from_pretrained('exports/quickstart'); \
	p = m(**t(['a gorgeous, witty film', 'a dull and lifeless mess'], return_tensors='pt', padding=True)).logits.softmax(-1); \
	print('plain transformers on the export:', [m.config.id2label[i] for i in p.argmax(-1).tolist()])"

test: setup
	$(BIN)/pytest -q

# Mutation testing of objectives, losses and perturbers (tests/mutation/mutants.toml): prints the kill rate as JSON.
mutation: setup
	$(BIN)/python tests/mutation/run.py

# Regenerate completions/ (bash, zsh, fish) from the CLI.
completions: setup
	PATH="$(abspath $(BIN)):$$PATH" completions/generate.sh
