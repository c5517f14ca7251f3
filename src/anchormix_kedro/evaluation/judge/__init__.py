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
prompt, rubric version), so a re-run does not pay twice; runs may share a cache folder. A
failed call or an answer that is not valid JSON in the rubric's shape is recorded as
missing with the reason: scores are never invented. :func:`judge_all` judges many items
with ``max_in_flight`` calls at once (default 8), each identical prompt once, and one
progress bar over all items; rows keep the items' order.

The parts live in submodules and are handed on here: the judge itself and the pool that
asks many prompts in :mod:`.client`, the rubric and prompt in :mod:`.prompt`, answer
parsing in :mod:`.output`, the backends in :mod:`.backends`, the cache in :mod:`.cache`
and the bounded pool in :mod:`.concurrency`. The listwise judge,
which ranks the advice of every system for one example, is :mod:`.listwise`.
"""

from anchormix_kedro.evaluation.judge.backends import (
    JudgeBackend,
    JudgeCallError,
    OpenAICompatibleBackend,
    TransformersBackend,
)
from anchormix_kedro.evaluation.judge.cache import CACHE_FILE_NAME, JudgeCache
from anchormix_kedro.evaluation.judge.client import (
    JUDGE_COLUMNS,
    NO_JUDGE_MESSAGE,
    Answer,
    JudgeResult,
    LLMJudge,
    ask_all,
    judge_all,
    log_coverage,
    make_judge,
)
from anchormix_kedro.evaluation.judge.concurrency import DEFAULT_MAX_IN_FLIGHT, map_bounded
from anchormix_kedro.evaluation.judge.output import JudgeOutputError, parse_judge_output
from anchormix_kedro.evaluation.judge.prompt import (
    CRITERION_DEFINITIONS,
    RUBRIC_VERSION,
    JudgeItem,
    judge_messages,
)

__all__ = [
    "CACHE_FILE_NAME",
    "CRITERION_DEFINITIONS",
    "DEFAULT_MAX_IN_FLIGHT",
    "JUDGE_COLUMNS",
    "NO_JUDGE_MESSAGE",
    "RUBRIC_VERSION",
    "JudgeBackend",
    "JudgeCache",
    "JudgeCallError",
    "JudgeItem",
    "JudgeOutputError",
    "JudgeResult",
    "Answer",
    "LLMJudge",
    "OpenAICompatibleBackend",
    "TransformersBackend",
    "ask_all",
    "judge_all",
    "log_coverage",
    "judge_messages",
    "make_judge",
    "map_bounded",
    "parse_judge_output",
]
