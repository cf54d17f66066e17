"""Small helpers shared by recipes and scripts."""

from __future__ import annotations

import os
import platform
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from urllib.parse import urlparse

from huggingface_hub import constants


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub endpoint accepts a TCP connection (fast check, instead of waiting for HTTP retries)."""
    if constants.HF_HUB_OFFLINE:
        return False
    url = urlparse(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname, port), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_available(name: str, what: str, hint: str) -> None:
    """Fail fast, with one clear sentence, when ``name`` is not a local path and the Hub cannot be reached.

    Without this check an offline `from_pretrained` spends half a minute in HTTP retries before failing. With
    `HF_HUB_OFFLINE=1` the check is skipped: the user asked for the local cache, and the library says what is
    missing from it.

    Args:
        name: a local path or a Hub id.
        what: what it is, for the message (e.g. "teacher model").
        hint: what to do instead when offline.
    """
    if os.path.exists(name) or constants.HF_HUB_OFFLINE:
        return
    if name.startswith((".", "/", "~")):
        raise SystemExit(f"The {what} {name!r} does not exist. {hint}")
    if not hub_reachable():
        raise SystemExit(f"The {what} {name!r} is not a local path and the Hugging Face Hub cannot be reached. {hint}")


def git_commit(path: str = ".") -> str:
    """Short commit of the repository holding ``path``, or "unknown"."""
    try:
        out = subprocess.run(["git", "-C", path, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
        dirty = subprocess.run(["git", "-C", path, "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except OSError:
        return "unknown"


def machine_description() -> str:
    """CPU/GPU summary for results files."""
    import torch

    cpu = f"{os.cpu_count()} CPU cores ({platform.machine()})"
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, {cpu}"
    return cpu


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


@contextmanager
def atomic_directory(final: str):
    """Yield a temporary folder beside ``final``; on success it replaces ``final`` in one rename.

    An exception (or an interrupted process) leaves any previous ``final`` untouched and removes the temporary
    folder, so readers never see a half-written checkpoint.
    """
    final = os.path.abspath(final)
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(final)}.tmp-")
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = None
    if os.path.exists(final):
        old = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(final)}.old-")
        os.rmdir(old)
        os.replace(final, old)
    os.replace(tmp, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def command_line(script: str) -> str:
    """The command that produced a results file, for the record (``script`` is the recipe's path in the repo)."""
    import sys

    if os.path.basename(sys.argv[0]) != os.path.basename(script):
        return f"{script} main() called from Python"
    launcher = "accelerate launch" if any(key.startswith("ACCELERATE_") for key in os.environ) else "python"
    return " ".join([f"{launcher} {script}"] + sys.argv[1:])


def run_header(command: str, commit: str, **extra) -> dict:
    """The provenance lines of a results file: command, commit, machine, date, then ``extra``."""
    from datetime import datetime, timezone

    return {
        "command": command,
        "commit": commit,
        "machine": machine_description(),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        **extra,
    }
