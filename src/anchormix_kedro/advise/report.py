"""What ``anchormix advise`` says about each target: the measurement's report and, with
``--model``, the model's answer combined over the analysed windows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from anchormix_kedro.evaluation.professional_range import Placement
from anchormix_kedro.vocabulary import label_for_gain


@dataclass
class ModelAnswer:
    """The model's combined answer for one target (filled by :func:`combine_model_answers`)."""

    verdict: str | None = None
    fader_move_db: float | None = None
    advice: str | None = None
    agrees: bool = True
    disagreement: str | None = None

    def as_dict(self) -> dict:
        return {
            "verdict": self.verdict,
            "fader_move_db": _rounded(self.fader_move_db, 1),
            "advice": self.advice,
            "agrees_with_measurement": self.agrees,
            "disagreement": self.disagreement,
        }


@dataclass
class TargetReport:
    """What the command says about one target stem."""

    stem: str
    status: str  # "active", "silent" or "not_together"
    relative_db: float | None = None
    convention_db: float | None = None
    convention_genre: str | None = None
    placement: Placement | None = None
    verdict: str | None = None
    fader_move_db: float | None = None
    windows: list[tuple[float, float]] = field(default_factory=list)
    advice: str | None = None
    model: ModelAnswer | None = None

    def as_dict(self) -> dict:
        placed = self.placement.as_dict() if self.placement else {}
        return {
            "stem": self.stem,
            "status": self.status,
            "relative_db": _rounded(self.relative_db, 2),
            "convention_db": _rounded(self.convention_db, 2),
            "convention_genre": self.convention_genre,
            "percentile": placed.get("percentile"),
            "usual_range_db": placed.get("usual_range_db"),
            "outer_range_db": placed.get("outer_range_db"),
            "range_genre": placed.get("range_genre"),
            "range_songs": placed.get("range_songs"),
            "grade": placed.get("grade"),
            "verdict": self.verdict,
            "fader_move_db": _rounded(self.fader_move_db, 1),
            "windows": [[round(a, 2), round(b, 2)] for a, b in self.windows],
            "advice": self.advice,
            "model": self.model.as_dict() if self.model else None,
        }


def _rounded(value: float | None, digits: int) -> float | None:
    # "+ 0.0" turns a negative zero into a plain zero in the output.
    return None if value is None else round(value, digits) + 0.0


def combine_model_answers(
    answer: ModelAnswer, answers: Sequence[Mapping], tolerance_db: float
) -> None:
    """Combine the model's per-window answers: median fader move, majority verdict."""
    moves = [float(a["fader_move_db"]) for a in answers if a.get("fader_move_db") is not None]
    verdicts = [a["verdict"] for a in answers if a.get("verdict")]
    if moves:
        answer.fader_move_db = float(np.median(moves))
    if verdicts:
        answer.verdict = Counter(verdicts).most_common(1)[0][0]
    elif moves:
        answer.verdict = label_for_gain(-answer.fader_move_db, tolerance_db)
    # The advice of the window whose move is nearest the combined one speaks for the song.
    spoken = [a for a in answers if a.get("advice")]
    if spoken:
        chosen = min(
            spoken,
            key=lambda a: abs(float(a.get("fader_move_db") or 0.0) - (answer.fader_move_db or 0.0)),
        )
        answer.advice = str(chosen["advice"])
