"""The listwise judge: every system's advice for one example, blind and shuffled, ranked.

For each example the judge sees the scenario once and the answers of all systems under
neutral labels (``A``, ``B``, ...) in an order shuffled from a seed and the example, so
neither a system's name nor its place in the list tells it apart. It ranks them best to
worst on the rubric's criteria taken together and gives a short reason, in strict JSON
(:func:`anchormix_kedro.evaluation.judge.output.parse_ranking`). The ranking is mapped
back to the systems; a failed call, malformed JSON, or a ranking that leaves out, repeats
or invents a label gives no rank at all, with the reason. Answers go through the judge's
cache (their own rubric version) and run ``max_in_flight`` at once, like pointwise ones.
"""

from __future__ import annotations

import random
import string
from collections.abc import Sequence
from dataclasses import dataclass

from anchormix_kedro.evaluation.judge.client import ask_all
from anchormix_kedro.evaluation.judge.output import JudgeOutputError, parse_ranking
from anchormix_kedro.evaluation.judge.prompt import criteria_text, scenario_text

LISTWISE_RUBRIC_VERSION = "anchormix-listwise-v1"
LABELS = tuple(string.ascii_uppercase)
TOO_FEW_ANSWERS = "fewer than two answers to rank"


@dataclass(frozen=True)
class ListwiseItem:
    """One example's scenario and the advice of every system that answered it.

    ``answers`` holds ``(system, advice)`` pairs (advice may be empty, never ``None``);
    the scenario fields mean what they mean in :class:`~.prompt.JudgeItem`.
    """

    item_id: str
    target: str
    answers: tuple[tuple[str, str], ...]
    anchor: str | None = None
    genre: str | None = None
    true_gain_db: float | None = None
    true_label: str | None = None

    @property
    def systems(self) -> list[str]:
        return [system for system, _ in self.answers]


def blind_order(item: ListwiseItem, seed: int) -> list[str]:
    """The systems in the order they are shown: shuffled from ``seed`` and the item id.

    The same seed and item always give the same order (a re-run hits the cache), whatever
    order the table lists the systems in.
    """
    systems = sorted(item.systems)
    if len(systems) > len(LABELS):
        raise ValueError(f"at most {len(LABELS)} systems can be ranked at once, got {systems}")
    random.Random(f"{seed}|{item.item_id}").shuffle(systems)
    return systems


def listwise_messages(item: ListwiseItem, order: Sequence[str]) -> list[dict[str, str]]:
    """The chat the judge reads: the rubric, the scenario and the labelled answers."""
    labels = LABELS[: len(order)]
    advice = dict(item.answers)
    system = (
        "You are an experienced mixing engineer comparing gain-balancing advice that "
        "several assistants gave about the same multitrack mix. Rank all the answers from "
        "best to worst on the criteria below, taken together.\n\n"
        f"Criteria:\n{criteria_text()}\n\n"
        f"The answers are labelled {', '.join(labels)}; their labels and their order say "
        "nothing about their quality. Answer with strict JSON only, no other text:\n"
        '{"ranking": ["<best label>", ..., "<worst label>"], '
        '"reason": "<one or two sentences>"}\n'
        "The ranking lists every label exactly once, with no ties."
    )
    answers = "\n\n".join(
        f'Answer {label}:\n"""\n{advice[name]}\n"""'
        for label, name in zip(labels, order, strict=True)
    )
    user = f"{scenario_text(item)}\n\nAnswers to rank:\n\n{answers}"
    return [{"role": "system", "content": system}, {"role": "user", "content": user}]


@dataclass(frozen=True)
class ListwiseResult:
    """The judge's ranking of one item's answers; ``ranking`` is ``None`` when ``error`` says why.

    ``order`` lists the systems as shown (``A`` first); ``ranking`` lists them best first.
    """

    item_id: str
    order: tuple[str, ...]
    ranking: tuple[str, ...] | None
    reason: str | None
    error: str | None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.ranking is not None

    def rank_of(self, system: str) -> int | None:
        """1 for the best, ``None`` without a ranking."""
        return None if self.ranking is None else self.ranking.index(system) + 1

    def label_of(self, system: str) -> str | None:
        return LABELS[self.order.index(system)] if system in self.order else None


def read_ranking(item: ListwiseItem, order: Sequence[str], answer) -> ListwiseResult:
    """The result ``answer`` (an :class:`~anchormix_kedro.evaluation.judge.Answer`) gives."""
    order = tuple(order)
    if answer.text is None:
        return ListwiseResult(item.item_id, order, None, None, answer.error)
    labels = LABELS[: len(order)]
    try:
        ranked_labels, reason = parse_ranking(answer.text, labels)
    except JudgeOutputError as error:
        return ListwiseResult(
            item.item_id, order, None, None, f"invalid judge output: {error}", answer.cached
        )
    system_of = dict(zip(labels, order, strict=True))
    ranking = tuple(system_of[label] for label in ranked_labels)
    return ListwiseResult(item.item_id, order, ranking, reason, None, answer.cached)


def rank_all(
    items: Sequence[ListwiseItem],
    judge,
    seed: int = 0,
    rubric_version: str = LISTWISE_RUBRIC_VERSION,
    progress: bool = True,
    max_in_flight: int | None = None,
) -> list[ListwiseResult]:
    """Rank every item's answers with ``judge`` (an :class:`~.LLMJudge`), in item order.

    Items with fewer than two answers are not sent (:data:`TOO_FEW_ANSWERS`).
    """
    orders = [blind_order(item, seed) for item in items]
    prompts = [
        listwise_messages(item, order) if len(order) >= 2 else None
        for item, order in zip(items, orders, strict=True)
    ]
    answers = ask_all(
        judge,
        prompts,
        rubric_version=rubric_version,
        progress=progress,
        description="Listwise judge",
        max_in_flight=max_in_flight,
    )
    return [
        ListwiseResult(item.item_id, tuple(order), None, None, TOO_FEW_ANSWERS)
        if answer is None
        else read_ranking(item, order, answer)
        for item, order, answer in zip(items, orders, answers, strict=True)
    ]
