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
"""

from __future__ import annotations

import email.utils
import hashlib
import json
import logging
import math
import os
import re
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import pandas as pd
from tqdm.auto import tqdm

from anchormix_kedro.vocabulary import CRITERIA, LIKERT_LABELS, LIKERT_MAX, LIKERT_MIN

logger = logging.getLogger(__name__)

RUBRIC_VERSION = "anchormix-judge-v1"
CRITERION_DEFINITIONS: dict[str, str] = {
    "effectiveness": (
        "Would following the advice fix the level of the target against the anchor? Judge "
        "the direction and the size of the fader move against the true imbalance when it is "
        "given."
    ),
    "musicality": (
        "Does the advice show sound musical judgement about the roles of the two stems in "
        "this genre (what should lead, what should support)?"
    ),
    "actionability": (
        "Can an engineer act on it at once: which fader, which direction, by how many dB?"
    ),
    "helpfulness": (
        "Overall usefulness to an engineer balancing this mix: clear, concise, correct and "
        "free of misleading content."
    ),
}
NO_JUDGE_MESSAGE = "No LLM judge is configured (judge backend: none): judge scores stay missing."
CACHE_FILE_NAME = "judge_cache.jsonl"


# --------------------------------------------------------------------------- items and prompt


@dataclass(frozen=True)
class JudgeItem:
    """One piece of advice to rate, and what is known about the mix it is about.

    ``true_gain_db`` is the offset applied to the target (positive: the target was made
    louder), ``true_label`` its label (``too_loud``, ``too_soft``, ``balanced``); either may
    be ``None`` when unknown. ``anchor=None`` means the target was heard alone. ``advice=None``
    (no answer was generated) is not sent to the judge: its scores stay missing.
    """

    item_id: str
    advice: str | None
    target: str
    anchor: str | None = None
    genre: str | None = None
    true_gain_db: float | None = None
    true_label: str | None = None

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> JudgeItem:
        """From a dict or a DataFrame row; ``example_id``, ``gain_db`` and ``label`` also work."""

        def value(*names: str) -> Any:
            for name in names:
                if name in row and not _is_missing(row[name]):
                    return row[name]
            return None

        item_id, advice, target = value("item_id", "example_id"), value("advice"), value("target")
        if item_id is None or target is None:
            raise ValueError(f"a judge item needs item_id (or example_id) and target: {row!r}")
        gain = value("true_gain_db", "gain_db")
        return cls(
            item_id=str(item_id),
            advice=None if advice is None else str(advice),
            target=str(target),
            anchor=value("anchor"),
            genre=value("genre"),
            true_gain_db=None if gain is None else float(gain),
            true_label=value("true_label", "label"),
        )


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _stem_noun(stem: str) -> str:
    from anchormix_kedro.instruction_data.advice import STEM_WORDS

    return STEM_WORDS[stem].noun if stem in STEM_WORDS else stem


def _true_imbalance(item: JudgeItem) -> str:
    target = _stem_noun(item.target)
    label = {
        "too_loud": "too loud",
        "too_soft": "too soft",
        "balanced": "balanced (leave the fader as it is)",
    }.get(item.true_label or "", None)
    if item.true_gain_db is None:
        if label is None:
            return "unknown: judge the advice on its plausibility."
        return f"{target} is {label}."
    gain = item.true_gain_db
    where = "at its level in the professional mix"
    if abs(gain) >= 0.05:
        louder = "louder" if gain > 0 else "softer"
        where = f"{abs(gain):.1f} dB {louder} than in the professional mix"
    sentence = f"{target} is {where}"
    if label is not None:
        sentence += f"; its label is {label}"
    if item.true_label != "balanced" and abs(gain) >= 0.05:
        move = "down" if gain > 0 else "up"
        sentence += f"; the ideal fix is to move its fader {move} by about {abs(gain):.1f} dB"
    return sentence + "."


def judge_messages(item: JudgeItem) -> list[dict[str, str]]:
    """The chat the judge model reads: the rubric (system) and the scenario and advice (user)."""
    scale = ", ".join(f"{score} = {name}" for score, name in LIKERT_LABELS.items())
    criteria = "\n".join(f"- {name}: {CRITERION_DEFINITIONS[name]}" for name in CRITERIA)
    shape = ", ".join(f'"{name}": <integer {LIKERT_MIN}-{LIKERT_MAX}>' for name in CRITERIA)
    system = (
        "You are an experienced mixing engineer rating gain-balancing advice that an "
        "assistant gave about a multitrack mix. Rate the advice on each criterion below on "
        f"a 7-point scale ({scale}).\n\n"
        f"Criteria:\n{criteria}\n\n"
        "Answer with strict JSON only, no other text:\n"
        f'{{{shape}, "rationale": "<one or two sentences>"}}'
    )
    anchor = _stem_noun(item.anchor) if item.anchor else "none (the target was heard on its own)"
    user = (
        "Scenario:\n"
        f"- Anchor stem: {anchor}\n"
        f"- Target stem: {_stem_noun(item.target)}\n"
        f"- Genre: {item.genre or 'unknown'}\n"
        f"- True imbalance: {_true_imbalance(item)}\n\n"
        f'Advice to rate:\n"""\n{item.advice}\n"""'
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


# --------------------------------------------------------------------------- parsing


class JudgeOutputError(ValueError):
    """The judge's answer is not JSON in the rubric's shape."""


_FENCE = re.compile(r"^\s*```[ \t]*(?:json)?[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\s*$", re.S | re.I)


def _reject_constant(name: str) -> None:
    raise JudgeOutputError(f"non-finite number {name} in the answer")


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise JudgeOutputError(f"duplicate keys {duplicates}")
    return dict(pairs)


def parse_judge_output(text: str) -> tuple[dict[str, int], str]:
    """The scores and rationale of an answer, or :class:`JudgeOutputError` saying why not.

    The answer must be one JSON object, optionally inside a Markdown code fence, holding
    every criterion as an integer from 1 to 7 (not a float, string or boolean) and
    ``rationale`` as a string. Extra keys are ignored.
    """
    if not isinstance(text, str) or not text.strip():
        raise JudgeOutputError("empty answer")
    fenced = _FENCE.match(text)
    body = fenced["body"] if fenced else text
    try:
        data = json.loads(body, object_pairs_hook=_unique_keys, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        raise JudgeOutputError(f"not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise JudgeOutputError(f"expected a JSON object, got {type(data).__name__}")
    missing = [key for key in (*CRITERIA, "rationale") if key not in data]
    if missing:
        raise JudgeOutputError(f"missing keys {missing}")
    scores = {}
    for name in CRITERIA:
        score = data[name]
        if isinstance(score, bool) or not isinstance(score, int):
            raise JudgeOutputError(f"{name} must be an integer, got {score!r}")
        if not LIKERT_MIN <= score <= LIKERT_MAX:
            raise JudgeOutputError(
                f"{name} = {score} is outside the scale {LIKERT_MIN}..{LIKERT_MAX}"
            )
        scores[name] = score
    if not isinstance(data["rationale"], str):
        raise JudgeOutputError(f"rationale must be a string, got {data['rationale']!r}")
    return scores, data["rationale"].strip()


# --------------------------------------------------------------------------- backends


class JudgeCallError(RuntimeError):
    """The judge model could not be asked (after any retries); the message says why."""


class JudgeBackend(Protocol):
    """What :class:`LLMJudge` needs from a backend."""

    kind: str
    model: str

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The model's answer to a chat; raises :class:`JudgeCallError` when it cannot."""

    def redact(self, text: str) -> str:
        """``text`` without any secret the backend holds."""


def _retry_after_seconds(header: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date."""
    if not header:
        return None
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:
        moment = email.utils.parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class OpenAICompatibleBackend:
    """Chat completions over HTTP: ``POST {base_url}/chat/completions``.

    The API key is taken, first found, from ``api_key``, ``credentials["api_key"]`` (e.g. a
    Kedro credentials entry) or the environment variable named by ``api_key_env``; with
    none, no ``Authorization`` header is sent (local vLLM or Ollama servers need none).
    A request that times out, cannot connect, or gets 429 or 5xx is retried up to
    ``max_retries`` times, waiting ``backoff_s * 2**attempt`` seconds or what the server's
    ``Retry-After`` asks, at most ``max_backoff_s``. Other HTTP errors fail at once.
    """

    kind = "openai-compatible"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        credentials: Mapping[str, Any] | None = None,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        max_retries: int = 4,
        backoff_s: float = 1.0,
        max_backoff_s: float = 60.0,
        temperature: float = 0.0,
        max_tokens: int = 400,
        json_mode: bool = False,
    ):
        import requests

        if not base_url or not model:
            raise ValueError("the OpenAI-compatible judge needs base_url and model")
        if max_retries < 0 or timeout_s <= 0 or backoff_s < 0:
            raise ValueError("max_retries and backoff_s must be >= 0 and timeout_s > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.timeout_s = float(timeout_s)
        self.max_retries = int(max_retries)
        self.backoff_s = float(backoff_s)
        self.max_backoff_s = float(max_backoff_s)
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.json_mode = bool(json_mode)
        key = api_key or (credentials or {}).get("api_key")
        if not key and api_key_env:
            key = os.environ.get(api_key_env)
            if not key:
                logger.warning(
                    "Environment variable %s is unset: calling the judge without an API key",
                    api_key_env,
                )
        self.__api_key = key or None
        self._session = requests.Session()

    def __repr__(self) -> str:
        key = "***" if self.__api_key else None
        return (
            f"{type(self).__name__}(base_url={self.base_url!r}, model={self.model!r}, "
            f"api_key={key!r}, timeout_s={self.timeout_s}, max_retries={self.max_retries})"
        )

    def __getstate__(self) -> dict:
        raise TypeError(f"{type(self).__name__} holds an API key and is not picklable")

    def redact(self, text: str) -> str:
        """``text`` with the API key, should a server echo it, replaced by ``***``."""
        return text.replace(self.__api_key, "***") if self.__api_key and text else text

    def _delay(self, attempt: int, retry_after: str | None = None) -> float:
        asked = _retry_after_seconds(retry_after)
        wait = asked if asked is not None else self.backoff_s * 2**attempt
        return min(wait, self.max_backoff_s)

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The assistant message of one chat completion (greedy unless temperature > 0)."""
        import requests

        url = f"{self.base_url}/chat/completions"
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if self.json_mode:
            payload["response_format"] = {"type": "json_object"}
        headers = {"Content-Type": "application/json"}
        if self.__api_key:
            headers["Authorization"] = f"Bearer {self.__api_key}"

        reason = "no attempt made"
        for attempt in range(self.max_retries + 1):
            retry_after = None
            try:
                response = self._session.post(
                    url, json=payload, headers=headers, timeout=self.timeout_s
                )
            except requests.Timeout:
                reason = f"timed out after {self.timeout_s:g} s"
            except requests.ConnectionError as error:
                reason = f"connection failed ({type(error).__name__})"
            else:
                status = response.status_code
                if 200 <= status < 300:
                    return self._content(response)
                body = self.redact(response.text[:300])
                reason = f"HTTP {status}: {body}".strip()
                if status != 429 and status < 500:
                    raise JudgeCallError(reason)
                retry_after = response.headers.get("Retry-After")
            if attempt < self.max_retries:
                wait = self._delay(attempt, retry_after)
                logger.info(
                    "Judge call %s (attempt %d of %d): retrying in %.2f s",
                    reason[:80],
                    attempt + 1,
                    self.max_retries + 1,
                    wait,
                )
                time.sleep(wait)
        raise JudgeCallError(f"gave up after {self.max_retries + 1} attempts: {reason}")

    def _content(self, response) -> str:
        try:
            content = response.json()["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise JudgeCallError(
                f"unexpected response body: {self.redact(response.text[:200])!r}"
            ) from None
        if isinstance(content, list):  # content parts: keep the text ones
            content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
        if not isinstance(content, str):
            raise JudgeCallError(f"response holds no text content: {content!r}")
        return self.redact(content)


class TransformersBackend:
    """A local causal LM: chat template (when the tokenizer has one), greedy decoding.

    ``model`` is a local directory or a model id already in the Hugging Face cache (the
    project runs offline). The model loads on first use, once.
    """

    kind = "transformers"

    def __init__(
        self,
        model: str | Path,
        *,
        max_new_tokens: int = 256,
        device: str | None = None,
        dtype: str | None = None,
    ):
        self.model = str(model)
        self.max_new_tokens = int(max_new_tokens)
        self.device = device
        self.dtype = dtype
        self._loaded: tuple[Any, Any] | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r}, max_new_tokens={self.max_new_tokens})"

    def redact(self, text: str) -> str:
        """Nothing secret is held: ``text`` unchanged."""
        return text

    def _load(self) -> tuple[Any, Any]:
        with self._lock:
            if self._loaded is None:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                logger.info("Loading judge model %s", self.model)
                tokenizer = AutoTokenizer.from_pretrained(self.model)
                kwargs = {"dtype": getattr(torch, self.dtype)} if self.dtype else {}
                model = AutoModelForCausalLM.from_pretrained(self.model, **kwargs)
                device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
                self._loaded = (tokenizer, model.to(device).eval())
            return self._loaded

    def complete(self, messages: list[dict[str, str]]) -> str:
        """The model's greedy continuation of the chat, without the prompt."""
        import torch
        from transformers import GenerationConfig

        tokenizer, model = self._load()
        if getattr(tokenizer, "chat_template", None):
            prompt = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
        else:
            # A base model without a chat template still reads a plain transcript.
            prompt = "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant: "
        inputs = tokenizer(prompt, return_tensors="pt", add_special_tokens=False).to(model.device)
        eos = tokenizer.eos_token_id
        generation = GenerationConfig(
            do_sample=False,
            max_new_tokens=self.max_new_tokens,
            eos_token_id=eos,
            pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos,
        )
        with torch.inference_mode():
            output = model.generate(**inputs, generation_config=generation)
        new_tokens = output[0, inputs["input_ids"].shape[1] :]
        return tokenizer.decode(new_tokens, skip_special_tokens=True)


# --------------------------------------------------------------------------- cache


class JudgeCache:
    """Raw judge answers on disk, one JSON line each, keyed by :meth:`key`.

    Only successful calls are stored (a failure is tried again next time). Lines record the
    key, backend, model, rubric version, time and answer; never a credential.
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / CACHE_FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._answers: dict[str, str] = {}
        self._lock = threading.Lock()
        if self.path.exists():
            with self.path.open(encoding="utf-8") as lines:
                for number, line in enumerate(lines, 1):
                    try:
                        entry = json.loads(line)
                        self._answers[entry["key"]] = entry["answer"]
                    except (ValueError, KeyError, TypeError):
                        # A run killed mid-write leaves a partial last line: skip it.
                        logger.warning("Skipping unreadable line %d of %s", number, self.path)

    @staticmethod
    def key(backend: str, model: str, messages: list[dict[str, str]], rubric_version: str) -> str:
        """SHA-256 of the backend, model, prompt and rubric version."""
        identity = {
            "backend": backend,
            "model": model,
            "prompt": messages,
            "rubric_version": rubric_version,
        }
        return hashlib.sha256(
            json.dumps(identity, sort_keys=True, ensure_ascii=False).encode("utf-8")
        ).hexdigest()

    def __len__(self) -> int:
        return len(self._answers)

    def get(self, key: str) -> str | None:
        """The stored answer, or ``None``."""
        return self._answers.get(key)

    def put(self, key: str, answer: str, **metadata: str) -> None:
        """Store an answer (appends a line; the last line for a key wins on reload)."""
        entry = {
            "key": key,
            **metadata,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "answer": answer,
        }
        with self._lock:
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(entry, ensure_ascii=False) + "\n")
            self._answers[key] = answer


# --------------------------------------------------------------------------- judge


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
