#!/usr/bin/env python3
"""Flurry vs llama.cpp on the same GGUF files and the same thread counts.

Used by `make bench`. For every model and thread count it runs `--rounds` rounds;
each round runs llama-bench and `flurry bench` once each (alternating which goes
first, so neither always gets the cooler CPU) with `-r --reps` repetitions inside.
All per-repetition samples are pooled and the median taken per test:

  pp256        prompt processing, 256 random tokens, empty context
  tg128 d0     generation of 128 tokens, one per step, empty context
  tg128 d256   the same after 256 tokens of context

Peak RSS is measured here, the same way for both tools (ru_maxrss of the child via
os.wait4), rather than trusting either tool's own figure.

Continuous batching is measured once per model and thread count, Flurry alone:
`flurry bench --streams 8` runs 8 greedy requests of 128 tokens at once through the
engine and one alone, and reports total generated tokens/s of each (median of
--reps) and their ratio (`--streams 0` skips it).

The last line on stdout is machine-readable, Flurry / llama.cpp for the default
model (SmolLM2) at the highest thread count, and the streams ratio (8 streams / one
stream, Flurry) there:

  prefill_ratio=X decode_ratio=Y rss_ratio=Z streams_ratio=S

`make bench` passes --threads from BENCH_THREADS; BENCH_ROUNDS and BENCH_REPS in the
environment set the defaults of --rounds and --reps (e.g. `BENCH_REPS=1 make bench`).

Python 3.11 standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PROMPT = 256
GEN = 128
DEPTHS = (0, 256)
# Tests reported, in table order: (key, label).
TESTS = [
    (f"pp{PROMPT}", f"pp{PROMPT}"),
    (f"tg{GEN}@d0", f"tg{GEN} d0"),
    (f"tg{GEN}@d{DEPTHS[1]}", f"tg{GEN} d{DEPTHS[1]}"),
]
# Short names accepted by --models; the first is the default model of the summary line.
MODELS = {
    "smollm2": "SmolLM2-135M-Instruct.Q4_1.gguf",
    "gemma3": "gemma-3-270m-q4_k_m.gguf",
}
DEFAULT_MODEL = "smollm2"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def models_dir() -> Path:
    env = os.environ.get("FLURRY_MODELS")
    return Path(env).expanduser() if env else Path.home() / ".flurry" / "models"


def resolve_model(spec: str) -> tuple[str, Path]:
    """Map a short name, a file name in $FLURRY_MODELS, or a path to (label, path)."""
    if spec.lower() in MODELS:
        return spec.lower(), models_dir() / MODELS[spec.lower()]
    p = Path(spec).expanduser()
    if "/" in spec or p.exists():
        return p.stem, p
    name = spec if spec.endswith(".gguf") else spec + ".gguf"
    return Path(name).stem, models_dir() / name


def default_flurry() -> str:
    target = os.environ.get("CARGO_TARGET_DIR") or str(Path.home() / ".cache/flurry/target")
    return str(Path(target) / "release" / "flurry")


def default_llama_bin() -> str:
    script = REPO / "scripts" / "build-llama-cpp.sh"
    out = subprocess.run([str(script)], check=True, stdout=subprocess.PIPE, text=True)
    return out.stdout.strip().splitlines()[-1]


def env_int(name: str, default: int) -> int:
    val = os.environ.get(name, "").strip()
    if not val:
        return default
    try:
        return int(val)
    except ValueError:
        sys.exit(f"error: {name}={val!r} is not an integer")


def parse_threads(s: str) -> list[int]:
    try:
        ts = sorted({int(x) for x in s.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError(f"bad thread list {s!r}; want e.g. 1,2")
    if not ts or ts[0] < 1:
        raise argparse.ArgumentTypeError(f"bad thread list {s!r}; want positive integers")
    return ts


def run_measured(cmd: list[str]) -> tuple[str, str, int, float, float]:
    """Run cmd; return (stdout, stderr, exit code, peak RSS MiB, wall seconds).

    Output goes to temporary files so nothing can block on a full pipe, and the child
    is reaped with os.wait4 to read its ru_maxrss (KiB on Linux).
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        _, status, ru = os.wait4(proc.pid, 0)
        wall = time.monotonic() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # keep Popen from reaping again
        out.seek(0)
        err.seek(0)
        return (
            out.read().decode(errors="replace"),
            err.read().decode(errors="replace"),
            proc.returncode,
            ru.ru_maxrss / 1024.0,
            wall,
        )


def fail(tool: str, cmd: list[str], rc: int, stderr: str) -> None:
    tail = "\n".join(stderr.strip().splitlines()[-15:])
    sys.exit(f"error: {tool} exited with {rc}\n  command: {' '.join(cmd)}\n{tail}")


def run_llama(llama_bench: str, model: Path, threads: int, reps: int) -> dict:
    cmd = [
        llama_bench, "-m", str(model), "-t", str(threads),
        "-p", str(PROMPT), "-n", str(GEN), "-d", ",".join(map(str, DEPTHS)),
        "-r", str(reps), "-o", "json",
    ]
    out, err, rc, rss, wall = run_measured(cmd)
    if rc != 0:
        fail("llama-bench", cmd, rc, err)
    try:
        entries = json.loads(out)
    except json.JSONDecodeError as e:
        fail("llama-bench (unparsable JSON output: %s)" % e, cmd, rc, err + "\n" + out[-2000:])
    samples: dict[str, list[float]] = {}
    extra: dict[str, list[float]] = {}
    for e in entries:
        npp, ntg, depth = e["n_prompt"], e["n_gen"], e["n_depth"]
        ts = [float(x) for x in e["samples_ts"]]
        if npp == PROMPT and ntg == 0 and depth == 0:
            samples[f"pp{PROMPT}"] = ts
        elif npp == 0 and ntg == GEN:
            samples[f"tg{GEN}@d{depth}"] = ts
        else:  # llama-bench crosses -p with -d too (pp256 at d256): kept, not compared
            extra[f"pp{npp}@d{depth}" if ntg == 0 else f"pp{npp}+tg{ntg}@d{depth}"] = ts
    missing = [k for k, _ in TESTS if k not in samples]
    if missing:
        fail(f"llama-bench (no result for {', '.join(missing)})", cmd, rc, err)
    return {"samples": samples, "extra": extra, "peak_rss_mib": rss, "wall_s": wall,
            "build": entries[0].get("build_commit") if entries else None}


def run_flurry(flurry: str, model: Path, threads: int, reps: int) -> dict:
    cmd = [
        flurry, "bench", "--model", str(model), "--threads", str(threads),
        "-p", str(PROMPT), "-n", str(GEN), "-d", ",".join(map(str, DEPTHS)),
        "-r", str(reps), "--json",
    ]
    out, err, rc, rss, wall = run_measured(cmd)
    if rc != 0:
        fail("flurry bench", cmd, rc, err)
    samples: dict[str, list[float]] = {}
    summary: dict = {}
    for line in out.splitlines():
        line = line.strip()
        if not line.startswith("{"):
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        test = obj.get("test")
        if test == "summary":
            summary = obj
        elif test == f"pp{PROMPT}":
            samples[test] = [float(x) for x in obj["samples_tps"]]
        elif test == f"tg{GEN}":
            samples[f"tg{GEN}@d{obj.get('depth', 0)}"] = [float(x) for x in obj["samples_tps"]]
    missing = [k for k, _ in TESTS if k not in samples]
    if missing:
        fail(f"flurry bench (no result for {', '.join(missing)})", cmd, rc, err + "\n" + out[-2000:])
    return {
        "samples": samples, "peak_rss_mib": rss, "wall_s": wall,
        "self_reported_rss_mib": summary.get("peak_rss_mib"),
        "load_ms": summary.get("load_ms"), "kernel": summary.get("kernel"),
    }


def run_streams(flurry: str, model: Path, threads: int, reps: int, streams: int) -> dict:
    """Total tokens/s of `streams` concurrent requests and of one, through the engine."""
    cmd = [
        flurry, "bench", "--model", str(model), "--threads", str(threads),
        "-p", "0", "-n", str(GEN), "-d", "0", "-r", str(reps), "--streams", str(streams), "--json",
    ]
    out, err, rc, _, wall = run_measured(cmd)
    if rc != 0:
        fail("flurry bench --streams", cmd, rc, err)
    res: dict = {"wall_s": wall}
    for line in out.splitlines():
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        test = obj.get("test") if isinstance(obj, dict) else None
        if test == "streams1":
            res["one_tps"] = float(obj["median_tps"])
        elif test == f"streams{streams}":
            res["many_tps"] = float(obj["median_tps"])
        elif test == "streams_ratio":
            res["ratio"] = float(obj["ratio"])
    if not {"one_tps", "many_tps", "ratio"} <= res.keys():
        fail("flurry bench --streams (no streams result)", cmd, rc, err + "\n" + out[-2000:])
    return res


def ratio(f: float | None, l: float | None) -> float | None:
    return f / l if f is not None and l else None


def fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--flurry", default=default_flurry(), help="flurry binary (default: %(default)s)")
    ap.add_argument("--llama-bin", help="directory holding llama-bench "
                    "(default: the output of scripts/build-llama-cpp.sh)")
    ap.add_argument("--models", default=",".join(MODELS),
                    help="comma-separated short names (%s), file names in $FLURRY_MODELS, "
                    "or paths (default: %%(default)s)" % ", ".join(MODELS))
    ap.add_argument("--threads", type=parse_threads, default=[1, 2],
                    help="comma-separated thread counts (default: 1,2)")
    ap.add_argument("--rounds", type=int, default=env_int("BENCH_ROUNDS", 3),
                    help="rounds per model and thread count (default: $BENCH_ROUNDS or 3)")
    ap.add_argument("--reps", type=int, default=env_int("BENCH_REPS", 2),
                    help="repetitions per tool per round, passed as -r (default: $BENCH_REPS or 2)")
    ap.add_argument("--streams", type=int, default=8,
                    help="concurrent streams for the continuous-batching test, 0 skips it "
                    "(default: %(default)s)")
    ap.add_argument("--json-out", metavar="FILE", help="write every raw number and the summary as JSON")
    args = ap.parse_args()
    if args.rounds < 1 or args.reps < 1:
        ap.error("--rounds and --reps must be at least 1")
    if args.streams < 0 or args.streams == 1:
        ap.error("--streams must be 0 (skip) or at least 2")

    flurry = str(Path(args.flurry).expanduser())
    if not os.access(flurry, os.X_OK):
        sys.exit(f"error: flurry binary not found at {flurry} (run `make build`)")
    llama_dir = Path(args.llama_bin or default_llama_bin()).expanduser()
    llama_bench = llama_dir / "llama-bench"
    if not os.access(llama_bench, os.X_OK):
        sys.exit(f"error: {llama_bench} not found (run scripts/build-llama-cpp.sh)")

    models: list[tuple[str, Path]] = []
    for spec in (s.strip() for s in args.models.split(",")):
        if not spec:
            continue
        label, path = resolve_model(spec)
        if not path.is_file():
            log(f"skipping {label}: {path} not found (run `make models` to fetch it)")
            continue
        models.append((label, path))
    if not models:
        sys.exit("error: no model to benchmark (run `make models`)")

    threads = args.threads
    total = len(models) * len(threads) * args.rounds * 2
    log(f"bench: {len(models)} model(s) x threads {','.join(map(str, threads))} x "
        f"{args.rounds} round(s) x 2 tools, -r {args.reps} each ({total} runs); "
        f"llama-bench: {llama_bench}")

    load = os.getloadavg()[0]
    if load >= 0.5 * (os.cpu_count() or 1):
        log(f"warning: the machine is busy (1-minute load {load:.1f} on {os.cpu_count()} CPUs); "
            "numbers will be noisy and the two tools may be hit unequally (llama.cpp's threads "
            "spin-wait, so it can lose more when other work takes its CPUs)")

    raw_runs: list[dict] = []
    results: list[dict] = []  # one per (model, threads)
    n = 0
    t_start = time.monotonic()
    for label, path in models:
        for t in threads:
            pooled = {"llama.cpp": {k: [] for k, _ in TESTS}, "flurry": {k: [] for k, _ in TESTS}}
            rss = {"llama.cpp": [], "flurry": []}
            for rnd in range(args.rounds):
                order = ["llama.cpp", "flurry"] if rnd % 2 == 0 else ["flurry", "llama.cpp"]
                for tool in order:
                    n += 1
                    load = os.getloadavg()[0]
                    log(f"[{n}/{total}] {time.monotonic() - t_start:5.0f}s  {path.name}  "
                        f"threads={t}  round {rnd + 1}/{args.rounds}  {tool}  (load {load:.1f})")
                    if tool == "llama.cpp":
                        r = run_llama(str(llama_bench), path, t, args.reps)
                    else:
                        r = run_flurry(flurry, path, t, args.reps)
                    for k, _ in TESTS:
                        pooled[tool][k].extend(r["samples"][k])
                    rss[tool].append(r["peak_rss_mib"])
                    raw_runs.append({"model": label, "model_file": path.name, "threads": t,
                                     "round": rnd + 1, "position": order.index(tool) + 1,
                                     "tool": tool, "loadavg_1m_before": load, **r})
            streams = None
            if args.streams:
                log(f"streams: {path.name}  threads={t}  {args.streams} streams vs one (Flurry)")
                streams = run_streams(flurry, path, t, args.reps, args.streams)
            med = {tool: {k: statistics.median(v) for k, v in pooled[tool].items()} for tool in pooled}
            peak = {tool: max(v) for tool, v in rss.items()}
            results.append({
                "model": label, "model_file": path.name, "threads": t,
                "median_tps": med, "peak_rss_mib": peak,
                "ratio": {**{k: ratio(med["flurry"][k], med["llama.cpp"][k]) for k, _ in TESTS},
                          "peak_rss": ratio(peak["flurry"], peak["llama.cpp"])},
                "n_samples": {tool: {k: len(v) for k, v in pooled[tool].items()} for tool in pooled},
                "streams": streams,
            })
    elapsed = time.monotonic() - t_start
    log(f"bench: done in {elapsed:.0f}s")

    # Table (Markdown, so it can be pasted into docs/benchmarks.md).
    print(f"\nFlurry vs llama.cpp: median t/s over {args.rounds} rounds x {args.reps} reps "
          f"per tool; ratio = Flurry / llama.cpp; peak RSS measured by wait4.\n")
    print("| model | threads | test | llama.cpp | Flurry | ratio |")
    print("|---|---:|---|---:|---:|---:|")
    for res in results:
        m, t = res["model_file"].removesuffix(".gguf"), res["threads"]
        for k, lbl in TESTS:
            print(f"| {m} | {t} | {lbl} t/s | {res['median_tps']['llama.cpp'][k]:.1f} | "
                  f"{res['median_tps']['flurry'][k]:.1f} | {fmt(res['ratio'][k], '.2f')} |")
        print(f"| {m} | {t} | peak RSS MiB | {res['peak_rss_mib']['llama.cpp']:.0f} | "
              f"{res['peak_rss_mib']['flurry']:.0f} | {fmt(res['ratio']['peak_rss'], '.2f')} |")
    print()
    if args.streams:
        print(f"Continuous batching (Flurry): total generated t/s of {args.streams} concurrent "
              f"greedy requests vs one, median of {args.reps} reps.\n")
        print(f"| model | threads | 1 stream t/s | {args.streams} streams t/s | ratio |")
        print("|---|---:|---:|---:|---:|")
        for res in results:
            st = res["streams"]
            print(f"| {res['model_file'].removesuffix('.gguf')} | {res['threads']} | "
                  f"{st['one_tps']:.1f} | {st['many_tps']:.1f} | {st['ratio']:.2f} |")
        print()

    # The headline: the default model at the highest thread count.
    top = max(threads)
    want = resolve_model(DEFAULT_MODEL)[1].name
    head = next((r for r in results if r["model_file"] == want and r["threads"] == top), None)
    if head is None:
        head = next(r for r in results if r["threads"] == top)
        log(f"note: {want} was not benchmarked; the summary line uses {head['model_file']}")

    if args.json_out:
        doc = {
            "config": {"prompt": PROMPT, "gen": GEN, "depths": list(DEPTHS), "rounds": args.rounds,
                       "reps": args.reps, "threads": threads, "flurry": flurry,
                       "llama_bench": str(llama_bench), "host": platform.node(),
                       "machine": platform.machine(), "cpu_count": os.cpu_count(),
                       "elapsed_s": elapsed},
            "results": results,
            "headline": {"model_file": head["model_file"], "threads": head["threads"],
                         "prefill_ratio": head["ratio"][TESTS[0][0]],
                         "decode_ratio": head["ratio"][TESTS[1][0]],
                         "rss_ratio": head["ratio"]["peak_rss"],
                         "streams_ratio": head["streams"]["ratio"] if head["streams"] else None},
            "runs": raw_runs,
        }
        Path(args.json_out).write_text(json.dumps(doc, indent=1) + "\n")
        log(f"bench: raw numbers written to {args.json_out}")

    print(f"prefill_ratio={fmt(head['ratio'][TESTS[0][0]], '.2f')} "
          f"decode_ratio={fmt(head['ratio'][TESTS[1][0]], '.2f')} "
          f"rss_ratio={fmt(head['ratio']['peak_rss'], '.2f')} "
          f"streams_ratio={fmt(head['streams']['ratio'] if head['streams'] else None, '.2f')}",
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
