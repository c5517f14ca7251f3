"""What a variant trains with, resolved once: settings in, a frozen :class:`TrainingSpec` out.

The ``training`` parameters block, with a variant's overrides (``systems.variants.<name>``,
conf/base/parameters/systems.yml) laid over it, is parsed into :class:`TrainingSettings`;
:func:`resolve_spec` then turns those settings and the ``model`` block into a
:class:`TrainingSpec`: the formulation and its messages column, the seeds, the stages, the
tiny base's stand-in for pretraining, the direction check. Everything below (data
preparation, the base, the Trainer stages, the workflow) reads the spec and never the
parameters again, as LLaMA-Factory's ``hparams`` parser hands resolved arguments down to
its ``run_sft``.

This module is the bottom of the fine-tuning flow: it imports no module of it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from anchormix_kedro.instruction_data.prompts import PromptSettings
from anchormix_kedro.model.factory import TINY, ModelSettings
from anchormix_kedro.model.front_end import AnchorLevel, FrontEnd
from anchormix_kedro.model.pretraining import ANCHOR_TARGET
from anchormix_kedro.model.timbre import TimbreAugmentation
from anchormix_kedro.vocabulary import STEM_NAMES, TARGET_ONLY, messages_column

__all__ = [
    "DirectionCheck",
    "PretrainSpec",
    "StageSettings",
    "TrainingSettings",
    "TrainingSpec",
    "fingerprint",
    "listening_front_end",
    "resolve_spec",
    "variant_anchor",
    "variant_spec",
]


def fingerprint(*parts: Any) -> str:
    """Short stable hash of JSON-able settings and data identifiers."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass(frozen=True)
class StageSettings:
    """One Trainer stage: ``args`` go to ``TrainingArguments`` as they are."""

    args: dict = field(default_factory=dict)
    early_stopping_patience: int | None = None


@dataclass(frozen=True)
class TrainingSettings:
    """The ``training`` parameters block (a variant's block laid over it)."""

    formulation: str = "anchor_target"
    #: The stem the variant's examples are anchored on (the instruction dataset holds every
    #: anchor of ``pairs.anchors``); ``None``: every example, whatever its anchor.
    anchor: str | None = None
    #: How the variant is asked (:class:`~anchormix_kedro.instruction_data.prompts.PromptSettings`:
    #: ``genre``, ``instructions``, ``meter``); empty: as the instruction dataset asks.
    prompt: dict = field(default_factory=dict)
    seed: int = 42
    max_train_examples: int | None = None
    max_eval_examples: int | None = 64
    work_root: str = "data/06_models/work"
    lora: dict = field(default_factory=dict)
    # Written into the package so `anchormix advise --model` judges as the pipeline does.
    advice_conventions: dict = field(default_factory=dict)
    pretrain: dict = field(
        default_factory=dict
    )  # tiny base only: {"enabled": bool, "stage": {...}}
    finetune: dict = field(default_factory=dict)
    #: Fine-tuning's clips coloured by a random EQ at their recorded loudness
    #: (``{tilt_db, bell_db}``; empty: as recorded).
    finetune_timbre: dict = field(default_factory=dict)
    direction_eval: dict = field(default_factory=dict)
    #: How many times each training example of a label is shown (default 1): the rarer
    #: "balanced" examples repeated so the model learns to say it.
    label_repeats: dict = field(default_factory=dict)
    #: Fine-tunings of the one base, with seeds ``seed``, ``seed + 1``, ...: the package holds
    #: an adapter each, and median decoding states the median of their averaged belief.
    members: int = 1

    @classmethod
    def from_params(cls, params: dict) -> TrainingSettings:
        unknown = sorted(set(params) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(
                f"unknown training settings {unknown}: a variant's block (systems.yml) "
                "overrides keys of the `training` parameters (fine_tuning.yml)"
            )
        settings = cls(**params)
        if settings.anchor is not None and settings.anchor not in STEM_NAMES:
            raise ValueError(
                f"training.anchor {settings.anchor!r} is not a stem; expected one of "
                f"{', '.join(STEM_NAMES)}"
            )
        for label, times in (settings.label_repeats or {}).items():
            if not isinstance(times, int) or times < 1:
                raise ValueError(
                    f"training.label_repeats.{label} must be a whole number of at least 1, "
                    f"got {times!r}"
                )
        if not isinstance(settings.members, int) or isinstance(settings.members, bool):
            raise ValueError(f"training.members must be a whole number, got {settings.members!r}")
        if settings.members < 1:
            raise ValueError(f"training.members must be at least 1, got {settings.members}")
        return settings

    @property
    def member_seeds(self) -> tuple[int, ...]:
        return tuple(self.seed + number for number in range(self.members))

    @property
    def finetune_stage(self) -> StageSettings:
        return StageSettings(**self.finetune)

    @property
    def pretrain_stage(self) -> StageSettings:
        return StageSettings(**self.pretrain.get("stage", {}))

    @property
    def pretrain_seed(self) -> int:
        """The stand-in's own seed (``training.pretrain.seed``; unset: ``training.seed``), so
        fine-tunings with other seeds can share one base."""
        seed = self.pretrain.get("seed")
        if seed is None:
            return self.seed
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ValueError(f"training.pretrain.seed must be a whole number, got {seed!r}")
        return seed


@dataclass(frozen=True)
class PretrainSpec:
    """The tiny base's stand-in for pretraining (``training.pretrain``), resolved."""

    enabled: bool
    seed: int
    max_examples: int | None
    #: Which clips its loudness comparisons set side by side (``pretraining.COMPARISONS``).
    comparisons: str
    timbre: TimbreAugmentation
    stage: StageSettings
    #: The block without its seed: with ``seed`` and the data it names the base, so an unset
    #: seed names the same base as before seeds could be set.
    identity: dict


@dataclass(frozen=True)
class DirectionCheck:
    """After training, the directions the package gives on validation (``direction_eval``)."""

    min_abs_gain_db: float = 6.0
    max_examples: int = 96
    batch_size: int = 16


@dataclass(frozen=True)
class TrainingSpec:
    """Everything one fine-tuning reads, resolved once from the settings."""

    variant: str
    formulation: str
    #: The instruction dataset's column of the formulation's conversations.
    messages_column: str
    #: The anchor of the variant's examples (``None``: every example).
    anchor: str | None
    #: How the variant is asked: its conversations are rewritten as this says.
    prompt: PromptSettings
    model: ModelSettings
    #: The base's front end (the tiny base's stand-in hears its conversations through it).
    front_end: FrontEnd
    #: What the variant's own conversations play through, in training and from its package
    #: (:func:`listening_front_end`).
    listening: FrontEnd
    seed: int
    #: One fine-tuning of the one base per seed (the first: ``seed``).
    member_seeds: tuple[int, ...]
    max_train_examples: int | None
    max_eval_examples: int | None
    label_repeats: dict
    finetune_timbre: TimbreAugmentation
    finetune: StageSettings
    gradient_checkpointing: bool
    lora: dict
    advice_conventions: dict
    direction_check: DirectionCheck
    work_root: str
    #: The tiny base's stand-in for pretraining; ``None``: a pretrained base, nothing built.
    pretrain: PretrainSpec | None
    #: The effective ``training`` block as given: it names the work folder and becomes the
    #: run's ``training.*`` MLflow params. The trainer reads the fields above, not this.
    parameters: dict

    @property
    def members(self) -> int:
        return len(self.member_seeds)

    @property
    def anchor_level(self) -> AnchorLevel | None:
        """The base's levelling (the stand-in's conversations)."""
        return self.front_end.anchor_level

    @property
    def listening_level(self) -> AnchorLevel | None:
        """The levelling of the variant's conversations (``None``: as the session plays them)."""
        return self.listening.anchor_level

    def work_dir(self, data_id: str) -> Path:
        """Where a run keeps its checkpoints: named by its settings and data, so that
        starting the same run again finds them."""
        name = fingerprint(asdict(self.model), self.parameters, data_id)
        return Path(self.work_root) / f"finetune-{name}"

    def base_dir(self, data_id: str) -> Path:
        """The tiny base's folder, shared by every run with the same model settings,
        pre-training settings and data."""
        if self.pretrain is None:
            raise ValueError("a pretrained base is loaded by name; only the tiny base is built")
        pretrain = self.pretrain
        base_id = fingerprint(asdict(self.model), pretrain.identity, pretrain.seed, data_id)
        return Path(self.work_root) / f"tiny-base-{base_id}"


def listening_front_end(front_end: FrontEnd, formulation: str) -> FrontEnd:
    """The front end a formulation's conversations play through. Without an anchor there is
    nothing to level by: the target-only formulation hears the target as the session
    delivers it, so it can judge by absolute level when the session is as mixed and cannot
    when the session plays at another level (levelling the target by its own loudness
    would leave it nothing to hear)."""
    if formulation == TARGET_ONLY:
        return replace(front_end, anchor_level_db=None)
    return front_end


def resolve_pretrain(training: TrainingSettings) -> PretrainSpec:
    block = training.pretrain
    return PretrainSpec(
        enabled=bool(block.get("enabled", False)),
        seed=training.pretrain_seed,
        max_examples=block.get("max_examples"),
        comparisons=block.get("comparisons", ANCHOR_TARGET),
        timbre=TimbreAugmentation.from_params(block.get("timbre"), "training.pretrain.timbre"),
        stage=training.pretrain_stage,
        identity={k: v for k, v in block.items() if k != "seed"},
    )


def resolve_spec(
    settings: ModelSettings, training: TrainingSettings, variant: str | None = None
) -> TrainingSpec:
    """The spec of one fine-tuning; ``variant`` names it (default: its formulation)."""
    evaluation = training.direction_eval
    return TrainingSpec(
        variant=variant or training.formulation,
        formulation=training.formulation,
        messages_column=messages_column(training.formulation),
        anchor=training.anchor,
        prompt=PromptSettings.from_params(
            training.prompt, f"systems.variants.{variant}.prompt" if variant else "training.prompt"
        ),
        model=settings,
        front_end=settings.front_end_settings,
        listening=listening_front_end(settings.front_end_settings, training.formulation),
        seed=training.seed,
        member_seeds=training.member_seeds,
        max_train_examples=training.max_train_examples,
        max_eval_examples=training.max_eval_examples,
        label_repeats=dict(training.label_repeats or {}),
        finetune_timbre=TimbreAugmentation.from_params(
            training.finetune_timbre, "training.finetune_timbre"
        ),
        finetune=training.finetune_stage,
        gradient_checkpointing=bool(
            training.finetune.get("args", {}).get("gradient_checkpointing", False)
        ),
        lora=training.lora,
        advice_conventions=training.advice_conventions,
        direction_check=DirectionCheck(
            min_abs_gain_db=float(evaluation.get("min_abs_gain_db", 6.0)),
            max_examples=int(evaluation.get("max_examples", 96)),
            batch_size=int(evaluation.get("batch_size", 16)),
        ),
        work_root=training.work_root,
        pretrain=resolve_pretrain(training) if settings.source == TINY else None,
        parameters=asdict(training),
    )


def variant_anchor(training: dict, variant: dict) -> str | None:
    """The anchor of a variant's examples (``None``: every example)."""
    return TrainingSettings.from_params({**training, **variant}).anchor


def variant_spec(model: dict, training: dict, variant: dict, name: str) -> TrainingSpec:
    """A variant's spec from the parameters: its block (``systems.variants.<name>``)
    overrides the shared ``training`` keys."""
    return resolve_spec(
        ModelSettings.from_params(model),
        TrainingSettings.from_params({**training, **variant}),
        variant=name,
    )
