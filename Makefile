# Flurry: the two commands a new machine needs are `make run` and `make test`.
# Builds go to a persistent target directory outside the clone so that fresh clones
# (CI) reuse earlier builds on the same machine; it works from scratch too.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/flurry/target
CARGO ?= cargo
FLURRY := $(CARGO_TARGET_DIR)/release/flurry
BENCH_THREADS ?= 1,2

.PHONY: run build model models test lint unit bench fixtures fuzz contracts-test clean-models help

help:
	@echo "make run     build, fetch the default model, start chatting"
	@echo "make test    fmt, clippy, unit and integration tests (fetches test models)"
	@echo "make bench   Flurry vs llama.cpp on the same GGUF, same threads"
	@echo "make models  fetch both default models into \$$FLURRY_MODELS"

run: build model
	$(FLURRY) chat

build:
	$(CARGO) build --release --locked -p flurry

model:
	scripts/fetch-models.sh

models:
	scripts/fetch-models.sh all

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

unit: models
	$(CARGO) test --locked --workspace

test: lint unit

bench: build models
	python3 scripts/bench.py --flurry $(FLURRY) --llama-bin "$$(scripts/build-llama-cpp.sh)" --threads $(BENCH_THREADS)

fixtures: models
	PYTHONPATH="$$(dirname "$$(dirname "$$(dirname "$$(dirname "$$(scripts/build-llama-cpp.sh)")")")")" \
	  python3 scripts/gen-fixtures.py

fuzz:
	cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run gguf -- -max_total_time=60
