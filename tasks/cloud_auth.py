"""Google Cloud credentials from `cloud.credentials`: adc, anonymous or a service-account key file.

Every failure is a CloudAuthError with one line that names the key and what to
do, instead of google.auth's multi-line traceback. Messages never carry the
content of a key file, only its path and what is wrong with it.
"""

from __future__ import annotations

import json
import os
from typing import Any

SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]
ADC_MISSING = (
    "cloud.credentials=adc but no application default credentials were found: run "
    "`gcloud auth application-default login` (or set cloud.credentials to a service-account JSON file)"
)


class CloudAuthError(RuntimeError):
    """Credentials cannot be had; the message is one line naming cloud.credentials."""

    user_facing = True  # the child reports the message alone, without a traceback


def shown(path: str) -> str:
    """A key file as messages and records show it: its name only (its folder is a machine path)."""
    return path if os.sep not in path else f"…{os.sep}{os.path.basename(path)}"


def label(cloud: Any) -> str:
    """cloud.credentials for a summary line: the mode, or the key file's name."""
    mode = str(getattr(cloud, "credentials", None) or "adc")
    return mode if mode in ("adc", "anonymous") else f"key file {shown(mode)}"


def credentials(cloud: Any) -> Any:
    """google.auth Credentials for cloud.credentials ("adc", "anonymous" or a key-file path)."""
    mode = str(getattr(cloud, "credentials", None) or "adc")
    if mode == "anonymous":
        from google.auth.credentials import AnonymousCredentials

        return AnonymousCredentials()
    if mode == "adc":
        return adc()[0]
    return service_account_file(mode)


def adc() -> tuple[Any, str | None]:
    """Application default credentials and their project (may be None); CloudAuthError when there are none."""
    import google.auth
    from google.auth.exceptions import DefaultCredentialsError

    try:
        return google.auth.default(scopes=SCOPES)
    except DefaultCredentialsError:
        pointer = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
        hint = f" (GOOGLE_APPLICATION_CREDENTIALS={shown(pointer)} is not a usable credentials file)" if pointer else ""
        raise CloudAuthError(ADC_MISSING + hint) from None


def service_account_file(path: str) -> Any:
    """Service-account credentials from a JSON key file, with one-line errors for the usual mistakes."""
    from google.oauth2 import service_account

    full = os.path.expanduser(path)
    where = f"cloud.credentials={shown(path)}"
    if not os.path.exists(full):
        raise CloudAuthError(f"{where}: no such file (expected adc, anonymous or a service-account JSON file)")
    if os.path.isdir(full):
        raise CloudAuthError(f"{where}: is a directory, not a service-account JSON file")
    try:
        return service_account.Credentials.from_service_account_file(full, scopes=SCOPES)
    except OSError as exc:
        raise CloudAuthError(f"{where}: cannot be read ({exc.strerror or type(exc).__name__})") from None
    except json.JSONDecodeError as exc:
        raise CloudAuthError(f"{where}: is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        # google.auth says which fields are missing or that the private key does not parse: first sentence only.
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0].split(". ")[0].rstrip(".")[:200]
        raise CloudAuthError(f"{where}: is not a usable service-account key file ({reason})") from None
