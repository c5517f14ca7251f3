"""Keeping the machine-learning libraries' chatter out of ``anchormix advise --model``.

Loading and running a model makes transformers, peft, accelerate, bitsandbytes and torch
print warnings, notices and progress bars that say nothing to someone asking for mix
advice. Unless ``--verbose`` is given they are silenced while the model is loaded and
asked; the command's own warnings (``anchormix: warning: ...``) are not affected.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from collections.abc import Iterator

#: Loggers of the libraries a model package pulls in.
LIBRARY_LOGGERS: tuple[str, ...] = (
    "transformers",
    "peft",
    "accelerate",
    "bitsandbytes",
    "torch",
    "huggingface_hub",
    "tokenizers",
    "safetensors",
)


@contextlib.contextmanager
def library_output(verbose: bool, capture_stderr: bool = False) -> Iterator[io.StringIO]:
    """Silence library warnings, log records below ERROR and progress bars, unless ``verbose``.

    With ``capture_stderr`` whatever is printed on ``sys.stderr`` meanwhile is caught in the
    yielded buffer (for loading a model, which prints outside the logging system); the
    caller decides whether to show it (e.g. when loading fails).
    """
    buffer = io.StringIO()
    if verbose:
        yield buffer
        return
    # transformers configures its logger when first imported: import it now, then quiet it.
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    loggers = {name: logging.getLogger(name) for name in LIBRARY_LOGGERS}
    levels = {name: logger.level for name, logger in loggers.items()}
    saved_env = os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS")
    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            transformers_logging.set_verbosity_error()
            transformers_logging.disable_progress_bar()
            for logger in loggers.values():
                logger.setLevel(logging.ERROR)
            if capture_stderr:
                with contextlib.redirect_stderr(buffer):
                    yield buffer
            else:
                yield buffer
    finally:
        for name, logger in loggers.items():
            logger.setLevel(levels[name])
        if saved_env is None:
            os.environ.pop("HF_HUB_DISABLE_PROGRESS_BARS", None)
        else:
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = saved_env
        transformers_logging.set_verbosity(verbosity)
        transformers_logging.enable_progress_bar()
