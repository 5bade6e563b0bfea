"""The real parts a chaos run starts and breaks: PostgreSQL, Redis, the LLM server, the bucket mount, role processes."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.servers.llm_server import LlmServer

__all__ = ["BucketMount", "LlmControl", "Postgres", "Redis", "RoleProcs", "free_port"]

REPO = Path(__file__).resolve().parents[2]
FAKETIME_LIB = Path("/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Postgres:
    """The embedded server of the ``pgserver`` wheel, restarted with ``pg_ctl restart -m immediate``."""

    def __init__(self, state: Path) -> None:
        import pgserver

        self.server = pgserver.get_server(state / "pg", cleanup_mode="stop")
        self.url = str(self.server.get_uri())

    def restart_immediate(self) -> None:
        """Every backend is killed without a checkpoint (crash recovery on start), then it comes back."""
        from pgserver._commands import pg_ctl

        pg_ctl(
            ["-w", "-m", "immediate", "restart"], pgdata=self.server.pgdata, user=self.server.system_user, timeout=60
        )

    def stop(self) -> None:
        self.server.cleanup()


class Redis:
    """One ``redis-server`` on a loopback port, killed with SIGKILL and started again on the same port."""

    def __init__(self, state: Path) -> None:
        exe = shutil.which("redis-server")
        if exe is None:
            raise FileNotFoundError("redis-server is not installed (apt-get install -y redis-server)")
        self.exe = exe
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.log = state / "redis.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [self.exe, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        end = time.monotonic() + 10
        while time.monotonic() < end:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def stop(self) -> None:
        self.kill()


class LlmControl:
    """The OpenAI-compatible test server on a fixed port: up, down (no listener), hanging or answering 429."""

    def __init__(self) -> None:
        self.port = free_port()
        self.api_key = "chaos-key"
        self.server: LlmServer | None = None
        self.up()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def up(self) -> None:
        if self.server is None:
            server = LlmServer(api_key=self.api_key, port=self.port, retry_after_s=1)
            server.hang_s = 8.0
            self.server = server
            server.start()

    def down(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def mode(self, mode: str) -> None:
        assert self.server is not None
        self.server.mode = mode

    def calls(self) -> int:
        return 0 if self.server is None else self.server.completions()


class BucketMount:
    """The bucket folder on a size-limited tmpfs, so that "disk full" is the kernel's ENOSPC.

    Mounting needs root (or CAP_SYS_ADMIN); ``available`` says whether it worked, and ``why`` why not.
    """

    def __init__(self, path: Path, size_mb: int) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.mounted = False
        self.why = ""
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0777", "tmpfs", str(path)],
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            self.mounted = True
        else:
            self.why = (done.stderr or done.stdout).strip() or f"mount exited {done.returncode}"
        self.filler = path / ".chaos-filler"

    def fill(self) -> int:
        """Take every free byte; returns how many were taken."""
        taken = 0
        chunk = b"\0" * (1 << 20)
        with self.filler.open("wb", buffering=0) as out:
            for size in (1 << 20, 4096, 1):
                try:
                    while True:
                        taken += out.write(chunk[:size])
                except OSError:
                    continue
        return taken

    def free(self) -> None:
        self.filler.unlink(missing_ok=True)

    def unmount(self) -> None:
        if self.mounted:
            subprocess.run(["umount", "-l", str(self.path)], capture_output=True)
            self.mounted = False


@dataclass
class RoleSpec:
    name: str  # the process's name in the run (a role may run in more than one process)
    roles: list[str]
    skew: str | None = None  # FAKETIME offset, e.g. "+5m"


@dataclass
class RoleProcs:
    """``contentfn local worker ROLE`` processes, started, SIGKILLed and started again as a supervisor would."""

    env: dict[str, str]
    logs: Path
    specs: list[RoleSpec]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    exits: dict[str, list[int]] = field(default_factory=dict)  # exits nobody asked for (name -> codes)

    def start(self, name: str) -> None:
        spec = next(s for s in self.specs if s.name == name)
        env = dict(self.env)
        argv = [sys.executable, "-m", "local.cli", "local", "worker", *spec.roles]
        if spec.skew is not None:
            if not FAKETIME_LIB.is_file():
                raise FileNotFoundError(f"libfaketime is not installed ({FAKETIME_LIB}): apt-get install -y faketime")
            env.update(LD_PRELOAD=str(FAKETIME_LIB), FAKETIME=spec.skew, FAKETIME_DONT_FAKE_MONOTONIC="1")
            argv = [sys.executable, "-m", "tests.chaos.skewed", "local", "worker", *spec.roles]
        with (self.logs / f"{name}.log").open("ab") as log:
            self.procs[name] = subprocess.Popen(argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def start_all(self) -> None:
        for spec in self.specs:
            self.start(spec.name)

    def kill(self, name: str) -> None:
        proc = self.procs.pop(name)
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)

    def supervise(self) -> list[str]:
        """Start again any process that exited on its own; returns their names."""
        restarted = []
        for name, proc in list(self.procs.items()):
            code = proc.poll()
            if code is not None:
                self.exits.setdefault(name, []).append(code)
                self.start(name)
                restarted.append(name)
        return restarted

    def stop_all(self) -> None:
        for proc in self.procs.values():
            proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        self.procs.clear()


def query(url: str, sql: str, params: Any = None) -> list[tuple[Any, ...]]:
    with psycopg.connect(url, connect_timeout=5) as conn:
        return conn.execute(sql, params).fetchall()


def env_for(base: dict[str, str], **settings: str) -> dict[str, str]:
    env = {k: v for k, v in base.items() if not k.startswith("CONTENTFN_")}
    env.update({f"CONTENTFN_{k.upper()}": v for k, v in settings.items()})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), base.get("PYTHONPATH", "")) if p)
    return env
