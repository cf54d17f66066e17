"""Push a saved (packed) model folder to the Hub as one commit."""

from __future__ import annotations

import logging
import os

from huggingface_hub import HfApi, get_token
from huggingface_hub.hf_api import DEFAULT_IGNORE_PATTERNS
from huggingface_hub.utils import filter_repo_objects
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

from ..utils import STAGING_PREFIX

logger = logging.getLogger(__name__)

# HfHubHTTPError covers the Hub's answers (401, 404, 500...); refused connections and timeouts come as the base
# error of huggingface_hub's HTTP client (httpx, or the fork it ships with), which HfHubHTTPError derives from.
HUB_ERRORS = (OfflineModeIsEnabled, HfHubHTTPError, OSError, *HfHubHTTPError.__bases__)


# A trainer's output_dir is also the packed model's folder: its training checkpoints (full-precision shadows,
# optimizer state) stay local, as transformers' own push leaves them, and so does an interrupted save's staging folder.
IGNORE_PATTERNS = [*DEFAULT_IGNORE_PATTERNS, f"{PREFIX_CHECKPOINT_DIR}-*", f"{STAGING_PREFIX}*"]


class PushError(RuntimeError):
    """Pushing failed; the local folder is kept and named in the message."""


def planned_upload(folder: str) -> list[str]:
    """The files `push_folder` would upload from ``folder`` (relative paths), with upload_folder's own filters."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"Nothing to push: {folder} is not a folder.")
    paths = sorted(os.path.relpath(os.path.join(d, f), folder) for d, _, files in os.walk(folder) for f in files)
    return list(filter_repo_objects(paths, ignore_patterns=IGNORE_PATTERNS))


def push_folder(
    folder: str,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload hfqd packed model",
    api: HfApi | None = None,
    revision: str | None = None,
    dry_run: bool = False,
) -> str:
    """Create ``repo_id`` (and the branch ``revision``) if needed and upload ``folder`` in one commit; returns the
    commit URL. Training checkpoints (`checkpoint-*`) in ``folder`` are not uploaded.

    With ``dry_run``, nothing is sent: the return value lists the repository and every file that would be uploaded.

    Raises:
        PushError: no token, Hub unreachable or refusing the upload. The message says what to do; ``folder`` is
            left as it is, so nothing trained is lost.
    """
    if dry_run:
        files = planned_upload(folder)
        target = repo_id if revision is None else f"{repo_id} (branch {revision})"
        return f"dry run: would upload {len(files)} files from {folder} to {target}:\n" + "\n".join(
            f"  {name}" for name in files)
    api = api or HfApi(token=token)
    try:
        if not (token or api.token or get_token()):
            raise LocalTokenNotFoundError("no token")
        api.create_repo(repo_id, private=private, exist_ok=True, token=token)
        if revision is not None and not revision.startswith("refs/pr/"):  # the Hub refuses commits to a new branch
            api.create_branch(repo_id, branch=revision, exist_ok=True, token=token)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message, token=token,
                                 revision=revision, ignore_patterns=IGNORE_PATTERNS)
    except LocalTokenNotFoundError as err:
        raise PushError(
            f"No Hugging Face token found, so {repo_id} was not pushed. Run `hf auth login` (or set HF_TOKEN) and "
            f"push again; the model is saved in {folder}."
        ) from err
    except HUB_ERRORS as err:
        raise PushError(f"Could not push to {repo_id} ({err}). The model is saved in {folder}.") from err
    url = getattr(info, "commit_url", str(info))
    logger.info(f"Pushed {folder} to {repo_id}: {url}")
    return url
