"""Evaluation conditions: the same test examples played in different states of the stems.

- ``as_mixed``: the stems at their levels in the mix as delivered (the target perturbed).
- ``gain_staged``: one common gain on anchor and target per example (a session recorded
  at another level, the same balance): drawn, seeded, from ``[min_db, max_db]``. A system
  that judges balance gives the same advice; one that judges absolute level does not.
- ``anchor_swapped``: the anchor replaced by the same stem of another test song; the target
  and its truth label are unchanged. A system that uses its anchor must get worse.

Every system sees the same rows of a condition, so systems are compared pairwise on the
same examples. :func:`condition_examples` rewrites the clips of each conversation; the
DSP baseline reads the same ``stage_db`` and ``anchor_excerpt_id`` columns.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from anchormix_kedro.advice_language.wording import audio_items, example_rng, formulation_clips
from anchormix_kedro.vocabulary import FORMULATIONS, messages_column

logger = logging.getLogger(__name__)

AS_MIXED, GAIN_STAGED, ANCHOR_SWAPPED = "as_mixed", "gain_staged", "anchor_swapped"
CONDITIONS: tuple[str, ...] = (AS_MIXED, GAIN_STAGED, ANCHOR_SWAPPED)
#: One line per condition for tables and reports.
CONDITION_DESCRIPTIONS: dict[str, str] = {
    AS_MIXED: "the stems at their levels in the mix, the target perturbed",
    GAIN_STAGED: "one common random gain on anchor and target per example (the same balance)",
    ANCHOR_SWAPPED: "the anchor taken from another test song; target and truth unchanged",
}


@dataclass(frozen=True)
class ConditionPlan:
    """One condition: how many examples (``None``: every test example) and its gain range."""

    name: str
    max_examples: int | None = None
    min_db: float = -12.0
    max_db: float = 6.0


@dataclass(frozen=True)
class ConditionSettings:
    """Which conditions run (``as_mixed`` always, first), on how many examples, by seed."""

    plans: tuple[ConditionPlan, ...]
    seed: int = 0

    @classmethod
    def from_params(cls, conditions: Mapping | None, seed: int = 0) -> ConditionSettings:
        """From ``inference.conditions`` (``{name: {max_examples, min_db, max_db}}``)."""
        conditions = dict(conditions or {AS_MIXED: {}})
        unknown = sorted(set(conditions) - set(CONDITIONS))
        if unknown:
            raise ValueError(
                f"inference.conditions names unknown conditions {unknown}; "
                f"expected some of {', '.join(CONDITIONS)}"
            )
        if AS_MIXED not in conditions:
            raise ValueError(
                "inference.conditions must include as_mixed: the other conditions, the "
                "rating study and the listwise judge are read against it"
            )
        plans = []
        for name in CONDITIONS:
            if name not in conditions:
                continue
            options = dict(conditions[name] or {})
            extra = sorted(set(options) - {"max_examples", "min_db", "max_db"})
            if extra:
                raise ValueError(
                    f"inference.conditions.{name} has unknown keys {extra}; "
                    "expected max_examples (and min_db, max_db for gain_staged)"
                )
            limit = options.get("max_examples")
            if limit is not None and int(limit) < 1:
                raise ValueError(
                    f"inference.conditions.{name}.max_examples must be at least 1 or null, "
                    f"got {limit}"
                )
            plan = ConditionPlan(
                name,
                None if limit is None else int(limit),
                float(options.get("min_db", -12.0)),
                float(options.get("max_db", 6.0)),
            )
            if plan.min_db > plan.max_db:
                raise ValueError(
                    f"inference.conditions.{name}: min_db ({plan.min_db}) is above max_db "
                    f"({plan.max_db})"
                )
            plans.append(plan)
        return cls(tuple(plans), int(seed))

    @property
    def names(self) -> list[str]:
        return [plan.name for plan in self.plans]


def as_mixed_rows(table: pd.DataFrame) -> pd.DataFrame:
    """The rows of condition ``as_mixed`` (all rows of a table without conditions): what
    people rate and what the correlations with their ratings are about."""
    if "condition" not in table.columns:
        return table
    return table[table["condition"].fillna(AS_MIXED) == AS_MIXED]


def order_conditions(conditions) -> list[str]:
    """Distinct conditions in their declared order (unknown names after, sorted)."""
    present = list(dict.fromkeys(str(c) for c in conditions))
    known = [c for c in CONDITIONS if c in present]
    return known + sorted(c for c in present if c not in CONDITIONS)


def _subset(examples: pd.DataFrame, limit: int | None, seed: int) -> pd.DataFrame:
    """The first ``limit`` examples in a seeded order: a smaller subset lies in a larger."""
    if limit is None or limit >= len(examples):
        return examples
    order = examples["example_id"].map(
        lambda example_id: example_rng(seed, example_id, "condition-subset").random()
    )
    return examples.loc[order.sort_values(kind="stable").index[:limit]].sort_index()


def swapped_anchors(examples: pd.DataFrame, seed: int) -> list[str]:
    """For each example, another song's excerpt whose same anchor stem is in the test set.

    Chosen per example by seed from the excerpts of other songs that have examples with
    that anchor (so the stem plays there). Raises ``ValueError`` when a song has no other.
    """
    by_anchor = {
        anchor: sorted(set(zip(group["excerpt_id"], group["song"], strict=True)))
        for anchor, group in examples.groupby("anchor")
    }
    chosen = []
    for ex in examples.itertuples(index=False):
        others = [excerpt for excerpt, song in by_anchor[ex.anchor] if song != ex.song]
        if not others:
            raise ValueError(
                f"anchor_swapped needs test songs other than {ex.song!r} with a {ex.anchor} "
                "stem; add test songs or leave anchor_swapped out of inference.conditions"
            )
        chosen.append(example_rng(seed, ex.example_id, "anchor-swap").choice(others))
    return chosen


def _rewritten(messages_json: str, formulation: str, ex, stage_db: float, anchor_from: str) -> str:
    """A conversation with its clips replaced by the condition's clips."""
    messages = json.loads(messages_json)
    uris = iter(
        formulation_clips(
            formulation, ex.excerpt_id, ex.anchor, ex.target, ex.gain_db, stage_db, anchor_from
        )
    )
    for item in audio_items(messages):
        item["audio_url"] = next(uris)
    return json.dumps(messages)


def condition_examples(test_examples: pd.DataFrame, settings: ConditionSettings) -> pd.DataFrame:
    """The test examples once per condition, with ``condition``, ``stage_db`` (the common
    gain on anchor and target) and ``anchor_excerpt_id`` columns, and every formulation's
    conversation playing that condition's clips."""
    columns = [messages_column(f) for f in FORMULATIONS if messages_column(f) in test_examples]
    tables = []
    for plan in settings.plans:
        rows = _subset(test_examples, plan.max_examples, settings.seed).copy()
        stage = [0.0] * len(rows)
        anchors = list(rows["excerpt_id"])
        if plan.name == GAIN_STAGED:
            stage = [
                round(
                    example_rng(settings.seed, e, "gain-stage").uniform(plan.min_db, plan.max_db),
                    1,
                )
                for e in rows["example_id"]
            ]
        elif plan.name == ANCHOR_SWAPPED:
            anchors = swapped_anchors(rows, settings.seed)
        rows["condition"] = plan.name
        rows["stage_db"] = stage
        rows["anchor_excerpt_id"] = anchors
        if plan.name != AS_MIXED:
            for column in columns:
                formulation = column.removeprefix("messages_")
                rows[column] = [
                    _rewritten(m, formulation, ex, s, a)
                    for m, ex, s, a in zip(
                        rows[column], rows.itertuples(index=False), stage, anchors, strict=True
                    )
                ]
        tables.append(rows)
        logger.info("Condition %s: %d test examples", plan.name, len(rows))
    return pd.concat(tables, ignore_index=True)
