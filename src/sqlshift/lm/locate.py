"""Finding a model before any work starts: a typo or an unreachable Hub is one line at once.

Loading a Hub model that is not cached makes transformers retry the download for about a minute before it fails;
a study would first build its data and validate everything else. So every command resolves its model spec first:
a local folder, a ``.gguf`` file or ``embedded`` must exist; a Hub id must be in the local cache or, with the Hub
allowed, answer one metadata request (no retries).
"""

from __future__ import annotations

import difflib
import functools
from pathlib import Path

from sqlshift.errors import ModelError
from sqlshift.lm.models import ModelSource, resolve_spec

HUB_TIMEOUT_S = 10.0
KNOWN = ["embedded"]  # the one spec that is neither a path nor a Hub id


@functools.lru_cache(maxsize=32)  # found once per process (failures are not cached: they raise)
def locate_model(spec: str | None) -> ModelSource:
    """``resolve_spec`` plus, for a Hub id, proof that it can be loaded now (cached, or on a reachable Hub)."""
    source = resolve_spec(spec)
    if spec in (None, "", "embedded") or source.gguf_file or Path(str(spec)).expanduser().exists():
        return source
    from huggingface_hub import constants, try_to_load_from_cache

    if isinstance(try_to_load_from_cache(spec, "config.json"), str):
        return source
    near = difflib.get_close_matches(str(spec), KNOWN, n=1, cutoff=0.75)
    dym = f" (did you mean {near[0]}?)" if near else ""
    what = f"model '{spec}' is not a local folder, a .gguf file or 'embedded'{dym}"
    if constants.HF_HUB_OFFLINE:
        raise ModelError(f"{what}, and as a Hub id it is not in the local cache (HF_HUB_OFFLINE is set)",
                         "pass a local folder, a .gguf file or embedded, or unset HF_HUB_OFFLINE to download it")
    check_on_hub(str(spec), what)
    return source


def check_on_hub(repo_id: str, what: str) -> None:
    """One metadata request, no retries: the id must exist (gated or private ones pass: loading says more)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, HFValidationError, RepositoryNotFoundError

    try:
        HfApi().model_info(repo_id, timeout=HUB_TIMEOUT_S)
    except GatedRepoError:
        return
    except (RepositoryNotFoundError, HFValidationError):
        raise ModelError(f"{what}, and no such model is on the Hugging Face Hub",
                         "check the id (owner/name), or pass a local folder, a .gguf file or embedded") from None
    except network_errors() as e:
        raise ModelError(f"{what}, and the Hugging Face Hub cannot be reached to find it ({type(e).__name__}: {e})",
                         "check the network, or set HF_HUB_OFFLINE=1 and pass a local folder or .gguf") from None


def network_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a failed Hub request raises: httpx's (huggingface_hub 1.x), httpx2's (2.x), requests' OSError
    (before 1.x)."""
    import importlib

    errors: list[type[BaseException]] = [OSError, TimeoutError]
    for name in ("httpx", "httpx2"):
        try:
            errors.append(importlib.import_module(name).HTTPError)
        except (ImportError, AttributeError):
            pass
    return tuple(errors)
