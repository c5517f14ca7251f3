"""The judge's on-disk cache of raw answers, one JSON line each, never a credential."""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

logger = logging.getLogger(__name__)

CACHE_FILE_NAME = "judge_cache.jsonl"


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
