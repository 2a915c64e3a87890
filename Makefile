# Flurry: the two commands a new machine needs are `make run` and `make test`.
# Builds go to a persistent target directory outside the clone so that fresh clones
# (CI) reuse earlier builds on the same machine; it works from scratch too.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/flurry/target
CARGO ?= cargo
# The local chain `flurry up` runs in [chain] mode = "local" (the default).
export FLURRY_ANVIL ?= $(CURDIR)/contracts/node_modules/.bin/anvil
FLURRY := $(CARGO_TARGET_DIR)/release/flurry
BENCH_THREADS ?= 1,2
# e.g. --quick (a smaller latency store) or --misses (list missed questions)
MEMORY_BENCH_ARGS ?=

FLURRY_DEBUG := $(CARGO_TARGET_DIR)/debug/flurry

.PHONY: build-deps run announce build install model models test lint unit e2e web-test netns-test test-deps contracts-test chain-deps bench bench-all bench-engine bench-market bench-verify bench-share bench-chain bench-memory bench-privacy fixtures fuzz help

help:
	@echo "make run     build, fetch the default model, start the node (web UI on http://127.0.0.1:7878)"
	@echo "make test    fmt, clippy, unit, integration, API (openai/ollama clients), browser and network-namespace tests"
	@echo "make netns-test  relay + two NATs in network namespaces: hole punching, inference across (root)"
	@echo "make install put \`flurry\` on your PATH (cargo install into ~/.cargo/bin) with its local chain tools"
	@echo "make bench   is Flurry faster than llama.cpp here? both default models, same GGUF and threads (a few minutes)"
	@echo "make bench-all  everything: the engine with 3 rounds, tickets, private memory (45-60 min on 2 cores)"
	@echo "make bench-memory  memory search quality (recall@5, MRR), ingestion, latency, RSS (30-50 min on 2 cores; MEMORY_BENCH_ARGS=--quick: ~7)"
	@echo "make bench-privacy the privacy scrubber on tests/privacy: recall, precision per type, ms per 2,000-token prompt"
	@echo "make bench-verify  what verification costs: commitments overhead per job, one audit against the job it checks"
	@echo "make bench-share   model sharing: verification GB/s, pulls from 1 and 3 peers on loopback"
	@echo "make models  fetch both default models into \$$FLURRY_MODELS"

run: announce build model chain-deps
	$(FLURRY) up

# The first build is long and cargo says little: tell the person what is happening first.
announce:
	@[ -x "$(FLURRY)" ] || echo "building Flurry (first time: about 10-15 minutes on 2 cores)…"

# `flurry` on the PATH. The installed binary finds the chain tools that `make chain-deps`
# put in this checkout, so `flurry up` has its local chain with no environment variables.
install: announce build-deps chain-deps
	$(CARGO) install --locked --path bin/flurry
	@bin="$${CARGO_HOME:-$$HOME/.cargo}/bin"; echo "installed $$bin/flurry"; \
	  case ":$$PATH:" in *":$$bin:"*) ;; *) echo "add $$bin to your PATH (e.g. export PATH=\"$$bin:\$$PATH\")";; esac

# C libraries the build links (libcrypto for SQLCipher), from apt when missing.
build-deps:
	scripts/build-deps.sh

build: build-deps
	$(CARGO) build --release --locked -p flurry

model:
	scripts/fetch-models.sh

models:
	scripts/fetch-models.sh all

lint: build-deps
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings

unit: build-deps models chain-deps
	$(CARGO) test --locked --workspace

test: lint contracts-test unit e2e web-test netns-test

# Solidity contracts: forge + solc-js from npm (contracts/package-lock.json), offline.
contracts-test:
	contracts/test.sh

# anvil, forge, cast and solc-js, pinned in contracts/package-lock.json.
chain-deps:
	contracts/deps.sh

test-deps:
	scripts/test-deps.sh

# The official openai and ollama Python clients against a real `flurry up` (debug build
# from `make unit`).
e2e: build-deps test-deps
	$(CARGO) build --locked -p flurry
	FLURRY_BIN=$(FLURRY_DEBUG) tests/e2e/run.sh

# A relay and two nodes behind two NATs in network namespaces (root needed; fails
# otherwise, unless FLURRY_NETNS_OPT_OUT=1 outside CI): reservation, relayed connection, DCUtR upgrade, circle inference,
# timings and tokens/s relayed vs direct in artifacts/netns.json.
netns-test: build-deps test-deps chain-deps
	$(CARGO) build --locked -p flurry
	python3 tests/netns/netns_test.py $(FLURRY_DEBUG) --json-out artifacts/netns.json

# Chromium driven by Playwright against a real node; the screenshot is kept in artifacts/.
web-test: build-deps test-deps
	$(CARGO) build --locked -p flurry
	scripts/web-test.sh $(FLURRY_DEBUG) artifacts/ui-chat.png

# The quick answer: one round (each tool still runs every test twice, interleaved).
bench: build models
	BENCH_ROUNDS=$${BENCH_ROUNDS:-1} python3 scripts/bench.py --flurry $(FLURRY) --llama-bin "$$(scripts/build-llama-cpp.sh)" --threads $(BENCH_THREADS)
	$(MAKE) bench-market
	$(MAKE) bench-verify
	$(MAKE) bench-share

# Model sharing: piece-layer hashing and piece checks in GB/s against reading the file,
# and pulls between real nodes on loopback from 1 and 3 peers against a file copy.
bench-share: build-deps
	$(CARGO) run --release --locked -p flurry-share --example share_bench

# Verification: the provider's overhead for commitments (the same job with and without,
# interleaved) and one audit's cost against the job it checks, per model.
bench-verify: build-deps models
	$(CARGO) run --release --locked -p flurry-verify --example verify_bench

# The market's overhead per job through the API (call for proposals to first token, minus
# a local first token) and chain transactions per job, with two nodes on one anvil.
bench-market: build models chain-deps
	$(CARGO) build --release --locked -p flurry-market --example cfp_flood
	tests/e2e/run.sh --version >/dev/null  # makes the e2e virtual environment
	FLURRY_BIN=$(FLURRY) $${FLURRY_VENV:-$$HOME/.cache/flurry/venv}/bin/python scripts/bench-market.py \
	  --flood-bin $(CARGO_TARGET_DIR)/release/examples/cfp_flood

# Everything: the engine with the full 3 rounds, then tickets and the private memory.
bench-all: bench-engine bench-market bench-verify bench-share bench-chain bench-memory bench-privacy

bench-engine: build models
	python3 scripts/bench.py --flurry $(FLURRY) --llama-bin "$$(scripts/build-llama-cpp.sh)" --threads $(BENCH_THREADS)

# Tickets: creation/validation rates, gas per winning ticket, transactions per job.
bench-chain: chain-deps
	$(CARGO) run --release --locked -p flurry-chain --example ticket_bench

# Private memory on the evaluation set of scripts/gen-memory-eval.py: recall@5 and MRR for
# BM25, vectors and hybrid (fails unless hybrid beats both), ingestion documents/s and
# MB/s, query latency p50/p99 over ~10,000 chunks, peak RSS. MEMORY_BENCH_ARGS=--quick
# builds a smaller latency store.
bench-memory: build-deps model
	$(CARGO) run --release --locked -p flurry-memory --example memory_bench -- $(MEMORY_BENCH_ARGS)

# The privacy scrubber on tests/privacy (395 labelled texts, English and Chinese, with the
# owner's memory): recall and precision per entity type and language, and the time to
# scrub a ~2,000-token prompt; then the same on tests/privacy-heldout (278 texts written
# apart from the scrubber). Prints `recall=… precision=…` last.
bench-privacy:
	$(CARGO) run --release --locked -p flurry -- privacy eval tests/privacy
	@echo "held-out set (never tuned on):"
	$(CARGO) run --release --locked -p flurry -- privacy eval tests/privacy-heldout

fixtures: models
	PYTHONPATH="$$(dirname "$$(dirname "$$(dirname "$$(dirname "$$(scripts/build-llama-cpp.sh)")")")")" \
	  python3 scripts/gen-fixtures.py
	python3 scripts/gen-perplexity-fixtures.py "$$(scripts/build-llama-cpp.sh)"

fuzz:
	cd fuzz && for t in gguf pdf html mail infer_frames locate offers safetensors tokenizer_json tickets; do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t -- -max_total_time=60 || exit 1; done
