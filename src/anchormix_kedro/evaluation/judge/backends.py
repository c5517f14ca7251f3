"""Judge backends: an OpenAI-compatible chat-completions server and a local causal LM.

- :class:`OpenAICompatibleBackend`: ``POST {base_url}/chat/completions`` (OpenAI, vLLM,
  Ollama, ...), with timeouts and retries (exponential backoff on timeouts, connection
  errors, 429 and 5xx; ``Retry-After`` honoured). The API key comes from a credentials
  dict or an environment variable and is never logged, cached or returned.
- :class:`TransformersBackend`: a local causal LM (path or cached model id), its chat
  template and greedy decoding.

A backend's ``max_in_flight`` says how many calls it can usefully serve at once: an HTTP
server answers many (each thread of :func:`anchormix_kedro.evaluation.judge.judge_all`
gets its own connection), a local model one at a time.
"""

from __future__ import annotations

import email.utils
import logging
import os
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

logger = logging.getLogger(__name__)


class JudgeCallError(RuntimeError):
    """The judge model could not be asked (after any retries); the message says why."""


class JudgeBackend(Protocol):
    """What :class:`LLMJudge` needs from a backend."""

    kind: str
    model: str
    max_in_flight: int | None  # None: as many as the caller asks; absent: one at a time

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
    ``Retry-After`` asks, at most ``max_backoff_s``. Other HTTP errors fail at once. Each
    thread calling :meth:`complete` has its own HTTP session, so calls in flight at once
    share no connection.
    """

    kind = "openai-compatible"
    max_in_flight = None  # a server answers as many at once as the caller sends

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
        self._sessions = threading.local()
        self._new_session = requests.Session

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

    def _session(self):
        """This thread's HTTP session (a session's connection pool is not shared)."""
        session = getattr(self._sessions, "session", None)
        if session is None:
            session = self._sessions.session = self._new_session()
        return session

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
                response = self._session().post(
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
    project runs offline). The model loads on first use, once, and answers one call at a
    time.
    """

    kind = "transformers"
    max_in_flight = 1

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

    def _load_unlocked(self) -> tuple[Any, Any]:
        """Load the model once (the caller holds the lock)."""
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
        with self._lock:  # one generation at a time: the model is not shared between calls
            return self._generate(messages)

    def _generate(self, messages: list[dict[str, str]]) -> str:
        import torch
        from transformers import GenerationConfig

        tokenizer, model = self._load_unlocked()
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
