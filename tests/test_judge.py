"""LLM judge: prompt, strict parsing, an OpenAI-compatible server run in the test, a tiny local LM,
concurrent calls and a cache shared between processes."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pandas as pd
import pytest

from anchormix_kedro.evaluation.judge import (
    JUDGE_COLUMNS,
    JudgeCache,
    JudgeItem,
    JudgeOutputError,
    LLMJudge,
    OpenAICompatibleBackend,
    TransformersBackend,
    judge_all,
    judge_messages,
    make_judge,
    parse_judge_output,
)
from anchormix_kedro.evaluation.judge import fake_server as fake
from anchormix_kedro.evaluation.judge.backends import _retry_after_seconds
from anchormix_kedro.vocabulary import CRITERIA

API_KEY = "sk-test-0123456789-SECRET"
GOOD_ANSWER = {
    "effectiveness": 6,
    "musicality": 5,
    "actionability": 7,
    "helpfulness": 6,
    "rationale": "Right direction and size; names the fader.",
}
ITEM = JudgeItem(
    item_id="ex-1",
    advice="Relative to the drums, the vocal is about 4 dB too loud: pull the vocal fader down by about 4 dB.",
    target="vocals",
    anchor="drums",
    genre="Rap",
    true_gain_db=4.0,
    true_label="too_loud",
)


# --------------------------------------------------------------------------- a scripted server


class ScriptedServer:
    """A chat-completions server on 127.0.0.1 answering from a script, recording requests.

    Each scripted reply is ``(status, content_or_body, headers, delay_s)``; a 200 reply's
    content is wrapped in the OpenAI response shape. After the script, replies repeat the
    last entry.
    """

    def __init__(self):
        self.script: list[tuple[int, str, dict, float]] = []
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with server.lock:
                    server.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body}
                    )
                    index = min(len(server.requests), len(server.script)) - 1
                    status, content, headers, delay = server.script[index]
                time.sleep(delay)
                if status == 200:
                    payload = {"choices": [{"message": {"role": "assistant", "content": content}}]}
                    content = json.dumps(payload)
                data = content.encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up waiting: that is what a timeout test wants

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def reply(self, status: int = 200, content: str = "", headers=None, delay: float = 0.0):
        self.script.append((status, content, headers or {}, delay))
        return self


@pytest.fixture
def server():
    scripted = ScriptedServer()
    scripted.thread.start()
    yield scripted
    scripted.httpd.shutdown()
    scripted.httpd.server_close()


def backend(server, **options) -> OpenAICompatibleBackend:
    settings = {"timeout_s": 5.0, "max_retries": 3, "backoff_s": 0.01} | options
    return OpenAICompatibleBackend(server.url, "judge-model", api_key=API_KEY, **settings)


# --------------------------------------------------------------------------- prompt and parsing


def test_prompt_holds_rubric_scenario_and_advice():
    system, user = judge_messages(ITEM)
    assert system["role"] == "system" and user["role"] == "user"
    for text in ("1 = very poor", "7 = excellent", *CRITERIA, '"rationale"', "strict JSON"):
        assert text in system["content"]
    for text in (
        "the drums",
        "the vocal",
        "Rap",
        "4.0 dB louder",
        "down by about 4.0 dB",
        ITEM.advice,
    ):
        assert text in user["content"]
    unknown = judge_messages(JudgeItem("x", "Leave it.", "bass"))[1]["content"]
    assert "unknown" in unknown and "heard on its own" in unknown


def test_items_from_rows_take_aliases_and_missing_values():
    item = JudgeItem.from_mapping(
        {"example_id": 7, "advice": "ok", "target": "bass", "anchor": float("nan"), "gain_db": -3}
    )
    assert item == JudgeItem("7", "ok", "bass", None, None, -3.0, None)
    no_answer = JudgeItem.from_mapping({"item_id": "8", "advice": None, "target": "bass"})
    assert no_answer.advice is None
    with pytest.raises(ValueError, match="item_id"):
        JudgeItem.from_mapping({"advice": "ok"})


def test_parse_accepts_plain_and_fenced_json():
    scores, rationale = parse_judge_output(json.dumps(GOOD_ANSWER))
    assert scores == {name: GOOD_ANSWER[name] for name in CRITERIA}
    assert rationale == GOOD_ANSWER["rationale"]
    fenced = f"```json\n{json.dumps(GOOD_ANSWER, indent=2)}\n```"
    assert parse_judge_output(fenced)[0] == scores
    assert parse_judge_output(f"```\n{json.dumps(GOOD_ANSWER)}\n```")[0] == scores
    assert parse_judge_output(json.dumps(GOOD_ANSWER | {"overall": 6}))[0] == scores


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("", "empty"),
        ("The advice is good. Score: 6", "not valid JSON"),
        (f"Here you go: {json.dumps(GOOD_ANSWER)}", "not valid JSON"),
        ("[1, 2, 3]", "JSON object"),
        (json.dumps({k: v for k, v in GOOD_ANSWER.items() if k != "musicality"}), "missing keys"),
        (json.dumps(GOOD_ANSWER | {"effectiveness": 8}), "outside the scale"),
        (json.dumps(GOOD_ANSWER | {"helpfulness": 0}), "outside the scale"),
        (json.dumps(GOOD_ANSWER | {"musicality": 5.5}), "must be an integer"),
        (json.dumps(GOOD_ANSWER | {"musicality": 5.0}), "must be an integer"),
        (json.dumps(GOOD_ANSWER | {"musicality": "5"}), "must be an integer"),
        (json.dumps(GOOD_ANSWER | {"musicality": True}), "must be an integer"),
        (json.dumps(GOOD_ANSWER | {"rationale": 3}), "rationale must be a string"),
        (json.dumps(GOOD_ANSWER).replace("6", "NaN", 1), "non-finite"),
        ('{"effectiveness": 5, "effectiveness": 6}', "duplicate keys"),
    ],
)
def test_parse_rejects_answers_outside_the_rubric(answer, reason):
    with pytest.raises(JudgeOutputError, match=reason):
        parse_judge_output(answer)


def test_retry_after_in_seconds_or_as_a_date():
    assert _retry_after_seconds("3") == 3.0
    assert _retry_after_seconds(None) is None and _retry_after_seconds("soon") is None
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 < _retry_after_seconds(later) <= 30


# --------------------------------------------------------------------------- HTTP backend


def test_good_answer_is_parsed_and_the_key_sent(server):
    server.reply(200, json.dumps(GOOD_ANSWER))
    result = LLMJudge(backend(server)).judge(ITEM)
    assert result.ok and result.error is None and not result.cached
    assert result.scores == {name: GOOD_ANSWER[name] for name in CRITERIA}
    (request,) = server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["Authorization"] == f"Bearer {API_KEY}"
    sent = json.loads(request["body"])
    assert sent["model"] == "judge-model" and sent["temperature"] == 0.0
    assert sent["messages"] == judge_messages(ITEM)


def test_missing_advice_is_not_sent_to_the_judge(server):
    server.reply(200, json.dumps(GOOD_ANSWER))
    result = LLMJudge(backend(server)).judge(JudgeItem("x", None, "bass", "drums"))
    assert not result.ok and result.error == "no advice to rate" and not server.requests


def test_malformed_json_is_missing_with_the_reason(server):
    server.reply(200, "effectiveness: 6, musicality: 5 (sorry, not JSON)")
    result = LLMJudge(backend(server)).judge(ITEM)
    assert not result.ok and result.scores is None and result.rationale is None
    assert result.error.startswith("invalid judge output: not valid JSON")
    assert len(server.requests) == 1  # a deterministic bad answer is not asked again


def test_timeout_is_retried_then_missing(server):
    server.reply(200, json.dumps(GOOD_ANSWER), delay=1.5)
    judge = LLMJudge(backend(server, timeout_s=0.3, max_retries=1))
    started = time.monotonic()
    result = judge.judge(ITEM)
    assert time.monotonic() - started < 1.5
    assert not result.ok
    assert "gave up after 2 attempts: timed out after 0.3 s" in result.error
    assert len(server.requests) == 2


def test_429_then_500_then_success_retries_and_honours_retry_after(server):
    server.reply(429, '{"error": "slow down"}', headers={"Retry-After": "1"})
    server.reply(500, '{"error": "oops"}')
    server.reply(200, json.dumps(GOOD_ANSWER))
    started = time.monotonic()
    result = LLMJudge(backend(server, backoff_s=0.01)).judge(ITEM)
    assert result.ok
    assert len(server.requests) == 3
    assert time.monotonic() - started >= 0.95  # waited what Retry-After asked, not 0.01 s


def test_client_errors_fail_at_once_and_never_show_the_key(server):
    server.reply(401, json.dumps({"error": f"invalid key {API_KEY}"}))
    result = LLMJudge(backend(server)).judge(ITEM)
    assert not result.ok and "HTTP 401" in result.error
    assert API_KEY not in result.error and "***" in result.error
    assert len(server.requests) == 1


def test_cache_hit_on_the_second_call_sends_no_request(server, tmp_path):
    server.reply(200, json.dumps(GOOD_ANSWER))
    first = LLMJudge(backend(server), cache_dir=tmp_path).judge(ITEM)
    again = LLMJudge(backend(server), cache_dir=tmp_path).judge(
        ITEM
    )  # a fresh process, same folder
    assert len(server.requests) == 1
    assert not first.cached and again.cached and again.scores == first.scores
    other_rubric = LLMJudge(backend(server), cache_dir=tmp_path, rubric_version="v2").judge(ITEM)
    assert not other_rubric.cached and len(server.requests) == 2


def test_failed_calls_are_not_cached(server, tmp_path):
    server.reply(503, "down").reply(200, json.dumps(GOOD_ANSWER))
    failed = LLMJudge(backend(server, max_retries=0), cache_dir=tmp_path).judge(ITEM)
    assert not failed.ok and "HTTP 503" in failed.error
    retried = LLMJudge(backend(server, max_retries=0), cache_dir=tmp_path).judge(ITEM)
    assert retried.ok and not retried.cached and len(server.requests) == 2


def test_api_key_never_reaches_cache_results_or_logs(server, tmp_path, caplog, monkeypatch):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ANCHORMIX_TEST_JUDGE_KEY", API_KEY)
    server.reply(429, "busy", headers={"Retry-After": "0"}).reply(200, json.dumps(GOOD_ANSWER))
    judge = make_judge(
        {
            "backend": "openai",
            "base_url": server.url,
            "model": "judge-model",
            "api_key_env": "ANCHORMIX_TEST_JUDGE_KEY",
            "backoff_s": 0.01,
            "cache_dir": str(tmp_path / "cache"),
        }
    )
    frame = judge_all([ITEM], judge, progress=False)
    assert frame.loc[0, "judge_ok"]
    assert all(r["headers"]["Authorization"] == f"Bearer {API_KEY}" for r in server.requests)
    stored = "".join(p.read_text() for p in (tmp_path / "cache").rglob("*") if p.is_file())
    assert stored and API_KEY not in stored
    assert API_KEY not in frame.to_csv() and API_KEY not in caplog.text
    assert API_KEY not in repr(judge) and API_KEY not in repr(judge.backend)
    assert "***" in repr(judge.backend)


def test_credentials_dict_supplies_the_key(server):
    server.reply(200, json.dumps(GOOD_ANSWER))
    judge = make_judge(
        {"backend": "openai", "base_url": server.url, "model": "m"},
        credentials={"api_key": API_KEY},
    )
    assert judge.judge(ITEM).ok
    assert server.requests[0]["headers"]["Authorization"] == f"Bearer {API_KEY}"


def test_judge_all_frame_with_a_progress_bar(server, tmp_path):
    server.reply(200, json.dumps(GOOD_ANSWER)).reply(200, "not json").reply(
        200, json.dumps(GOOD_ANSWER)
    )
    items = pd.DataFrame(
        [
            {
                "item_id": "a",
                "advice": "Pull the vocal down 4 dB.",
                "target": "vocals",
                "anchor": "drums",
            },
            {"item_id": "b", "advice": "Sits well.", "target": "bass", "anchor": "drums"},
        ]
    )
    judge = LLMJudge(backend(server), cache_dir=tmp_path)
    # One call at a time: the server's queued answers then meet the items in order.
    frame = judge_all(items, judge, progress=True, max_in_flight=1)
    assert list(frame.columns) == list(JUDGE_COLUMNS)
    assert frame["item_id"].tolist() == ["a", "b"]
    assert frame["judge_ok"].tolist() == [True, False]
    assert str(frame["effectiveness"].dtype) == "Int64"
    assert frame.loc[0, "actionability"] == 7 and pd.isna(frame.loc[1, "actionability"])
    assert frame.loc[1, "judge_error"].startswith("invalid judge output")
    rerun = judge_all(items, judge, progress=False)  # both answers come from the cache
    assert rerun["judge_cached"].tolist() == [True, True] and len(server.requests) == 2


# --------------------------------------------------------------------------- no judge, config


def test_no_judge_configured_gives_missing_scores_and_says_so(caplog):
    caplog.set_level(logging.INFO)
    assert make_judge({"backend": "none"}) is None
    assert make_judge(None) is None
    frame = judge_all([ITEM], None)
    assert "No LLM judge is configured" in caplog.text
    assert len(frame) == 1 and frame[list(CRITERIA)].isna().all().all()
    assert frame.loc[0, "judge_error"] == "no judge configured" and not frame.loc[0, "judge_ok"]


def test_configuration_errors_are_plain():
    with pytest.raises(ValueError, match="unknown judge backend"):
        make_judge({"backend": "claude-desktop"})
    with pytest.raises(ValueError, match="unknown options \\['temprature'\\]"):
        make_judge({"backend": "openai", "base_url": "http://x", "model": "m", "temprature": 0})
    with pytest.raises(ValueError, match="needs base_url and model"):
        make_judge({"backend": "openai", "model": "m"})
    with pytest.raises(ValueError, match="needs model"):
        make_judge({"backend": "transformers"})


# --------------------------------------------------------------------------- local transformers


@pytest.fixture(scope="module")
def tiny_causal_lm(tmp_path_factory):
    """A randomly initialised one-layer Llama with a byte-level BPE trained on the prompt."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    corpus = [m["content"] for m in judge_messages(ITEM)] + [json.dumps(GOOD_ANSWER)]
    bpe.train_from_iterator(
        corpus * 4,
        trainers.BpeTrainer(
            vocab_size=600,
            special_tokens=specials,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe, eos_token="<|endoftext|>", pad_token="<|endoftext|>"
    )
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny_judge")
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_local_transformers_judge_records_invalid_output_as_missing(tiny_causal_lm, tmp_path):
    backend = TransformersBackend(tiny_causal_lm, max_new_tokens=12, device="cpu")
    judge = LLMJudge(backend, cache_dir=tmp_path)
    result = judge.judge(ITEM)
    assert not result.ok and result.scores is None
    assert result.error.startswith("invalid judge output")
    assert result.backend == "transformers" and result.model == str(tiny_causal_lm)

    key = JudgeCache.key(backend.kind, backend.model, judge_messages(ITEM), judge.rubric_version)
    assert backend.complete(judge_messages(ITEM)) == judge.cache.get(key)  # greedy: same answer
    again = judge.judge(ITEM)
    assert again.cached and again.error == result.error

    configured = make_judge(
        {"backend": "transformers", "model": str(tiny_causal_lm), "max_new_tokens": 4}
    )
    frame = judge_all([ITEM], configured, progress=False)
    assert frame.loc[0, "judge_ok"] == False  # noqa: E712
    assert frame[list(CRITERIA)].isna().all().all()


# --------------------------------------------------------------------------- concurrency


def many_items(n: int) -> list[JudgeItem]:
    return [
        JudgeItem(f"it-{i:03d}", f"Pull the vocal down {i} dB.", "vocals", "drums", "Rap", 4.0)
        for i in range(n)
    ]


def test_calls_run_concurrently_within_the_bound_and_rows_keep_their_items(capsys):
    items = many_items(40)
    with fake.FakeJudgeServer(delay_s=0.2, malformed_every=5) as server:
        judge = LLMJudge(backend(server), max_in_flight=4)
        frame = judge_all(items, judge, progress=True)
        assert server.requests == 40 and server.peak_in_flight == 4  # bounded, and used
    assert frame["item_id"].tolist() == [item.item_id for item in items]
    malformed = 0
    for item, row in zip(items, frame.itertuples(index=False), strict=True):
        if int(fake.digest(item.advice), 16) % 5 == 0:  # the server answered prose
            malformed += 1
            assert not row.judge_ok and row.judge_error.startswith("invalid judge output")
            assert all(pd.isna(getattr(row, name)) for name in CRITERIA)  # nothing invented
        else:
            assert {name: getattr(row, name) for name in CRITERIA} == fake.expected_scores(
                item.advice
            )
            assert fake.digest(item.advice)[:16] in row.rationale
    assert 0 < malformed < 40
    assert "40/40" in capsys.readouterr().err  # one progress bar over every item


def test_identical_prompts_are_sent_once_and_share_the_answer():
    distinct = many_items(3)
    items = [
        JudgeItem(f"copy-{k}", item.advice, item.target, item.anchor, item.genre, 4.0)
        for k, item in enumerate(distinct * 4)
    ]
    with fake.FakeJudgeServer(delay_s=0.02) as server:
        frame = judge_all(items, LLMJudge(backend(server)), progress=False)
        assert server.requests == 3
    assert frame["judge_ok"].all()
    assert frame["judge_cached"].tolist() == [False] * 3 + [True] * 9  # no call for copies
    assert frame["effectiveness"].tolist() == frame["effectiveness"].tolist()[:3] * 4


def test_retry_after_and_timeouts_hold_for_each_call_in_flight():
    attempts: dict[str, int] = {}
    lock = threading.Lock()

    def responder(messages):
        advice = fake.prompt_advice(messages)
        with lock:
            attempts[advice] = attempts.get(advice, 0) + 1
            first = attempts[advice] == 1
        if "slow" in advice:
            return fake.Reply(json.dumps(GOOD_ANSWER), delay_s=1.5)
        if first:
            return fake.Reply('{"error": "busy"}', status=429, headers={"Retry-After": "1"})
        return fake.Reply(json.dumps(GOOD_ANSWER))

    items = many_items(6) + [JudgeItem("slow", "slow advice", "bass", "drums")]
    with fake.FakeJudgeServer(delay_s=0.0, responder=responder) as server:
        judge = LLMJudge(backend(server, timeout_s=0.3, max_retries=1), max_in_flight=8)
        started = time.monotonic()
        frame = judge_all(items, judge, progress=False)
        elapsed = time.monotonic() - started
    assert frame["judge_ok"].tolist() == [True] * 6 + [False]
    assert "timed out after 0.3 s" in frame.loc[6, "judge_error"]
    assert all(count == 2 for count in attempts.values())  # each retried once, on its own
    assert elapsed >= 0.95  # every 429 waited the second its Retry-After asked for


def test_max_in_flight_is_configured_checked_and_one_for_a_local_model(tiny_causal_lm):
    config = {"backend": "openai", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    assert make_judge(config).calls_at_once == 8  # the default
    assert make_judge(config | {"max_in_flight": 16}).calls_at_once == 16
    for bad in (0, "8", 2.5):
        with pytest.raises(ValueError, match="max_in_flight"):
            make_judge(config | {"max_in_flight": bad})
    local = make_judge({"backend": "transformers", "model": str(tiny_causal_lm)})
    assert local.max_in_flight == 8 and local.calls_at_once == 1


# --------------------------------------------------------------------------- shared cache

_WRITER = """
import sys, time
from pathlib import Path
from anchormix_kedro.evaluation.judge import JudgeCache
folder, name, go = sys.argv[1], sys.argv[2], Path(sys.argv[3])
cache = JudgeCache(folder)
while not go.exists():
    time.sleep(0.005)
for i in range(150):
    cache.put(f"{name}-{i}", name * 40_000 + str(i), backend="b", model="m")
"""


def test_two_processes_share_one_cache_without_losing_or_mixing_lines(tmp_path, caplog):
    folder, go = tmp_path / "cache", tmp_path / "go"
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, str(folder), name, str(go)])
        for name in ("x", "y")
    ]
    time.sleep(1.0)  # both have started and wait at the line
    go.touch()
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0]
    caplog.set_level(logging.WARNING)
    cache = JudgeCache(folder)
    assert len(cache) == 300 and "unreadable" not in caplog.text
    for name in ("x", "y"):
        for i in range(150):
            assert cache.get(f"{name}-{i}") == name * 40_000 + str(i)  # each line whole


def test_a_cache_sees_answers_written_since_and_survives_a_cut_line(tmp_path, caplog):
    early, late = JudgeCache(tmp_path), JudgeCache(tmp_path)
    late.put("k1", "answer one")
    assert early.get("k1") == "answer one"  # written by another instance after it loaded
    with (tmp_path / "judge_cache.jsonl").open("a") as out:
        out.write('{"key": "cut", "answ')  # a writer killed mid-line
    assert early.get("cut") is None
    early.put("k2", "answer two")
    caplog.set_level(logging.WARNING)
    fresh = JudgeCache(tmp_path)
    assert (fresh.get("k1"), fresh.get("k2"), fresh.get("cut")) == (
        "answer one",
        "answer two",
        None,
    )
    assert "Skipping unreadable line 2" in caplog.text
