"""The `command` runtime: any executable, agent contract JSON on stdin and stdout (DESIGN §5).

Its process tree and the bounds on what it prints: lib/agents/process_tree.py.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path

from lib import config, paths
from lib.agents import AgentError, Runtime, process_tree, reply_bounds
from lib.log import mask_secrets


def _tail(text: str, lines: int = 20) -> list[str]:
    """The last lines of the agent's stderr, secrets masked: they go into the store and the artifact."""
    return [mask_secrets(line) for line in text.strip().splitlines()[-lines:]] if text else []


def _clip(text: str, limit: int) -> str:
    """Masked, then cut: a token cut in half would no longer be recognised."""
    text = mask_secrets(text)
    return text if len(text) <= limit else f"{text[:limit - 3]}..."


class CommandRuntime(Runtime):
    """An executable of the operator's, started from the project root (DESIGN §5, Runtimes)."""

    def label(self, argv: list[str]) -> str:
        """How error lines name the agent: its command line."""
        return _clip(shlex.join(argv), 80)

    def cwd(self) -> Path:
        return paths.root()

    def argv(self) -> list[str]:
        command = self.agent.get("command")
        if not command:
            raise AgentError(f"agent {self.name}: runtime command needs a `command` in config/agents.yaml")
        return shlex.split(command) if isinstance(command, str) else [str(part) for part in command]

    def invoke(self, payload: dict, timeout: float) -> dict:
        argv = self.argv()
        label = self.label(argv)
        limit = int(config.settings()["evolution"]["max_output_bytes"])
        env = {**os.environ, "TDEV_EVOLUTION_ID": payload["evolution_id"]}
        try:
            finished = process_tree.run(argv, stdin=json.dumps(payload).encode(), env=env, cwd=self.cwd(),
                                        timeout=timeout, task_id=payload["task_id"], max_stdout=limit)
        except OSError as failure:
            raise AgentError(f"exit-code: cannot start {argv[0]}: {failure.strerror}") from None
        stderr = finished.stderr.decode("utf-8", "replace")  # stderr is only shown: undecodable bytes are replaced
        if finished.timed_out:
            raise AgentError(f"timeout: {label} did not answer within {timeout:g}s", stderr_tail=_tail(stderr))
        if finished.overflowed:
            raise AgentError(f"bad-output: {label}: the reply is over evolution.max_output_bytes ({limit} bytes)",
                             stderr_tail=_tail(stderr))
        if finished.returncode != 0:
            last = (_tail(stderr, 1) or ["no stderr"])[0]
            raise AgentError(f"exit-code: {label} exited with {finished.returncode}: {last[:300]}",
                             stderr_tail=_tail(stderr))
        try:
            stdout = reply_bounds.utf8(label, finished.stdout)
            document = json.loads(stdout)
            reply_bounds.check_nesting(label, document)
        except RecursionError:
            raise AgentError(f"bad-output: {label}: the reply is nested deeper than {reply_bounds.MAX_DEPTH} levels",
                             stderr_tail=_tail(stderr)) from None
        except reply_bounds.BadOutput as bad:
            bad.stderr_tail = _tail(stderr)
            raise
        except ValueError:
            raise AgentError(f"bad-output: {label} printed no JSON document: {_clip(stdout.strip(), 120)!r}",
                             stderr_tail=_tail(stderr)) from None
        if not isinstance(document, dict) or document.get("status") not in ("ok", "error"):
            raise AgentError(f"bad-output: {label}: expected {{status: ok|error, ...}}, "
                             f"got {_clip(str(document), 120)}", stderr_tail=_tail(stderr))
        document["stderr_tail"] = _tail(stderr)
        return document

    def status(self) -> dict:
        import shutil

        program = self.argv()[0]
        found = shutil.which(program, path=f"{paths.root()}{os.pathsep}{os.environ.get('PATH', '')}") or (
            (paths.root() / program).is_file() and os.access(paths.root() / program, os.X_OK))
        return {"state": "available" if found else "missing", "version": "", "capacity": "per call",
                "detail": " ".join(self.argv())}
