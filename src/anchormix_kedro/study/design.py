"""Who rates what, and in which order: a balanced design, drawn as raters are invited.

Each rater gets ``per_rater`` of the study's scenarios:

- **every scenario about equally often**: a new rater takes, of each system, the scenarios
  rated least so far (ties drawn at random, examples the rater has not met first), so
  after any number of raters each scenario's rater count is within one of the others' of
  its system, and of all when the systems' shares are equal (WAET's least-completed pool);
- **every system about equally often**: ``per_rater`` is split evenly over the systems, the
  remainder going to other systems for each next rater, so a rater's systems are within one;
- **positions counterbalanced**: the order is made of blocks in which every system appears
  once, each block in the order of a row of a Latin square that shifts from block to block
  and from rater to rater, so no system sits early or late; the scenarios of a system fill
  its places in a random order, and two scenarios of one example never follow each other;
- **catch trials** (``catch``): a scenario whose advice plants the wrong direction, placed
  in the second half, and one of the rater's scenarios shown again (``repeat``) at least a
  third of the list later, for test-retest.

Assignments are drawn when raters are invited and stored; nothing here reads a database.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

#: The item of a scenario shown again: its scenario id and this suffix.
REPEAT_SUFFIX = "~repeat"
CATCH_SYSTEM = "catch"
KINDS = ("scenario", "catch", "repeat")


@dataclass(frozen=True)
class Slot:
    """One place in a rater's list: ``item`` (what the page shows and answers are saved
    under), the scenario it shows, and what kind of place it is."""

    position: int
    item: str
    scenario_id: str
    kind: str


def repeat_item(scenario_id: str) -> str:
    return scenario_id + REPEAT_SUFFIX


def scenario_of(item: str) -> str:
    """The scenario an item shows (a repeat shows the scenario it repeats)."""
    return item.removesuffix(REPEAT_SUFFIX)


def system_quotas(systems: Sequence[str], per_rater: int, rater_index: int,
                  available: Mapping[str, int]) -> dict[str, int]:  # fmt: skip
    """How many scenarios of each system rater ``rater_index`` (0-based) gets."""
    k = len(systems)
    base, extra = divmod(per_rater, k)
    quotas = {s: base for s in systems}
    for j in range(extra):
        quotas[systems[(rater_index * extra + j) % k]] += 1
    # A system with fewer scenarios than its share gives the rest to the others.
    spare = sum(max(0, quotas[s] - available[s]) for s in systems)
    quotas = {s: min(quotas[s], available[s]) for s in systems}
    while spare:
        open_ = [s for s in systems if quotas[s] < available[s]]
        if not open_:
            break
        for s in sorted(open_, key=lambda s: quotas[s]):
            if spare:
                quotas[s] += 1
                spare -= 1
    return quotas


def _pick(frame: pd.DataFrame, quota: int, counts: Mapping[str, int], seen: set[str],
          rng: random.Random) -> list[str]:  # fmt: skip
    rows = list(frame.itertuples(index=False))
    rng.shuffle(rows)
    rows.sort(key=lambda r: (counts.get(r.scenario_id, 0), r.example_id in seen))
    return [r.scenario_id for r in rows[:quota]]


def _latin_orders(systems: Sequence[str], rater_index: int, blocks: int) -> list[list[str]]:
    k = len(systems)
    return [[systems[(rater_index + b + j) % k] for j in range(k)] for b in range(blocks)]


def _separate_examples(order: list[str], example: Mapping[str, str], system: Mapping[str, str],
                       rng: random.Random) -> list[str]:  # fmt: skip
    """``order`` with no two scenarios of one example next to each other, by swapping
    scenarios of the same system (the system order stays); raises if none is found."""

    def clashes(seq: list[str], i: int) -> bool:
        return any(
            0 <= j < len(seq) and j != i and example[seq[j]] == example[seq[i]]
            for j in (i - 1, i + 1)
        )

    seq = list(order)
    for _attempt in range(200):
        bad = [i for i in range(1, len(seq)) if example[seq[i]] == example[seq[i - 1]]]
        if not bad:
            return seq
        i = bad[0]
        partners = [j for j in range(len(seq)) if j != i and system[seq[j]] == system[seq[i]]]
        rng.shuffle(partners)
        for j in partners:
            seq[i], seq[j] = seq[j], seq[i]
            if not clashes(seq, i) and not clashes(seq, j):
                break
            seq[i], seq[j] = seq[j], seq[i]
        else:
            # No same-system swap helps: move the scenario anywhere it clashes with nothing.
            item = seq.pop(i)
            places = [p for p in range(len(seq) + 1)
                      if not clashes(seq[:p] + [item] + seq[p:], p)]  # fmt: skip
            seq.insert(rng.choice(places) if places else i, item)
    raise ValueError("two scenarios of one example cannot be kept apart: add examples")


def assign_rater(
    key: pd.DataFrame,
    counts: Mapping[str, int],
    rater_index: int,
    per_rater: int | None,
    seed: int,
    catch_trials: bool = True,
) -> list[Slot]:
    """The list of rater ``rater_index`` (0-based, in order of invitation).

    ``key`` holds the study's scenarios (``scenario_id``, ``example_id``, ``system``; catch
    scenarios have system ``catch``); ``counts`` how often each scenario was assigned
    before. ``per_rater`` None: every (non-catch) scenario.
    """
    rng = random.Random(f"{seed}:{rater_index}")
    rated = key[key["system"] != CATCH_SYSTEM]
    catches = key[key["system"] == CATCH_SYSTEM]
    systems = sorted(rated["system"].unique())
    available = rated["system"].value_counts().to_dict()
    wanted = len(rated) if per_rater is None else min(int(per_rater), len(rated))
    if wanted < 1:
        raise ValueError(f"study.design.per_rater must be at least 1, got {per_rater}")
    quotas = system_quotas(systems, wanted, rater_index, available)
    seen: set[str] = set()
    chosen: dict[str, list[str]] = {}
    for s in systems:
        chosen[s] = _pick(rated[rated["system"] == s], quotas[s], counts, seen, rng)
        seen |= set(rated.set_index("scenario_id").loc[chosen[s], "example_id"])
        rng.shuffle(chosen[s])
    blocks = -(-wanted // max(1, len(systems)))
    order = []
    remaining = {s: list(v) for s, v in chosen.items()}
    for block in _latin_orders(systems, rater_index, blocks + max(quotas.values(), default=0)):
        for s in block:
            if remaining[s]:
                order.append(remaining[s].pop())
        if not any(remaining.values()):
            break
    example = dict(zip(key["scenario_id"], key["example_id"], strict=True))
    system = dict(zip(key["scenario_id"], key["system"], strict=True))
    order = _separate_examples(order, example, system, rng)
    slots = [(sid, sid, "scenario") for sid in order]
    if catch_trials and len(order) >= 3:
        if not catches.empty:
            catch = _pick(catches, 1, counts, seen, rng)[0]
            slots = _insert_apart(slots, (catch, catch, "catch"), len(slots) // 2, example, rng)
        first = rng.randrange(0, max(1, len(order) // 2))
        repeated = order[first]
        gap = max(2, len(order) // 3)
        slots = _insert_apart(slots, (repeat_item(repeated), repeated, "repeat"),
                              min(len(slots), first + gap), example, rng)  # fmt: skip
    return [Slot(p + 1, item, sid, kind) for p, (item, sid, kind) in enumerate(slots)]


def _insert_apart(slots: list[tuple[str, str, str]], entry: tuple[str, str, str], earliest: int,
                  example: Mapping[str, str], rng: random.Random) -> list[tuple[str, str, str]]:  # fmt: skip
    """``entry`` inserted at a random place from ``earliest`` on, next to no scenario of its
    example."""
    target = example[entry[1]]
    places = [
        p for p in range(earliest, len(slots) + 1)
        if all(example[slots[q][1]] != target for q in (p - 1, p) if 0 <= q < len(slots))
    ]  # fmt: skip
    place = rng.choice(places) if places else len(slots)
    return slots[:place] + [entry] + slots[place:]
