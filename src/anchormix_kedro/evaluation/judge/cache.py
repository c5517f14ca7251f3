"""The judge's on-disk cache of raw answers, one JSON line each, never a credential.

Several threads of one run and several runs at once may share a cache folder: every line
is appended whole under an exclusive ``flock`` of the file, and a key not found in memory
is looked for again among the lines other processes appended since.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock; one process per cache folder there
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

CACHE_FILE_NAME = "judge_cache.jsonl"


class JudgeCache:
    """Raw judge answers on disk, one JSON line each, keyed by :meth:`key`.

    Only successful calls are stored (a failure is tried again next time). Lines record the
    key, backend, model, rubric version, time and answer; never a credential. Safe to share
    between threads and between processes (see the module's docstring).
    """

    def __init__(self, folder: str | Path):
        self.path = Path(folder) / CACHE_FILE_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._answers: dict[str, str] = {}
        self._read_up_to = 0  # bytes of the file already read, always at a line's end
        self._lines_read = 0
        self._lock = threading.Lock()
        with self._lock:
            self._read_new_lines()

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
        """The stored answer, or ``None``; looks at lines other processes added since."""
        with self._lock:
            if key not in self._answers:
                self._read_new_lines()
            return self._answers.get(key)

    def put(self, key: str, answer: str, **metadata: str) -> None:
        """Store an answer (appends a line; the last line for a key wins on reload)."""
        entry = {
            "key": key,
            **metadata,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "answer": answer,
        }
        line = (json.dumps(entry, ensure_ascii=False) + "\n").encode("utf-8")
        with self._lock:
            descriptor = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                _lock_file(descriptor, exclusive=True)
                if _ends_mid_line(descriptor):  # a writer killed mid-line: start afresh
                    line = b"\n" + line
                written = 0
                while written < len(line):  # a long line may take more than one write
                    written += os.write(descriptor, line[written:])
            finally:
                os.close(descriptor)  # closing releases the lock
            self._answers[key] = answer

    def _read_new_lines(self) -> None:
        """Parse the complete lines appended since the last read (caller holds the lock)."""
        try:
            if self.path.stat().st_size <= self._read_up_to:
                return
        except FileNotFoundError:
            return
        with self.path.open("rb") as lines:
            _lock_file(lines.fileno(), exclusive=False)
            lines.seek(self._read_up_to)
            data = lines.read()
        end = data.rfind(b"\n") + 1  # a line still being written is read next time
        for number, line in enumerate(data[:end].splitlines(), self._lines_read + 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                self._answers[entry["key"]] = entry["answer"]
            except (ValueError, KeyError, TypeError):
                # A run killed mid-write leaves a partial line: skip it.
                logger.warning("Skipping unreadable line %d of %s", number, self.path)
        self._read_up_to += end
        self._lines_read += data[:end].count(b"\n")


def _ends_mid_line(descriptor: int) -> bool:
    size = os.fstat(descriptor).st_size
    return size > 0 and os.pread(descriptor, 1, size - 1) != b"\n"


def _lock_file(descriptor: int, exclusive: bool) -> None:
    if fcntl is not None:
        fcntl.flock(descriptor, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
