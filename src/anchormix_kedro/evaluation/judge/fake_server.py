"""A local OpenAI-compatible judge for tests and benchmarks: fixed delay, checkable answers.

``POST /v1/chat/completions`` answers after ``--delay`` seconds, many requests at once, on
127.0.0.1. By default its answers are computed from the prompt, so a caller can check
that every answer landed in the right row:

- a pointwise prompt (``Advice to rate:``) gets four scores derived from a SHA-256 of the
  advice and a rationale naming that digest (:func:`expected_scores`); advice whose
  digest is a multiple of ``--malformed-every`` gets an answer that is not JSON;
- a listwise prompt (``Answers to rank:``) gets the labels ranked by that digest, lowest
  first (:func:`expected_ranking`).

Tests pass their own ``responder`` (the request's messages -> a :class:`Reply`) to script
statuses, headers, delays and malformed rankings. To try the project's judge settings
without a model:

    python -m anchormix_kedro.evaluation.judge.fake_server --port 8011 --delay 0.1
    kedro run --pipeline=automated_eval --params "automated_eval.judge.backend=openai,\
automated_eval.judge.base_url=http://127.0.0.1:8011/v1,automated_eval.judge.model=fake"
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CRITERIA = ("effectiveness", "musicality", "actionability", "helpfulness")
_ADVICE = re.compile(r'Advice to rate:\n"""\n(?P<advice>.*)\n"""\Z', re.S)
_ANSWER = re.compile(
    r'Answer (?P<label>[A-Z]):\n"""\n(?P<advice>.*?)\n"""(?=\n\nAnswer [A-Z]:|\Z)', re.S
)


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def expected_scores(advice: str) -> dict[str, int]:
    """The scores the default responder gives ``advice`` (each 1..7, from its digest)."""
    raw = bytes.fromhex(digest(advice))
    return {name: 1 + raw[i] % 7 for i, name in enumerate(CRITERIA)}


def expected_ranking(answers: dict[str, str]) -> list[str]:
    """The default responder's ranking of ``{label: advice}``: by digest, lowest first."""
    return sorted(answers, key=lambda label: (digest(answers[label]), label))


def prompt_answers(messages: list[dict]) -> dict[str, str]:
    """``{label: advice}`` of a listwise prompt, as shown."""
    user = messages[-1]["content"]
    return {m["label"]: m["advice"] for m in _ANSWER.finditer(user)}


def prompt_advice(messages: list[dict]) -> str | None:
    """The advice of a pointwise prompt, or ``None``."""
    found = _ADVICE.search(messages[-1]["content"])
    return None if found is None else found["advice"]


@dataclass
class Reply:
    """One HTTP reply: a 200's ``content`` is wrapped in the chat-completions shape."""

    content: str = ""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float | None = None  # None: the server's fixed delay


def default_responder(messages: list[dict], malformed_every: int = 0) -> Reply:
    answers = prompt_answers(messages)
    if answers:
        ranking = expected_ranking(answers)
        return Reply(json.dumps({"ranking": ranking, "reason": "ranked by digest"}))
    advice = prompt_advice(messages)
    if advice is None:
        return Reply(json.dumps({"error": "not a judge prompt"}), status=400)
    if malformed_every and int(digest(advice), 16) % malformed_every == 0:
        return Reply("I would rate this advice highly, but I cannot say in JSON.")
    scores = expected_scores(advice)
    return Reply(json.dumps({**scores, "rationale": f"digest {digest(advice)[:16]}"}))


class FakeJudgeServer:
    """The server on 127.0.0.1 (``port=0``: any free port); use it as a context manager.

    ``requests`` counts the requests served; ``peak_in_flight`` the most handled at once.
    """

    def __init__(
        self,
        delay_s: float = 0.1,
        responder: Callable[[list[dict]], Reply] | None = None,
        port: int = 0,
        malformed_every: int = 0,
    ):
        self.delay_s = float(delay_s)
        self.responder = responder or (lambda m: default_responder(m, malformed_every))
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
            # Headers and body go out as separate writes: without this, Nagle's algorithm
            # and the client's delayed ACK add about 40 ms to every answer.
            disable_nagle_algorithm = True

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server._lock:
                    server.requests += 1
                    server.in_flight += 1
                    server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
                try:
                    messages = json.loads(body)["messages"]
                    reply = server.responder(messages)
                except (ValueError, KeyError, TypeError) as error:
                    reply = Reply(json.dumps({"error": f"bad request: {error}"}), status=400)
                time.sleep(server.delay_s if reply.delay_s is None else reply.delay_s)
                content = reply.content
                if reply.status == 200:
                    message = {"role": "assistant", "content": reply.content}
                    content = json.dumps({"choices": [{"message": message}]})
                data = content.encode("utf-8")
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client stopped waiting (a timeout): nothing to send
                finally:
                    with server._lock:
                        server.in_flight -= 1

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> FakeJudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m anchormix_kedro.evaluation.judge.fake_server",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8011)
    parser.add_argument("--delay", type=float, default=0.1, help="seconds before each answer")
    parser.add_argument("--malformed-every", type=int, default=0, help="0: never")
    args = parser.parse_args(argv)
    with FakeJudgeServer(args.delay, port=args.port, malformed_every=args.malformed_every) as fake:
        sys.stdout.write(f"fake judge at {fake.url} (delay {args.delay} s); Ctrl-C to stop\n")
        sys.stdout.flush()
        try:
            threading.Event().wait()
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    main()
