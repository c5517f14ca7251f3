"""Simulated raters: rehearse the whole analysis, and size the study, before recruiting.

A simulated rater rates each scenario of their list (drawn by the study's own design) as

    rating = round(mean + effect(system, genre) + rater + example + scenario + noise)

clipped to the 7-point scale, each criterion with noise of its own. ``rater``, ``example``
and ``scenario`` (one system's advice on one example) are normal random effects with the
standard deviations of :class:`RaterModel`; ``effect`` is what the organiser plants
(``--effect advisor=0.5`` adds half a point to the advisor on every criterion,
``advisor@Jazz=-1`` takes one off in one genre); without effects no system differs.

Honest raters rate the wrong-direction catch scenario low, answer the repeated scenario
again with fresh noise, play the audio and pass the headphone check. A share of careless
raters (``careless_share``) rate everything 4 to 7 without listening: the study's exclusion
rule should find them. Honest raters write a comment on a share of scenarios
(``comment_share``), a phrase of one code of the codebook, so the thematic analysis can be
rehearsed too: the planted code of every comment is kept.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from anchormix_kedro.evaluation.statistics import seeded_rng
from anchormix_kedro.study.design import CATCH_SYSTEM, Slot, assign_rater
from anchormix_kedro.vocabulary import CRITERIA, LIKERT_MAX, LIKERT_MIN

#: Simulated comments by code: what raters of gain advice write (codes not in the
#: codebook are not written).
PHRASES: dict[str, tuple[str, ...]] = {
    "wrong_direction": ("This would make it worse: the vocal needs to come up, not down.",
                        "Wrong way round, the target is already buried."),
    "wrong_amount": ("Right idea but 6 dB is far too much, 2 would do.",
                     "Direction is fine, the amount is too timid to hear."),
    "vague": ("It doesn't say by how much.", "Too general to act on."),
    "ignores_context": ("Ignores what the drums are doing in this section.",
                        "Doesn't consider the genre at all."),
    "clear_and_specific": ("Clear: which fader, which way, how far.",
                           "Exactly the move I would make, and it says how much."),
    "musical_judgement": ("Keeps the groove of the track in mind.",
                          "Feels right for the style, the vocal sits on top."),
    "technical_alternative": ("I'd rather fix this with EQ than the fader.",
                              "Some compression would solve it better than gain."),
    "tone_or_wording": ("Wordy, could be one sentence.", "Odd phrasing but understandable."),
}  # fmt: skip
NEGATIVE_CODES = ("wrong_direction", "wrong_amount", "vague", "ignores_context")
POSITIVE_CODES = ("clear_and_specific", "musical_judgement")
NEUTRAL_CODES = ("technical_alternative", "tone_or_wording", "vague")
SECONDS_PER_SCENARIO = 25.0


@dataclass(frozen=True)
class RaterModel:
    """The simulated raters' assumptions, in scale points (``study.simulation``)."""

    mean: float = 4.5
    rater_sd: float = 0.6
    example_sd: float = 0.5
    scenario_sd: float = 0.4
    noise_sd: float = 1.0
    careless_share: float = 0.1
    comment_share: float = 0.3

    @classmethod
    def from_params(cls, params: Mapping | None) -> RaterModel:
        known = {f.name for f in fields(cls)}
        params = dict(params or {})
        unknown = sorted(set(params) - known)
        if unknown:
            raise ValueError(f"study.simulation: unknown settings {unknown}; known: "
                             f"{', '.join(sorted(known))}")  # fmt: skip
        for name, value in params.items():
            try:
                number = float(value)
            except (TypeError, ValueError):
                number = math.nan
            if not math.isfinite(number):
                raise ValueError(f"study.simulation.{name} must be a number, got {value!r}")
        model = cls(**{k: float(v) for k, v in params.items()})
        for name in known - {"mean"}:
            if getattr(model, name) < 0:
                raise ValueError(f"study.simulation.{name} must be at least 0")
        for name in ("careless_share", "comment_share"):
            if getattr(model, name) >= 1:
                raise ValueError(f"study.simulation.{name} must be below 1")
        return model


#: Planted effects: (system, genre or None for every genre) -> points.
Effects = dict[tuple[str, str | None], float]


def parse_effects(texts: Sequence[str], systems: Sequence[str], genres: Sequence[str]) -> Effects:
    """``["advisor=0.5", "advisor@Jazz=-1"]`` as :data:`Effects`, or a ValueError that
    names the bad one and lists the study's systems or genres."""
    effects: Effects = {}
    for text in texts:
        target, sep, points = text.rpartition("=")
        system, _at, genre = target.partition("@")
        try:
            value = float(points)
        except ValueError:
            value = math.nan
        if not sep or not system or (_at and not genre) or not math.isfinite(value):
            raise ValueError(f"--effect {text!r}: expected SYSTEM=POINTS or SYSTEM@GENRE=POINTS, "
                             "e.g. advisor=0.5")  # fmt: skip
        if system not in systems:
            raise ValueError(f"--effect {text!r}: the study has no system {system!r}; it has "
                             f"{', '.join(systems)}")  # fmt: skip
        if genre and genre not in genres:
            raise ValueError(f"--effect {text!r}: the study has no genre {genre!r}; it has "
                             f"{', '.join(genres)}")  # fmt: skip
        effects[(system, genre or None)] = effects.get((system, genre or None), 0.0) + value
    return effects


def draw_lists(key: pd.DataFrame, n_raters: int, design: Mapping) -> list[list[Slot]]:
    """Each rater's list as ``anchormix study invite`` draws it (``study.design``)."""
    counts: dict[str, int] = {}
    lists = []
    for index in range(n_raters):
        slots = assign_rater(key, counts, index, design.get("per_rater"),
                             int(design.get("seed", 0)),
                             catch_trials=bool(design.get("catch_trials", True)))  # fmt: skip
        for slot in slots:
            if slot.kind != "repeat":
                counts[slot.scenario_id] = counts.get(slot.scenario_id, 0) + 1
        lists.append(slots)
    return lists


def careless_raters(n_raters: int, share: float, seed: int) -> set[int]:
    """Which raters (0-based) are careless: ``round(n * share)`` of them, drawn."""
    count = int(round(n_raters * share))
    return set(seeded_rng(seed, "careless").choice(n_raters, size=count, replace=False).tolist())


@dataclass(frozen=True)
class SimulatedStudy:
    """Simulated answers: ``answers`` one row per rater and item (``rater``, ``item``,
    ``scenario_id``, ``kind``, the criteria, ``field``, ``text``, ``code``: the planted
    code of the comment), ``raters`` one row per rater (``rater``, ``careless``,
    ``listened_seconds``, ``headphone_correct``)."""

    answers: pd.DataFrame
    raters: pd.DataFrame


def simulate(key: pd.DataFrame, lists: Sequence[Sequence[Slot]], model: RaterModel,
             effects: Effects | None = None, seed: int = 0,
             codes: Sequence[str] | None = None) -> SimulatedStudy:  # fmt: skip
    """Every rater's answers to their list (see the module's docstring); ``codes``: the
    codebook's codes (None: every code of :data:`PHRASES`)."""
    effects = effects or {}
    codes = [c for c in (codes if codes is not None else PHRASES) if c in PHRASES]
    scenarios = key.set_index("scenario_id")
    genre = scenarios["genre"] if "genre" in scenarios else pd.Series("", index=scenarios.index)
    example_effect = {e: seeded_rng(seed, "example", str(e)).normal(0, model.example_sd)
                      for e in scenarios["example_id"].unique()}  # fmt: skip
    careless = careless_raters(len(lists), model.careless_share, seed)
    answers, people = [], []
    for index, slots in enumerate(lists):
        rater = f"rater-{index + 1:03d}"
        rng = seeded_rng(seed, "rater", str(index))
        # Comments draw from a stream of their own: the ratings do not depend on the codebook.
        talk = seeded_rng(seed, "comments", str(index))
        shift = rng.normal(0, model.rater_sd)
        for slot in slots:
            row = {"rater": rater, "item": slot.item, "scenario_id": slot.scenario_id,
                   "kind": slot.kind, "field": None, "text": None, "code": None}  # fmt: skip
            system = scenarios.at[slot.scenario_id, "system"]
            if index in careless:
                row.update({c: int(rng.integers(4, LIKERT_MAX + 1)) for c in CRITERIA})
            elif system == CATCH_SYSTEM:
                row.update({c: int(rng.integers(LIKERT_MIN, 3 if c == "effectiveness" else 4))
                            for c in CRITERIA})  # fmt: skip
            else:
                example = scenarios.at[slot.scenario_id, "example_id"]
                centre = (model.mean + shift + example_effect[example]
                          + seeded_rng(seed, "scenario", str(slot.scenario_id)).normal(0, model.scenario_sd)
                          + effects.get((system, None), 0.0)
                          + effects.get((system, genre.at[slot.scenario_id]), 0.0))  # fmt: skip
                values = centre + rng.normal(0, model.noise_sd, len(CRITERIA))
                row.update({c: int(np.clip(np.rint(v), LIKERT_MIN, LIKERT_MAX))
                            for c, v in zip(CRITERIA, values, strict=True)})  # fmt: skip
                if slot.kind == "scenario" and codes and talk.random() < model.comment_share:
                    row.update(_comment(np.mean(values), codes, talk))
            answers.append(row)
        people.append({"rater": rater, "careless": index in careless,
                       "listened_seconds": (float(rng.uniform(0, 5)) if index in careless
                                            else SECONDS_PER_SCENARIO * len(slots)),
                       "headphone_correct": int(rng.integers(0, 2)) if index in careless else 3})  # fmt: skip
    columns = ["rater", "item", "scenario_id", "kind", *CRITERIA, "field", "text", "code"]
    return SimulatedStudy(pd.DataFrame(answers, columns=columns), pd.DataFrame(people))


def _comment(level: float, codes: Sequence[str], rng: np.random.Generator) -> dict:
    """A comment of one code, fitting how the rater rated the scenario."""
    if level <= 3.5:
        pool, field = NEGATIVE_CODES, "weaknesses"
    elif level >= 5.0:
        pool, field = POSITIVE_CODES, "strengths"
    else:
        pool, field = NEUTRAL_CODES, "suggestions"
    pool = [c for c in pool if c in codes] or list(codes)
    code = pool[int(rng.integers(len(pool)))]
    phrases = PHRASES[code]
    return {"field": field, "text": phrases[int(rng.integers(len(phrases)))], "code": code}


def quality_tables(simulated: SimulatedStudy, version: str) -> dict[str, pd.DataFrame]:
    """The simulated study in the tables the quality checks read
    (:func:`anchormix_kedro.study.quality.rater_quality`), without a database."""
    answers = simulated.answers.assign(study_version=version)
    raters = simulated.raters.assign(study_version=version)
    return {
        "raters": raters[["rater", "study_version"]],
        "assignments": answers[["item", "scenario_id", "kind", "rater", "study_version"]],
        "answers": answers[["item", *CRITERIA, "rater", "study_version"]],
        "listened": raters.rename(columns={"listened_seconds": "seconds"})[
            ["study_version", "rater", "seconds"]],
        "checks": raters.rename(columns={"headphone_correct": "correct"})[
            ["study_version", "rater", "correct"]],
    }  # fmt: skip


def write_simulated_study(store, study, design, n_raters: int, model: RaterModel,
                          effects: Effects | None = None, seed: int = 0,
                          codes: Sequence[str] | None = None) -> SimulatedStudy:  # fmt: skip
    """Invite ``n_raters`` simulated raters to ``study`` in ``store`` (drawing their lists
    with ``design``, as ``anchormix study invite`` does) and save their consent,
    background, checks, listening and answers through the same calls the server makes."""
    invited = store.invite(study.version, n_raters, design)
    ids = [store.rater_by_token(token).id for _label, token in invited]
    lists = [[Slot(r.position, r.item, r.scenario_id, r.kind) for r in store.assignment_of(i)]
             for i in ids]  # fmt: skip
    simulated = simulate(study.key, lists, model, effects, seed, codes)
    # The store numbers raters on from those invited before: use its labels.
    labels = {f"rater-{i + 1:03d}": label for i, (label, _token) in enumerate(invited)}
    simulated = SimulatedStudy(simulated.answers.assign(rater=simulated.answers["rater"].map(labels)),
                               simulated.raters.assign(rater=simulated.raters["rater"].map(labels)))  # fmt: skip
    people = simulated.raters.set_index("rater")
    rater_ids = dict(zip(labels.values(), ids, strict=True))
    for label, rater_id in rater_ids.items():
        person = people.loc[label]
        store.consent(rater_id)
        store.set_background(rater_id, {"role": "Mixing engineer", "experience_years": "5-10 years",
                                        "listening_setup": "Headphones", "genres": "simulated"})  # fmt: skip
        store.log_events(rater_id, [
            ("headphone_check", None, {"correct": int(person["headphone_correct"])}),
            ("listened", None, {"seconds": float(person["listened_seconds"])}),
        ])  # fmt: skip
    for row in simulated.answers.itertuples(index=False):
        texts = {row.field: row.text} if isinstance(row.field, str) else {}
        store.save_answer(rater_ids[row.rater], row.item, 0,
                          {c: getattr(row, c) for c in CRITERIA}, texts,
                          save_id=f"simulated-{row.item}"[:64])  # fmt: skip
    return simulated


def coder_files_from_planted(answers: pd.DataFrame, key: pd.DataFrame, disagreement: float = 0.1,
                             seed: int = 0) -> dict[str, pd.DataFrame]:  # fmt: skip
    """Two simulated coders' files (``comment_id``, ``codes``) of the simulated comments:
    ``coder-a`` gives each comment its planted code; ``coder-b`` does too but for a share
    ``disagreement`` of comments, where it gives another code."""
    from anchormix_kedro.study.kit.page_csv import FEEDBACK_COLUMNS
    from anchormix_kedro.study.themes import comment_systems, comments_for_coding

    written = answers[
        answers["field"].map(lambda f: isinstance(f, str)) & (answers["kind"] == "scenario")
    ]
    ratings = written[["rater", "scenario_id"]].copy()
    for field in FEEDBACK_COLUMNS:
        ratings[field] = written["text"].where(written["field"] == field, "")
    ids = comments_for_coding(ratings, key)[["comment_id", "scenario_id", "field"]].merge(
        comment_systems(ratings, key)[["comment_id", "rater"]], on="comment_id"
    )
    planted = written.merge(ids, on=["rater", "scenario_id", "field"], how="inner",
                            validate="one_to_one")  # fmt: skip
    codes = sorted(set(planted["code"]))
    rng = seeded_rng(seed, "coders")
    second = [code if rng.random() >= disagreement or len(codes) < 2
              else rng.choice([c for c in codes if c != code]) for code in planted["code"]]  # fmt: skip
    return {"coder-a": pd.DataFrame({"comment_id": planted["comment_id"], "codes": planted["code"]}),
            "coder-b": pd.DataFrame({"comment_id": planted["comment_id"], "codes": second})}  # fmt: skip
