"""Small helpers shared by recipes and scripts."""

from __future__ import annotations

import ctypes
import os
import platform
import shlex
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from urllib.parse import urlparse

from huggingface_hub import constants, try_to_load_from_cache

STAGING_PREFIX = ".hfqd-staging-"  # the temporary folder of `replace_files`, inside the folder it replaces files in


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


def ensure_available(name: str, what: str, hint: str, repo_type: str = "model") -> None:
    """Fail fast, with one clear sentence, when ``name`` is neither a local path nor reachable on the Hub.

    Without this check an offline `from_pretrained` spends half a minute in HTTP retries before failing. With
    `HF_HUB_OFFLINE=1` (how air-gapped machines run) a model must be in the local Hub cache; datasets have their
    own cache, which `load_dataset` checks itself.

    Args:
        name: a local path or a Hub id.
        what: what it is, for the message (e.g. "teacher model").
        hint: what to do instead when offline.
        repo_type: "model" or "dataset".
    """
    if os.path.exists(name):
        return
    if name.startswith((".", "/", "~")):
        raise SystemExit(f"The {what} {name!r} does not exist. {hint}")
    if constants.HF_HUB_OFFLINE:
        if repo_type == "model" and not isinstance(try_to_load_from_cache(name, "config.json"), str):
            raise SystemExit(
                f"The {what} {name!r} is not in the local Hugging Face cache ({constants.HF_HUB_CACHE}) and "
                f"HF_HUB_OFFLINE=1 forbids downloading it. {hint}"
            )
        return
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


def _cpu_model() -> str | None:
    """The CPU's model name, where Linux says it: speed ratios measured on different CPUs differ (int8 kernels)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), None)
    except OSError:
        return None


def machine_description() -> str:
    """CPU/GPU summary for results files. No comma in the CPU part: "GPU, CPU" is split on the first one."""
    import torch

    model = _cpu_model()
    detail = platform.machine() + (f"; {model.replace(',', ' ')}" if model else "")
    cpu = f"{os.cpu_count()} CPU cores ({detail})"
    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}, {cpu}"
    return cpu


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file, so readers never see half a file."""
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def _exchange(a: str, b: str) -> bool:
    """Swap two paths in one step (Linux `renameat2(RENAME_EXCHANGE)`); False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


def _check_folder_target(path: str) -> None:
    if os.path.exists(path) and not os.path.isdir(path):
        raise NotADirectoryError(f"{path} is a file, not a folder; choose another output path or move the file.")


def _new_folder_mode() -> int:
    """What `os.makedirs` would give a new folder (0777 less the umask), as `save_pretrained` folders have."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o777 & ~umask


@contextmanager
def atomic_directory(final: str):
    """Yield a temporary folder beside ``final``; on success it takes the place of ``final`` as a whole.

    For folders a writer owns entirely (an export, a teacher it trains). An exception (or an interrupted process)
    leaves any previous ``final`` untouched and removes the temporary folder. An existing ``final`` is swapped with
    the new one in a single `renameat2` exchange, so at no moment is there no folder at ``final``.

    Raises:
        NotADirectoryError: ``final`` is an existing file.
    """
    final = os.path.abspath(final)
    _check_folder_target(final)
    parent = os.path.dirname(final)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=parent, prefix=f".{os.path.basename(final)}.tmp-")
    os.chmod(tmp, _new_folder_mode())
    try:
        yield tmp
        if not os.path.exists(final):
            os.replace(tmp, final)
        elif not _exchange(tmp, final):
            old = f"{tmp}.old"
            os.replace(final, old)
            os.replace(tmp, final)
            tmp = old
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def replace_files(final: str, remove: tuple[str, ...] = (), last: tuple[str, ...] = ("config.json",)):
    """Yield a staging folder; on success every file written there replaces its namesake in ``final``.

    For folders shared with other writers (a Trainer's `output_dir` holds `checkpoint-*` folders): only the files
    written are replaced, each by one atomic rename; nothing else in ``final`` is touched, except the files
    named in ``remove`` (files this writer owns but did not write this time, e.g. stale shadows). ``last`` are moved
    after the others, so a reader that trusts `config.json` finds the new weights beside it. An exception leaves
    ``final`` as it was.

    Raises:
        NotADirectoryError: ``final`` is an existing file.
    """
    final = os.path.abspath(final)
    _check_folder_target(final)
    os.makedirs(final, exist_ok=True)
    tmp = tempfile.mkdtemp(dir=final, prefix=STAGING_PREFIX)  # same file system, so renames are atomic
    try:
        yield tmp
        names = sorted(os.listdir(tmp), key=lambda name: name in last)
        for name in names:
            source, target = os.path.join(tmp, name), os.path.join(final, name)
            if os.path.isdir(source):
                raise IsADirectoryError(f"replace_files moves files only, got the folder {name}.")
            os.replace(source, target)
        for name in remove:
            if name not in names and os.path.isfile(os.path.join(final, name)):
                os.remove(os.path.join(final, name))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def command_line(script: str) -> str:
    """The command that produced a results file, for the record (``script`` is the recipe's path in the repo)."""
    import sys

    if os.path.basename(sys.argv[0]) != os.path.basename(script):
        return f"{script} main() called from Python"
    launcher = "accelerate launch" if any(key.startswith("ACCELERATE_") for key in os.environ) else "python"
    return " ".join([f"{launcher} {script}"] + [shlex.quote(arg) for arg in sys.argv[1:]])  # runnable as written


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


def end_processes() -> None:
    """At the end of a script run by `accelerate launch`: wait for every process, then destroy the process group.

    Left to interpreter exit, gloo's worker threads can outlive Python and abort a process whose work is done
    ("terminate called without an active exception"), so a run that wrote all its results still fails. The barrier
    first keeps one process from tearing the group down while another still talks to it. A no-op in one process.
    """
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
