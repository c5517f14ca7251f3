"""The pointwise judge: :class:`LLMJudge` (a backend behind an on-disk cache), the bounded
pool that asks many prompts at once (:func:`ask_all`, :func:`judge_all`) and
:func:`make_judge`, which builds a judge from the ``automated_eval.judge`` parameters."""

from __future__ import annotations

import logging
from collections import Counter
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
from anchormix_kedro.evaluation.judge.cache import JudgeCache
from anchormix_kedro.evaluation.judge.concurrency import (
    DEFAULT_MAX_IN_FLIGHT,
    check_max_in_flight,
    map_bounded,
)
from anchormix_kedro.evaluation.judge.output import JudgeOutputError, parse_judge_output
from anchormix_kedro.evaluation.judge.prompt import (
    RUBRIC_VERSION,
    JudgeItem,
    judge_messages,
)
from anchormix_kedro.vocabulary import CRITERIA

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


@dataclass(frozen=True)
class Answer:
    """A judge model's raw answer to one prompt, or why there is none."""

    text: str | None
    error: str | None = None
    cached: bool = False


@dataclass
class LLMJudge:
    """Rates advice with a backend, through an optional on-disk cache (``cache_dir``).

    ``max_in_flight`` bounds the calls :func:`judge_all` (and the listwise judge) make at
    once; a backend that serves one call at a time (a local model) lowers it to 1.
    """

    backend: JudgeBackend
    cache_dir: str | Path | None = None
    rubric_version: str = RUBRIC_VERSION
    max_in_flight: int = DEFAULT_MAX_IN_FLIGHT
    cache: JudgeCache | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.max_in_flight = check_max_in_flight(self.max_in_flight)
        if self.cache_dir is not None:
            self.cache = JudgeCache(self.cache_dir)

    @property
    def calls_at_once(self) -> int:
        """``max_in_flight``, at most what the backend serves at once.

        A backend says so in its ``max_in_flight`` (``None``: no limit of its own); one that
        does not say is called one call at a time, as it may not be safe to share.
        """
        limit = getattr(self.backend, "max_in_flight", 1)
        return self.max_in_flight if limit is None else min(self.max_in_flight, int(limit))

    def provenance(self, rubric_version: str | None = None) -> dict[str, str]:
        return {
            "backend": self.backend.kind,
            "model": self.backend.model,
            "rubric_version": rubric_version or self.rubric_version,
        }

    def cache_key(self, messages: list[dict[str, str]], rubric_version: str | None = None) -> str:
        backend = self.backend
        return JudgeCache.key(
            backend.kind, backend.model, messages, rubric_version or self.rubric_version
        )

    def ask(self, messages: list[dict[str, str]], rubric_version: str | None = None) -> Answer:
        """The answer to one prompt: from the cache, else from the backend (then cached).

        A failed call gives an :class:`Answer` without text and with the reason; failures
        are not cached, so the next run asks again.
        """
        key = self.cache_key(messages, rubric_version)
        text = self.cache.get(key) if self.cache is not None else None
        if text is not None:
            return Answer(text, cached=True)
        try:
            text = self.backend.complete(messages)
        except JudgeCallError as error:
            return Answer(None, f"call failed: {error}")
        except Exception as error:  # a local model may fail in many ways; record, go on
            reason = self.backend.redact(f"{type(error).__name__}: {error}")[:300]
            return Answer(None, f"call failed: {reason}")
        if self.cache is not None:
            self.cache.put(key, text, **self.provenance(rubric_version))
        return Answer(text)

    def judge(self, item: JudgeItem) -> JudgeResult:
        """Rate one item; a failed call or an invalid answer gives missing scores and a reason."""
        if item.advice is None:
            return JudgeResult(item.item_id, None, None, "no advice to rate", **self.provenance())
        return self.verdict(item, self.ask(judge_messages(item)))

    def verdict(self, item: JudgeItem, answer: Answer) -> JudgeResult:
        """The scores that ``answer`` gives ``item``, or missing scores and the reason."""
        provenance = self.provenance()
        if answer.text is None:
            return JudgeResult(item.item_id, None, None, answer.error, **provenance)
        try:
            scores, rationale = parse_judge_output(answer.text)
        except JudgeOutputError as error:
            return JudgeResult(
                item.item_id,
                None,
                None,
                f"invalid judge output: {error}",
                cached=answer.cached,
                **provenance,
            )
        return JudgeResult(
            item.item_id, scores, rationale, None, cached=answer.cached, **provenance
        )


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


def ask_all(
    judge: LLMJudge,
    prompts: Sequence[list[dict[str, str]] | None],
    rubric_version: str | None = None,
    progress: bool = True,
    description: str = "LLM judge",
    max_in_flight: int | None = None,
) -> list[Answer | None]:
    """:meth:`LLMJudge.ask` for every prompt, ``max_in_flight`` at once, in prompt order.

    A prompt of ``None`` is not sent (its answer is ``None``). Identical prompts are sent
    once: the later ones get the same answer, marked ``cached`` (no call was made for
    them). One progress bar counts every prompt.
    """
    first_of_key: dict[str, int] = {}
    asked: list[int] = []
    keys: list[str | None] = []
    for index, messages in enumerate(prompts):
        key = None if messages is None else judge.cache_key(messages, rubric_version)
        keys.append(key)
        if key is not None and key not in first_of_key:
            first_of_key[key] = index
            asked.append(index)
    sharing = Counter(keys)
    in_flight = check_max_in_flight(judge.calls_at_once if max_in_flight is None else max_in_flight)
    backend_limit = getattr(judge.backend, "max_in_flight", 1)
    if backend_limit is not None:
        in_flight = min(in_flight, int(backend_limit))
    with tqdm(
        total=len(prompts), desc=f"{description} ({judge.backend.model})", disable=not progress
    ) as bar:
        bar.update(sharing[None])
        answers = map_bounded(
            lambda index: judge.ask(prompts[index], rubric_version),
            asked,
            in_flight,
            on_done=lambda position: bar.update(sharing[keys[asked[position]]]),
        )
    answer_of_key = {keys[index]: answer for index, answer in zip(asked, answers, strict=True)}
    results: list[Answer | None] = []
    for index, key in enumerate(keys):
        if key is None:
            results.append(None)
        elif first_of_key[key] == index:
            results.append(answer_of_key[key])
        else:
            shared = answer_of_key[key]
            results.append(Answer(shared.text, shared.error, cached=shared.text is not None))
    return results


def judge_all(
    items: Iterable[JudgeItem | Mapping[str, Any]] | pd.DataFrame,
    judge: LLMJudge | None,
    progress: bool = True,
    max_in_flight: int | None = None,
) -> pd.DataFrame:
    """Rate every item, one row each (columns :data:`JUDGE_COLUMNS`), scores as ``Int64``.

    Items are :class:`JudgeItem` objects, mappings or a DataFrame with their fields. Calls
    run ``max_in_flight`` at once (default: the judge's own setting); rows keep the items'
    order. With ``judge=None`` (no judge configured) every score is missing and the log
    says so.
    """
    items = _items(items)
    if judge is None:
        logger.warning(NO_JUDGE_MESSAGE)
        rows = [
            JudgeResult(item.item_id, None, None, "no judge configured").as_row() for item in items
        ]
        return _frame(rows)
    prompts = [None if item.advice is None else judge_messages(item) for item in items]
    answers = ask_all(judge, prompts, progress=progress, max_in_flight=max_in_flight)
    results = [
        judge.judge(item) if answer is None else judge.verdict(item, answer)
        for item, answer in zip(items, answers, strict=True)
    ]
    log_coverage("LLM judge", judge, results, "items scored", "missing")
    return _frame([r.as_row() for r in results])


def log_coverage(name: str, judge, results: Sequence, done: str, failed_words: str) -> None:
    """One log line: how many results the judge gave, from the cache, and the first failure."""
    failed = [r for r in results if not r.ok]
    logger.info(
        "%s %s: %d of %d %s (%d from cache), %d %s%s",
        name,
        judge.backend.model,
        len(results) - len(failed),
        len(results),
        done,
        sum(r.cached for r in results),
        len(failed),
        failed_words,
        f"; first reason: {failed[0].error}" if failed else "",
    )


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
_COMMON_OPTIONS = {"backend", "cache_dir", "rubric_version", "max_in_flight"}


def make_judge(
    config: Mapping[str, Any] | None, credentials: Mapping[str, Any] | None = None
) -> LLMJudge | None:
    """A judge from configuration, or ``None`` (logged plainly) for ``backend: none``.

    ``config["backend"]`` is ``none``, ``openai`` (any OpenAI-compatible server) or
    ``transformers``. Besides ``cache_dir``, ``rubric_version`` and ``max_in_flight`` (calls
    at once, default 8; a local model serves one at a time), ``openai`` takes
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
        max_in_flight=config.get("max_in_flight", DEFAULT_MAX_IN_FLIGHT),
    )
