"""Push a saved (packed) model folder to the Hub as one commit."""

from __future__ import annotations

import logging

from huggingface_hub import HfApi, get_token
from huggingface_hub.errors import HfHubHTTPError, LocalTokenNotFoundError, OfflineModeIsEnabled

logger = logging.getLogger(__name__)

# HfHubHTTPError covers the Hub's answers (401, 404, 500...); refused connections and timeouts come as the base
# error of huggingface_hub's HTTP client (httpx, or the fork it ships with), which HfHubHTTPError derives from.
HUB_ERRORS = (OfflineModeIsEnabled, HfHubHTTPError, OSError, *HfHubHTTPError.__bases__)


class PushError(RuntimeError):
    """Pushing failed; the local folder is kept and named in the message."""


def push_folder(
    folder: str,
    repo_id: str,
    private: bool | None = None,
    token: str | None = None,
    commit_message: str = "Upload hfqd packed model",
    api: HfApi | None = None,
    revision: str | None = None,
) -> str:
    """Create ``repo_id`` if needed and upload ``folder`` in one commit; returns the commit URL.

    Raises:
        PushError: no token, Hub unreachable or refusing the upload. The message says what to do; ``folder`` is
            left as it is, so nothing trained is lost.
    """
    api = api or HfApi(token=token)
    try:
        if not (token or api.token or get_token()):
            raise LocalTokenNotFoundError("no token")
        api.create_repo(repo_id, private=private, exist_ok=True, token=token)
        info = api.upload_folder(repo_id=repo_id, folder_path=folder, commit_message=commit_message, token=token,
                                 revision=revision)
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
