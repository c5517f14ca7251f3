"""What a secret looks like, in one place: by its name (a parameter called ``api_key``,
``access_token``, ``password``, ...) and by its shape (credentials in a URL, ``sk-...`` and
``hf_...`` tokens). The preflight refuses secrets given as parameters (parameters are
logged to MLflow); errors, the log (a filter in ``conf/logging.yml``) and reports pass
through :func:`redact`. Credentials belong in ``conf/local/credentials.yml``
(docs/reliability.md).

Imports nothing heavy: ``conf/logging.yml`` loads it before anything else.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

REDACTED = "***"

#: A name whose last word is one of these holds a secret. ``api_key_env`` (the name of an
#: environment variable), ``credentials`` (an entry of credentials.yml) and
#: ``max_new_tokens`` do not.
SECRET_NAME = re.compile(
    r"(?:^|[_\-.])(?:api[_\-]?key|apikey|access[_\-]?key|private[_\-]?key|secret[_\-]?key"
    r"|secret|password|passwd|token|auth)$",
    re.IGNORECASE,
)

#: ``scheme://user:password@host``: the password part.
URL_CREDENTIALS = re.compile(r"(?P<head>\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)[^@\s/]+(?=@)")

#: Values shaped like API tokens: OpenAI (``sk-``), Hugging Face (``hf_``), GitHub
#: (``ghp_``, ``github_pat_``), Slack (``xox?-``), AWS access key ids, bearer headers.
TOKEN_VALUES = re.compile(
    r"\b(?:sk-(?:[A-Za-z0-9]+-)*[A-Za-z0-9]{8,}|hf_[A-Za-z0-9]{8,}|gh[pousr]_[A-Za-z0-9]{16,}"
    r"|github_pat_[A-Za-z0-9_]{16,}|xox[abprs]-[A-Za-z0-9\-]{8,}|AKIA[0-9A-Z]{16})\b"
    r"|(?<=Bearer )[A-Za-z0-9._\-]{8,}"
)


def is_secret_name(name: str) -> bool:
    """Whether a setting called ``name`` holds a secret."""
    return bool(SECRET_NAME.search(str(name)))


def looks_secret(value: str) -> bool:
    """Whether ``value`` holds credentials in a URL or a token-like string."""
    return redact(value) != value


def redact(text: Any) -> Any:
    """``text`` with every URL password and token-like value replaced by ``***``; anything
    that is not a string is handed back as it is."""
    if not isinstance(text, str):
        return text
    text = URL_CREDENTIALS.sub(lambda m: m.group("head") + REDACTED, text)
    return TOKEN_VALUES.sub(REDACTED, text)


def secret_parameters(params: Mapping, prefix: str = "") -> list[str]:
    """Dotted names of the parameters that hold a secret, by name or by value (never the
    values themselves). An empty value is no secret."""
    found = []
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            found += secret_parameters(value, f"{name}.")
        elif value in (None, ""):
            continue
        elif is_secret_name(str(key)):
            found.append(name)
        elif any(isinstance(v, str) and looks_secret(v) for v in _values(value)):
            found.append(name)
    return found


def _values(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else [value]


class RedactingFilter(logging.Filter):
    """A logging filter (``conf/logging.yml``): each record's message and traceback with
    every secret redacted, before any handler writes it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = redact(message)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and record.exc_info[0] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            if redact(text) != text:
                # The handlers print exc_text instead of formatting the exception again.
                record.exc_text, record.exc_info = redact(text), None
        elif record.exc_text:
            record.exc_text = redact(record.exc_text)
        return True


_REDACT_RECORD = RedactingFilter()


def install_log_redaction() -> None:
    """Redact every log record as it is made, whichever handlers a later logging
    configuration installs (Kedro re-applies conf/logging.yml after the settings load, and
    admits filter classes there only from allow-listed modules). Installed once."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "redacts_secrets", False):
        return

    def make_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        _REDACT_RECORD.filter(record)
        return record

    make_record.redacts_secrets = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make_record)
