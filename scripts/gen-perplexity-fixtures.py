#!/usr/bin/env python3
"""Records llama.cpp's perplexity on tests/fixtures/perplexity/text.txt for each default
model, as the reference `flurry perplexity` must match within 1%.

    scripts/gen-perplexity-fixtures.py "$(scripts/build-llama-cpp.sh)"

(`make fixtures` runs it.) For every model it runs llama.cpp's own `llama-perplexity`
(the same build as the other fixtures) with the window length the test uses and writes
tests/fixtures/perplexity/<model>.json: the window length, the windows llama.cpp
evaluated, its running estimates and its final PPL with the +/- it reports.
"""
import json
import os
import re
import subprocess
import sys

MODELS = os.environ.get("FLURRY_MODELS", os.path.expanduser("~/.flurry/models"))
HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "tests", "fixtures", "perplexity")
TEXT = os.path.join(OUT, "text.txt")
CTX = 256
THREADS = 2
FILES = ["SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf"]


def run(bin_dir, model):
    cmd = [
        os.path.join(bin_dir, "llama-perplexity"),
        "-m", model, "-f", TEXT, "-c", str(CTX), "-t", str(THREADS), "-b", str(CTX),
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, check=False)
    log = p.stdout + p.stderr
    if p.returncode != 0:
        sys.exit(f"llama-perplexity failed ({p.returncode}):\n{log[-3000:]}")
    final = re.search(r"Final estimate: PPL = ([0-9.]+) \+/- ([0-9.]+)", log)
    if not final:
        sys.exit(f"no final estimate in llama-perplexity's output:\n{log[-3000:]}")
    running = [float(x) for x in re.findall(r"\[\d+\]([0-9.]+),", log)]
    return {
        "ctx": CTX,
        "chunks": len(running),
        "running": running,
        "ppl": float(final.group(1)),
        "ppl_stderr": float(final.group(2)),
        "reference": "llama.cpp llama-perplexity (llama-cpp-python 0.3.36 sources), "
        f"-c {CTX} -b {CTX} -t {THREADS}",
    }


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: gen-perplexity-fixtures.py LLAMA_BIN_DIR")
    for f in FILES:
        r = run(sys.argv[1], os.path.join(MODELS, f))
        path = os.path.join(OUT, f.rsplit(".gguf", 1)[0] + ".json")
        with open(path, "w") as fh:
            json.dump(r, fh, indent=1)
            fh.write("\n")
        print(f"{f}: PPL {r['ppl']} +/- {r['ppl_stderr']} over {r['chunks']} windows of {CTX}")


if __name__ == "__main__":
    main()
