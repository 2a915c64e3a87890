"""End-to-end test harness: starts real `flurry up` processes in throwaway homes.

Environment:
  FLURRY_BIN     the flurry binary (default: $CARGO_TARGET_DIR or ~/.cache/flurry/target,
                 debug build, falling back to the release build)
  FLURRY_MODELS  the shared model store (default ~/.flurry/models)
"""

from __future__ import annotations

import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

DEFAULT_MODEL = "SmolLM2-135M-Instruct.Q4_1"
READY_TIMEOUT_S = 60
KILL_AFTER_S = 10
READY_RE = re.compile(r"Flurry is up\. Web UI: (http://\S+?)/?\s")


def flurry_bin() -> str:
    if os.environ.get("FLURRY_BIN"):
        return os.environ["FLURRY_BIN"]
    target = Path(
        os.environ.get("CARGO_TARGET_DIR", Path.home() / ".cache" / "flurry" / "target")
    )
    for profile in ("debug", "release"):
        candidate = target / profile / "flurry"
        if candidate.exists():
            return str(candidate)
    return str(target / "debug" / "flurry")


def models_dir() -> str:
    return os.environ.get("FLURRY_MODELS", str(Path.home() / ".flurry" / "models"))


def node_env(home: Path) -> dict:
    env = dict(os.environ)
    env["FLURRY_HOME"] = str(home)
    env["FLURRY_MODELS"] = models_dir()
    env["FLURRY_TEST_LIGHT_KDF"] = "1"
    env.setdefault("RUST_LOG", "info")
    env["NO_COLOR"] = "1"
    return env


def run_cli(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Runs `flurry ARGS` with the node's environment (not `up`)."""
    return subprocess.run(
        [flurry_bin(), *args],
        env=node_env(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


class NodeStartError(RuntimeError):
    pass


class Node:
    """One `flurry up` process in `home`. Use `start()`; `stop()` always ends it."""

    def __init__(self, home: Path, listen: str = "127.0.0.1:0", config: str | None = None,
                 args: tuple[str, ...] = (), env: dict | None = None):
        self.home = Path(home)
        self.env = dict(env or {})
        self.home.mkdir(parents=True, exist_ok=True)
        self.listen = listen
        self.args = tuple(args)
        if config is not None:
            (self.home / "flurry.toml").write_text(config)
        self.proc: subprocess.Popen | None = None
        self.url: str | None = None
        self.stdout_lines: list[str] = []
        self._lines: queue.Queue = queue.Queue()
        self._stderr_path: Path | None = None

    # -- lifecycle -------------------------------------------------------------------

    def start(self, timeout: float = READY_TIMEOUT_S) -> "Node":
        logs = self.home.parent / f"{self.home.name}-logs"
        logs.mkdir(exist_ok=True)
        self._stderr_path = logs / f"stderr-{time.time_ns()}.log"
        stderr = open(self._stderr_path, "wb")
        try:
            self.proc = subprocess.Popen(
                [flurry_bin(), "up", "--listen", self.listen, *self.args],
                env={**node_env(self.home), **self.env},
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=stderr,
            )
        finally:
            stderr.close()
        threading.Thread(target=self._pump_stdout, daemon=True).start()

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise NodeStartError(f"no ready line within {timeout}s\n{self.stderr_tail()}")
            try:
                line = self._lines.get(timeout=min(left, 0.5))
            except queue.Empty:
                if self.proc.poll() is not None:
                    raise NodeStartError(
                        f"flurry up exited with {self.proc.returncode} before it was ready\n"
                        f"{self.stderr_tail()}"
                    )
                continue
            if line is None:  # stdout closed
                self.proc.wait(timeout=10)
                raise NodeStartError(
                    f"flurry up closed stdout (exit {self.proc.returncode}) before it was ready\n"
                    f"{self.stderr_tail()}"
                )
            m = READY_RE.search(line + "\n")
            if m:
                self.url = self._connectable(m.group(1))
                return self

    def _pump_stdout(self) -> None:
        assert self.proc and self.proc.stdout
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self.stdout_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    @staticmethod
    def _connectable(url: str) -> str:
        """A wildcard listen address is reached through loopback."""
        parts = urlsplit(url.rstrip("/"))
        host = parts.hostname or "127.0.0.1"
        if host in ("0.0.0.0", "::", "[::]"):
            netloc = f"127.0.0.1:{parts.port}"
            return urlunsplit((parts.scheme, netloc, "", "", ""))
        return url.rstrip("/")

    def stop(self, sig: int = signal.SIGTERM, kill_after: float = KILL_AFTER_S) -> int | None:
        """Sends `sig`, then SIGKILL if the process outlives `kill_after` seconds."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=kill_after)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
            except ProcessLookupError:
                pass
        if self.proc.stdout:
            self.proc.stdout.close()
        return self.proc.returncode

    def kill9(self) -> None:
        assert self.proc
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    # -- helpers ---------------------------------------------------------------------

    @property
    def port(self) -> int:
        return urlsplit(self.url).port

    @property
    def node_json(self) -> Path:
        return self.home / "node.json"

    def info(self) -> dict:
        return json.loads(self.node_json.read_text())

    def stderr_tail(self, n: int = 40) -> str:
        if not self._stderr_path or not self._stderr_path.exists():
            return ""
        lines = self._stderr_path.read_text(errors="replace").splitlines()
        return "--- flurry stderr (tail) ---\n" + "\n".join(lines[-n:])

    def get(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return requests.get(self.url + path, **kw)

    def post(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 120)
        return requests.post(self.url + path, **kw)

    def patch(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return requests.patch(self.url + path, **kw)

    def delete(self, path: str, **kw) -> requests.Response:
        kw.setdefault("timeout", 60)
        return requests.delete(self.url + path, **kw)

    def chat(self, content: str, max_tokens: int = 16, **extra) -> requests.Response:
        body = {
            "model": DEFAULT_MODEL,
            "messages": [{"role": "user", "content": content}],
            "max_tokens": max_tokens,
            "temperature": 0,
            "seed": 42,
        }
        body.update(extra)
        return self.post("/v1/chat/completions", json=body)


# -- fixtures ------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _check_prerequisites():
    binary = flurry_bin()
    if not os.access(binary, os.X_OK):
        pytest.exit(f"flurry binary not found at {binary} (set FLURRY_BIN)", returncode=2)
    if not (Path(models_dir()) / f"{DEFAULT_MODEL}.gguf").exists():
        pytest.exit(
            f"{DEFAULT_MODEL}.gguf not in {models_dir()} (scripts/fetch-models.sh)", returncode=2
        )


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory):
    """One node per module, for tests that do not disturb it."""
    node = Node(tmp_path_factory.mktemp("shared") / "home")
    try:
        node.start()
        yield node
    finally:
        node.stop()


@pytest.fixture
def node_factory(tmp_path):
    """Makes nodes that are always stopped at teardown: node_factory(home=None, config=None, listen=...)."""
    nodes: list[Node] = []
    counter = iter(range(1000))

    def make(home: Path | None = None, config: str | None = None, listen="127.0.0.1:0",
             start: bool = True, args: tuple[str, ...] = (), env: dict | None = None) -> Node:
        node = Node(home or tmp_path / f"home{next(counter)}", listen=listen, config=config,
                    args=args, env=env)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield make
    for node in nodes:
        node.stop()


def p2p_addr(node) -> str:
    """The node's first p2p listen address with its peer id."""
    s = node.get("/api/net/status").json()
    return f"{s['listen'][0]}/p2p/{s['peer_id']}"


def wait_for(what: str, fn, timeout: float, every: float = 0.25):
    """Polls `fn` until it returns something true (and returns it), or fails after
    `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(every)
