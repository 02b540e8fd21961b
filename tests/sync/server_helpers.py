"""A real `fieldsync serve` process for the tests that crash it and load it.

A cold `fieldsync serve` spends 3-4 s importing the app on a 2-core machine, and the crash test
restarts the server 20 times. So by default the server is forked from a warm launcher (this
module run as `python -m tests.sync.server_helpers`) that has imported the app once: each child
runs the `fieldsync serve` command itself (uvicorn, one worker, no reload) in a process of its own
with its own sockets and database connections, and is ready in a fraction of a second. The test
kills that child with SIGKILL, exactly as the kernel would kill a server. Set
FIELDSYNC_TEST_COLD_SERVER=1 to exec `fieldsync serve` afresh at every start instead.

Kept to the standard library and httpx, so the launcher imports nothing of the tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import IO

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIELDSYNC = str(Path(sys.executable).with_name("fieldsync"))
COLD = os.environ.get("FIELDSYNC_TEST_COLD_SERVER", "") not in ("", "0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def server_env(database_url: str, data_dir: Path, *, port: int, **extra: str) -> dict[str, str]:
    """The environment of a fresh deployment on `database_url`, quiet, on a loopback port."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FIELDSYNC_")}
    env.update(
        FIELDSYNC_DATABASE_URL=database_url,
        FIELDSYNC_DATA_DIR=str(data_dir),
        FIELDSYNC_ENVIRONMENT="development",
        FIELDSYNC_SECRET_KEY="server-test-signing-key-" + "s" * 32,
        FIELDSYNC_PII_KEY="server-test-pii-key-" + "p" * 32,
        FIELDSYNC_HOST="127.0.0.1",
        FIELDSYNC_PORT=str(port),
        FIELDSYNC_LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def login(base: str, username: str, password: str, *, device_id: str | None = None) -> str:
    """An access token, by the password grant, as the phone logs in."""
    form = {"grant_type": "password", "username": username, "password": password}
    if device_id is not None:
        form["device_id"] = device_id
    response = httpx.post(f"{base}/api/v1/auth/token", data=form, timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


class Server:
    """`fieldsync serve` on a fixed loopback port that can be started, SIGKILLed and restarted."""

    def __init__(self, env: dict[str, str], *, log_path: Path, cold: bool = COLD) -> None:
        self.env = env
        self.base = f"http://{env['FIELDSYNC_HOST']}:{env['FIELDSYNC_PORT']}"
        self.log_path = log_path
        self.cold = cold
        self.pid: int | None = None
        self.starts = 0
        self._log: IO[bytes] = open(log_path, "ab")  # noqa: SIM115 (closed in close())
        self._launcher: subprocess.Popen[str] | None = None
        self._cold: subprocess.Popen[bytes] | None = None

    # --- the two ways of starting -------------------------------------------------------

    def _launch(self) -> int:
        if self.cold:
            self._cold = subprocess.Popen(
                [FIELDSYNC, "serve"], env=self.env, stdout=self._log, stderr=self._log
            )
            return self._cold.pid
        if self._launcher is None:
            self._launcher = subprocess.Popen(
                [sys.executable, "-m", "tests.sync.server_helpers"],
                cwd=PROJECT_ROOT,
                env=self.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self._log,
                text=True,
                bufsize=1,
            )
        return int(self._ask("start"))

    def _ask(self, command: str) -> str:
        launcher = self._launcher
        assert launcher is not None and launcher.stdin and launcher.stdout
        launcher.stdin.write(command + "\n")
        launcher.stdin.flush()
        answer = launcher.stdout.readline()
        if not answer:
            raise RuntimeError(f"the server launcher died; see {self.log_path}:\n{self.log_tail()}")
        return answer.strip()

    def _reap(self) -> int | None:
        """Wait for the server process to be gone; its exit code (negative: the signal)."""
        if self.pid is None:
            return None
        pid, self.pid = self.pid, None
        if self.cold:
            assert self._cold is not None
            return self._cold.wait(timeout=30)
        answer = self._ask(f"wait {pid}")
        return int(answer) if answer.lstrip("-").isdigit() else None

    def _alive(self) -> bool:
        if self.cold:
            return self._cold is not None and self._cold.poll() is None
        return self._ask(f"alive {self.pid}") == "yes"

    # --- what the tests use ---------------------------------------------------------------

    def start(self, timeout: float = 60) -> float:
        """Start the server and wait until /readyz answers 200; the seconds that took."""
        assert self.pid is None, "already running"
        started = time.monotonic()
        self.pid = self._launch()
        self.starts += 1
        with httpx.Client(timeout=1) as client:
            while True:
                try:
                    if client.get(f"{self.base}/readyz").status_code == 200:
                        return time.monotonic() - started
                except httpx.TransportError:
                    pass
                if not self._alive():
                    code = self._reap()
                    raise RuntimeError(f"server exited ({code}) before ready:\n{self.log_tail()}")
                if time.monotonic() - started > timeout:
                    raise RuntimeError(f"server not ready in {timeout} s:\n{self.log_tail()}")
                time.sleep(0.02)

    def kill(self) -> None:
        """SIGKILL the server, as a power cut or the OOM killer would, and wait until it is gone."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGKILL)
        code = self._reap()
        assert code == -signal.SIGKILL, f"server exited with {code} before it was killed"

    def stop(self) -> None:
        """Stop the server gracefully (SIGTERM), SIGKILL if it takes more than 10 s."""
        if self.pid is None:
            return
        os.kill(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while self._alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self._alive():
            os.kill(self.pid, signal.SIGKILL)
        self._reap()

    def terminate(self) -> None:
        """Send SIGTERM, as a supervisor stopping the server does, without waiting."""
        assert self.pid is not None
        os.kill(self.pid, signal.SIGTERM)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to `timeout` s for the server to exit by itself; its exit code."""
        deadline = time.monotonic() + timeout
        while self._alive():
            assert time.monotonic() < deadline, f"still running after {timeout} s"
            time.sleep(0.05)
        return self._reap()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            if self._launcher is not None:
                assert self._launcher.stdin is not None
                self._launcher.stdin.close()  # EOF: the launcher stops what is left and exits
                try:
                    self._launcher.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self._launcher.kill()
                    self._launcher.wait()
                if self._launcher.stdout is not None:
                    self._launcher.stdout.close()
                self._launcher = None
            self._log.close()

    def log_tail(self, lines: int = 40) -> str:
        self._log.flush()
        text = self.log_path.read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def __enter__(self) -> Server:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# --- the launcher (runs as a process of its own) ------------------------------------------


def _serve_child() -> None:
    """In the forked child: run `fieldsync serve`, as the command line would."""
    from app import cli

    os.dup2(2, 1)  # the command's own output goes to the log, not into the protocol pipe
    code = 0
    try:
        sys.argv = ["fieldsync", "serve"]
        cli.main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
        code = 1
    finally:
        sys.stderr.flush()
        os._exit(code)


def _launcher() -> None:
    """Import the app once, then fork a server per `start`; answers one line per command."""
    # Everything `fieldsync serve` would import, so that a child only builds the app and binds.
    import uvicorn.lifespan.on
    import uvicorn.loops.auto
    import uvicorn.protocols.http.auto
    import uvicorn.protocols.websockets.auto  # noqa: F401
    from sqlalchemy.orm import configure_mappers

    from app import cli, main
    from app.core.config import get_settings

    if get_settings().effective_database_url.startswith("postgresql"):
        import asyncpg  # noqa: F401
    else:
        import aiosqlite  # noqa: F401
    main.create_app()  # the modules the factory imports lazily
    configure_mappers()
    get_settings.cache_clear()
    del cli

    answers = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)
    children: set[int] = set()
    exited: dict[int, int] = {}  # reaped by `alive`, status kept for `wait`
    for line in sys.stdin:
        command, *args = line.split()
        if command == "start":
            pid = os.fork()
            if pid == 0:
                answers.close()
                _serve_child()
            children.add(pid)
            answers.write(f"{pid}\n")
        elif command == "alive":
            pid = int(args[0])
            if pid in children:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    children.discard(pid)
                    exited[pid] = os.waitstatus_to_exitcode(status)
            answers.write("yes\n" if pid in children else "no\n")
        elif command == "wait":
            pid = int(args[0])
            if pid in children:
                _, status = os.waitpid(pid, 0)
                children.discard(pid)
                exited[pid] = os.waitstatus_to_exitcode(status)
            answers.write(f"{exited.pop(pid, 'unknown')}\n")
        else:
            answers.write(f"error: unknown command {command}\n")
    for pid in children:  # the test is gone (EOF): leave nothing behind
        os.kill(pid, signal.SIGTERM)
    for pid in children:
        os.waitpid(pid, 0)


if __name__ == "__main__":
    _launcher()
