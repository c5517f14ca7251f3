"""LLM-as-a-judge: rate gain advice on the 7-point scale mixing engineers use.

A judge model reads the scenario (anchor, target, genre, the true imbalance when known) and
the advice, and answers strict JSON with four integer scores from 1 (very poor) to
7 (excellent) and a short rationale. Two backends:

- :class:`OpenAICompatibleBackend`: ``POST {base_url}/chat/completions`` (OpenAI, vLLM,
  Ollama, ...), with timeouts and retries (exponential backoff on timeouts, connection
  errors, 429 and 5xx; ``Retry-After`` honoured). The API key comes from a credentials
  dict or an environment variable and is never logged, cached or returned.
- :class:`TransformersBackend`: a local causal LM (path or cached model id), its chat
  template and greedy decoding.

:class:`LLMJudge` keeps every answer in an on-disk cache keyed by a hash of (backend, model,
prompt, rubric version), so a re-run does not pay twice. A failed call or an answer that
is not valid JSON in the rubric's shape is recorded as missing with the reason: scores are
never invented. :func:`judge_all` judges many items with a progress bar.

The parts live in submodules and are re-exported here: the rubric and prompt in
:mod:`.prompt`, answer parsing in :mod:`.output`, the backends in :mod:`.backends` and the
cache in :mod:`.cache`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm.auto import tqdm

from anchormix_kedro.evaluation.judge.backends import (
    JudgeBackend,
    JudgeCallError,
    OpenAICompatibleBackend,
    TransformersBackend,
)
from anchormix_kedro.evaluation.judge.backends import (
    _retry_after_seconds as _retry_after_seconds,  # re-exported for the tests
)
from anchormix_kedro.evaluation.judge.cache import CACHE_FILE_NAME, JudgeCache
from anchormix_kedro.evaluation.judge.output import JudgeOutputError, parse_judge_output
from anchormix_kedro.evaluation.judge.prompt import (
    CRITERION_DEFINITIONS,
    RUBRIC_VERSION,
    JudgeItem,
    judge_messages,
)
from anchormix_kedro.vocabulary import CRITERIA

__all__ = [
    "CACHE_FILE_NAME",
    "CRITERION_DEFINITIONS",
    "JUDGE_COLUMNS",
    "NO_JUDGE_MESSAGE",
    "RUBRIC_VERSION",
    "JudgeBackend",
    "JudgeCache",
    "JudgeCallError",
    "JudgeItem",
    "JudgeOutputError",
    "JudgeResult",
    "LLMJudge",
    "OpenAICompatibleBackend",
    "TransformersBackend",
    "judge_all",
    "judge_messages",
    "make_judge",
    "parse_judge_output",
]

logger = logging.getLogger(__name__)

NO_JUDGE_MESSAGE = "No LLM judge is configured (judge backend: none): judge scores stay missing."


@dataclass(frozen=True)
class JudgeResult:
    """The judge's verdict on one item; ``scores`` is ``None`` (missing) when ``error`` says why."""

    item_id: str
    scores: dict[str, int] | None
    rationale: str | None
    error: str | None
    cached: bool = False
    backend: str | None = None
    model: str | None = None
    rubric_version: str = RUBRIC_VERSION

    @property
    def ok(self) -> bool:
        return self.scores is not None

    def as_row(self) -> dict[str, Any]:
        """A flat row: item id, one column per criterion, rationale, error and provenance."""
        row: dict[str, Any] = {"item_id": self.item_id}
        for name in CRITERIA:
            row[name] = self.scores[name] if self.scores else None
        row |= {
            "rationale": self.rationale,
            "judge_ok": self.ok,
            "judge_error": self.error,
            "judge_cached": self.cached,
            "judge_backend": self.backend,
            "judge_model": self.model,
            "rubric_version": self.rubric_version,
        }
        return row


@dataclass
class LLMJudge:
    """Rates advice with a backend, through an optional on-disk cache (``cache_dir``)."""

    backend: JudgeBackend
    cache_dir: str | Path | None = None
    rubric_version: str = RUBRIC_VERSION
    cache: JudgeCache | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        if self.cache_dir is not None:
            self.cache = JudgeCache(self.cache_dir)

    def judge(self, item: JudgeItem) -> JudgeResult:
        """Rate one item; a failed call or an invalid answer gives missing scores and a reason."""
        backend = self.backend
        provenance = {
            "backend": backend.kind,
            "model": backend.model,
            "rubric_version": self.rubric_version,
        }
        if item.advice is None:
            return JudgeResult(item.item_id, None, None, "no advice to rate", **provenance)
        messages = judge_messages(item)
        key = JudgeCache.key(backend.kind, backend.model, messages, self.rubric_version)
        answer = self.cache.get(key) if self.cache is not None else None
        cached = answer is not None
        if answer is None:
            try:
                answer = backend.complete(messages)
            except JudgeCallError as error:
                return JudgeResult(item.item_id, None, None, f"call failed: {error}", **provenance)
            except Exception as error:  # a local model may fail in many ways; record, go on
                reason = backend.redact(f"{type(error).__name__}: {error}")[:300]
                return JudgeResult(item.item_id, None, None, f"call failed: {reason}", **provenance)
            if self.cache is not None:
                self.cache.put(key, answer, **provenance)
        try:
            scores, rationale = parse_judge_output(answer)
        except JudgeOutputError as error:
            return JudgeResult(
                item.item_id,
                None,
                None,
                f"invalid judge output: {error}",
                cached=cached,
                **provenance,
            )
        return JudgeResult(item.item_id, scores, rationale, None, cached=cached, **provenance)


JUDGE_COLUMNS: tuple[str, ...] = tuple(JudgeResult("", None, None, None).as_row())


def _items(items: Iterable[JudgeItem | Mapping[str, Any]] | pd.DataFrame) -> list[JudgeItem]:
    if isinstance(items, pd.DataFrame):
        items = items.to_dict("records")
    return [item if isinstance(item, JudgeItem) else JudgeItem.from_mapping(item) for item in items]


def _frame(rows: Sequence[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(list(rows), columns=list(JUDGE_COLUMNS))
    for name in CRITERIA:
        frame[name] = frame[name].astype("Int64")
    for name in ("judge_ok", "judge_cached"):
        frame[name] = frame[name].astype("boolean")
    return frame


def judge_all(
    items: Iterable[JudgeItem | Mapping[str, Any]] | pd.DataFrame,
    judge: LLMJudge | None,
    progress: bool = True,
) -> pd.DataFrame:
    """Rate every item, one row each (columns :data:`JUDGE_COLUMNS`), scores as ``Int64``.

    Items are :class:`JudgeItem` objects, mappings or a DataFrame with their fields. With
    ``judge=None`` (no judge configured) every score is missing and the log says so.
    """
    items = _items(items)
    if judge is None:
        logger.warning(NO_JUDGE_MESSAGE)
        rows = [
            JudgeResult(item.item_id, None, None, "no judge configured").as_row() for item in items
        ]
        return _frame(rows)
    results = [
        judge.judge(item)
        for item in tqdm(items, desc=f"LLM judge ({judge.backend.model})", disable=not progress)
    ]
    failed = [r for r in results if not r.ok]
    logger.info(
        "LLM judge %s: %d of %d items scored (%d from cache), %d missing%s",
        judge.backend.model,
        len(results) - len(failed),
        len(results),
        sum(r.cached for r in results),
        len(failed),
        f"; first reason: {failed[0].error}" if failed else "",
    )
    return _frame([r.as_row() for r in results])


_OPENAI_OPTIONS = {
    "base_url",
    "model",
    "api_key_env",
    "timeout_s",
    "max_retries",
    "backoff_s",
    "max_backoff_s",
    "temperature",
    "max_tokens",
    "json_mode",
}
_TRANSFORMERS_OPTIONS = {"model", "max_new_tokens", "device", "dtype"}
_COMMON_OPTIONS = {"backend", "cache_dir", "rubric_version"}


def make_judge(
    config: Mapping[str, Any] | None, credentials: Mapping[str, Any] | None = None
) -> LLMJudge | None:
    """A judge from configuration, or ``None`` (logged plainly) for ``backend: none``.

    ``config["backend"]`` is ``none``, ``openai`` (any OpenAI-compatible server) or
    ``transformers``. Besides ``cache_dir`` and ``rubric_version``, ``openai`` takes
    ``base_url``, ``model``, ``api_key_env``, ``timeout_s``, ``max_retries``, ``backoff_s``,
    ``max_backoff_s``, ``temperature``, ``max_tokens``, ``json_mode``; ``transformers`` takes
    ``model``, ``max_new_tokens``, ``device``, ``dtype``. ``credentials`` (e.g. Kedro's
    credentials entry) may hold ``api_key``.
    """
    config = dict(config or {})
    backend = str(config.get("backend") or "none").lower()
    if backend == "none":
        logger.warning(NO_JUDGE_MESSAGE)
        return None
    allowed = {"openai": _OPENAI_OPTIONS, "transformers": _TRANSFORMERS_OPTIONS}.get(backend)
    if allowed is None:
        raise ValueError(
            f"unknown judge backend {backend!r}; expected none, openai or transformers"
        )
    unknown = sorted(set(config) - allowed - _COMMON_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown options {unknown} for judge backend {backend!r}; "
            f"known: {', '.join(sorted(allowed | _COMMON_OPTIONS))}"
        )
    options = {k: v for k, v in config.items() if k in allowed}
    if backend == "openai":
        base_url, model = options.pop("base_url", None), options.pop("model", None)
        judge_backend: JudgeBackend = OpenAICompatibleBackend(
            base_url, model, credentials=credentials, **options
        )
    else:
        if not options.get("model"):
            raise ValueError("the transformers judge needs model (a local path or model id)")
        judge_backend = TransformersBackend(options.pop("model"), **options)
    return LLMJudge(
        judge_backend,
        cache_dir=config.get("cache_dir"),
        rubric_version=config.get("rubric_version", RUBRIC_VERSION),
    )
