"""``VLLMServer``: a local OpenAI-compatible ``vllm serve`` process, for ``OpenAIWorker``
tests and benchmarks.

It runs ``python -m vllm.entrypoints.openai.api_server`` (the CPU build has no ``vllm``
console script) in its own process group on loopback, so ``kill()`` can end the API server
and its engine processes together (SIGKILL simulating a crash) and ``stop()`` leaves
nothing behind. ``free_port`` finds a port for it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from workers.catalog import resolve
from workers.parent_death import die_with_this_process
from workers.vllm.engine import cpu_only

__all__ = ["VLLMServer", "free_port"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class VLLMServer:
    """A local OpenAI-compatible vLLM server process (its own process group), on loopback.

    ``start()`` launches it and ``wait_ready()`` polls ``/health``; ``kill()`` ends the whole
    process group (the API server and its engine processes), SIGKILL simulating a crash;
    ``start()`` again restarts it on the same port. ``stop()`` always leaves nothing behind.

    Example:
        >>> server = VLLMServer("smollm2-135m-instruct", served_name="smollm2")  # doctest: +SKIP
        >>> with server:  # doctest: +SKIP
        ...     worker = OpenAIWorker(server.url, model="smollm2")
    """

    def __init__(
        self,
        model: str | Path,
        *,
        served_name: str,
        port: int | None = None,
        max_model_len: int = 1024,
        kv_cache_gib: float = 0.25,
        dtype: str = "float32",
        enforce_eager: bool = True,
        seed: int = 0,
        cpus: str | None = None,
        extra_args: Sequence[str] = (),
        log_path: str | Path | None = None,
    ) -> None:
        """``cpus``: cores to bind the engine's threads to (``VLLM_CPU_OMP_THREADS_BIND``,
        e.g. "0" or "0-1"), so replicas on one CPU machine need not fight over cores."""
        self.model = str(resolve(str(model)))
        self.served_name = served_name
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.cpus = cpus
        self.log_path = Path(log_path) if log_path is not None else None
        self.args = [
            sys.executable,
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            self.model,
            "--served-model-name",
            served_name,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dtype",
            dtype,
            "--max-model-len",
            str(max_model_len),
            "--kv-cache-memory-bytes",
            str(int(kv_cache_gib * 2**30)),
            "--seed",
            str(seed),
            "--generation-config",
            "vllm",  # the request decides sampling, not the model's generation_config.json
            "--disable-uvicorn-access-log",
            *(["--enforce-eager"] if enforce_eager else []),
            # the CPU runner's seeded-sampling crash on chunked prefill: see engine_args
            *(["--no-enable-chunked-prefill"] if cpu_only() else []),
            *extra_args,
        ]
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> VLLMServer:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"the server on port {self.port} is already running")
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")
        env.pop("VLLM_CPU_KVCACHE_SPACE", None)  # it would override --kv-cache-memory-bytes
        if self.cpus is not None:
            env["VLLM_CPU_OMP_THREADS_BIND"] = self.cpus
        log = open(self.log_path, "ab") if self.log_path is not None else subprocess.DEVNULL  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                self.args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
            die_with_this_process(self.process.pid, group=True)
        finally:
            if log is not subprocess.DEVNULL:
                log.close()  # type: ignore[union-attr]
        return self

    def wait_ready(self, timeout_s: float = 300.0) -> VLLMServer:
        """Block until ``GET /health`` answers 200; RuntimeError if the process exits first."""
        import httpx

        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                code = None if self.process is None else self.process.returncode
                raise RuntimeError(
                    f"vLLM server exited (code {code}) before it was ready{self._tail()}"
                )
            try:
                if httpx.get(f"{self.url}/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"vLLM server not ready after {timeout_s:g}s{self._tail()}")

    def kill(self, sig: int = signal.SIGKILL, wait_s: float = 30.0) -> None:
        """Signal the server's process group and wait for the server to exit."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    def stop(self) -> None:
        """Terminate gracefully (SIGTERM, then SIGKILL after 15 s); kill any stragglers."""
        process = self.process
        if process is None:
            return
        self.kill(signal.SIGTERM, wait_s=15.0)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)  # engine processes left in the group

    def __enter__(self) -> VLLMServer:
        return self.start().wait_ready()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        tail = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        return "; log tail:\n" + "\n".join(tail)
