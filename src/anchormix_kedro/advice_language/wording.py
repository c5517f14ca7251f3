"""Words of the dataset: instructions to the model and the reference gain advice.

Every phrasing is drawn from a pool by a random generator seeded with the example id,
so the same example always gets the same words, and the pool gives variety across
examples. The DSP baseline and any other system word their advice with the same
:func:`advice_text`, so text metrics compare judgements, not styles.

The wording policy, one rule for references and every system alike: advice is its *core*
(relation, direction, amount in dB and the fader move) plus optional sentences (the genre
convention, :func:`convention_sentence`), which the references carry on some examples and
the DSP rule on all. Text metrics compare the cores (:func:`core_advice` on both sides), so
their differences come from judgements; the advice as written is scored beside them.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlparse

from anchormix_kedro.vocabulary import (
    ANCHOR_TARGET,
    BALANCED,
    SINGLE_CLIP,
    TARGET_ONLY,
    TOO_LOUD,
    TOO_SOFT,
    check_formulation,
)

DEFAULT_SYSTEM_PROMPT = (
    "You are an experienced mixing engineer. You listen to stems of a multitrack mix and "
    "give short, actionable gain-balancing advice."
)


@dataclass(frozen=True)
class StemWords:
    noun: str  # "the vocal"
    plural: bool
    fader: str  # "vocal fader"


STEM_WORDS: dict[str, StemWords] = {
    "drums": StemWords("the drums", True, "drum bus fader"),
    "bass": StemWords("the bass", False, "bass fader"),
    "other": StemWords("the other instruments", True, "instrument bus fader"),
    "vocals": StemWords("the vocal", False, "vocal fader"),
}


def _words(stem: str) -> StemWords:
    try:
        return STEM_WORDS[stem]
    except KeyError:
        raise ValueError(
            f"no wording for stem {stem!r}; known stems: {', '.join(STEM_WORDS)}"
        ) from None


def _fill(template: str, anchor: str | None, target: str, amount_db: int | None = None) -> str:
    """Fill a template's stem nouns, pronouns and verb agreement for the target (and anchor)."""
    t = _words(target)
    fields = {
        "target": t.noun,
        "Target": t.noun[0].upper() + t.noun[1:],
        "fader": t.fader,
        "they": "they" if t.plural else "it",  # subject pronoun of the target
        "it": "them" if t.plural else "it",  # object pronoun of the target
        "is": "are" if t.plural else "is",
        "s": "" if t.plural else "s",  # third-person verb ending agreeing with the target
        "n": amount_db,
    }
    if anchor is not None:
        a = _words(anchor)
        fields |= {
            "anchor": a.noun,
            "it_anchor": "them" if a.plural else "it",
            "s_anchor": "" if a.plural else "s",
        }
    return template.format(**fields)


# --------------------------------------------------------------------------- advice

#: Each phrasing states the amount once: the fader moves by the amount the relation names
#: (a model that learns to say it twice can say two different numbers).
ADVICE_TEMPLATES: dict[str, tuple[str, ...]] = {
    TOO_LOUD: (
        "Relative to {anchor}, {target} {is} about {n} dB too loud: pull the {fader} down.",
        "{Target} {is} sitting roughly {n} dB above where {anchor} want{s_anchor} {it}. Bring the {fader} down.",
        "Against {anchor}, {target} {is} too loud by around {n} dB and crowd{s} the mix. Lower the {fader}.",
        "{Target} overpower{s} {anchor} by about {n} dB. Pull the {fader} down to restore the balance.",
        "Too loud: {target} {is} about {n} dB hot relative to {anchor}. Take the {fader} down.",
    ),
    TOO_SOFT: (
        "Relative to {anchor}, {target} {is} about {n} dB too soft: push the {fader} up.",
        "{Target} disappear{s} under {anchor}; {they} {is} roughly {n} dB too low. Bring the {fader} up.",
        "Against {anchor}, {target} {is} too quiet by around {n} dB. Raise the {fader}.",
        "{Target} {is} buried about {n} dB below {anchor}. Push the {fader} up so {they} can be heard.",
        "Too soft: {target} {is} about {n} dB low relative to {anchor}. Lift the {fader}.",
    ),
    BALANCED: (
        "Relative to {anchor}, {target} {is} well balanced. Leave the {fader} where it is.",
        "{Target} sit{s} right against {anchor}; no gain change is needed.",
        "The balance between {target} and {anchor} is good as it is: keep the {fader} where it is.",
        "{Target} {is} balanced with {anchor}, clearly audible without overpowering {it_anchor}. No fader move needed.",
    ),
}

#: Target-only advice (no anchor heard): the same judgement, phrased against "the mix".
TARGET_ONLY_ADVICE_TEMPLATES: dict[str, tuple[str, ...]] = {
    TOO_LOUD: (
        "{Target} {is} about {n} dB too loud in the mix: pull the {fader} down.",
        "{Target} {is} roughly {n} dB too hot. Bring the {fader} down.",
    ),
    TOO_SOFT: (
        "{Target} {is} about {n} dB too soft in the mix: push the {fader} up.",
        "{Target} {is} roughly {n} dB too low. Bring the {fader} up.",
    ),
    BALANCED: (
        "{Target} {is} well balanced in the mix. Leave the {fader} where it is.",
        "{Target} sit{s} well in the mix; no gain change is needed.",
    ),
}


def rounded_amount_db(gain_db: float) -> int:
    """The dB amount an engineer would say: the nearest whole dB, at least 1."""
    return max(1, int(round(abs(gain_db))))


def advice_phrasings(
    label: str, target: str, anchor: str | None, amount_db: int | None = None
) -> tuple[str, ...]:
    """Every phrasing of one judgement (the pool :func:`advice_text` draws from), filled in.

    ``amount_db`` is the stated whole dB (ignored for ``balanced``); ``anchor=None`` words
    it for the target-only formulation.
    """
    pools = ADVICE_TEMPLATES if anchor is not None else TARGET_ONLY_ADVICE_TEMPLATES
    if label not in pools:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(pools)}")
    amount = None if label == BALANCED else amount_db
    return tuple(_fill(template, anchor, target, amount) for template in pools[label])


def advice_text(
    label: str,
    target: str,
    anchor: str | None,
    amount_db: float,
    rng: random.Random,
    convention: str | None = None,
) -> str:
    """Reference advice for a judgement: relation, direction, amount in dB and the fader move.

    ``amount_db`` is the size of the imbalance (the fader move undoes it). ``anchor=None``
    words it for the target-only formulation. ``convention`` is an optional sentence
    appended after the advice (see :func:`convention_sentence`).
    """
    pools = ADVICE_TEMPLATES if anchor is not None else TARGET_ONLY_ADVICE_TEMPLATES
    if label not in pools:
        raise ValueError(f"unknown label {label!r}; expected one of {', '.join(pools)}")
    template = rng.choice(pools[label])
    text = _fill(
        template, anchor, target, rounded_amount_db(amount_db) if label != BALANCED else None
    )
    return f"{text} {convention}" if convention else text


def convention_sentence(
    genre: str, anchor: str, target: str, median_db: float, pooled: bool
) -> str:
    """E.g. "In Rap mixes the vocal usually sits about 3 dB above the drums."."""
    t = _words(target)
    where = "usually sit" if t.plural else "usually sits"
    scope = "Across genres," if pooled else f"In {genre} mixes,"
    if abs(median_db) < 0.5:
        relation = f"at about the same loudness as {_words(anchor).noun}"
    else:
        relation = f"about {abs(median_db):.0f} dB {'above' if median_db > 0 else 'below'} {_words(anchor).noun}"
    return f"{scope} {t.noun} {where} {relation}."


#: The optional sentences of an advice (the genre convention, in any scope); the core is
#: what is left without them.
OPTIONAL_SENTENCE = re.compile(
    r"\s*(?:In [^.]+? mixes,|Across genres,)[^.]*?\busually sits?\b[^.]*\.", re.IGNORECASE
)


def core_advice(advice: str | None) -> str | None:
    """The advice without its optional sentences (:data:`OPTIONAL_SENTENCE`); missing
    advice stays missing."""
    if not isinstance(advice, str):
        return advice
    return OPTIONAL_SENTENCE.sub("", advice).strip()


def optional_sentences(advice: str | None) -> list[str]:
    """The optional sentences an advice holds, in order."""
    if not isinstance(advice, str):
        return []
    return [m.group(0).strip() for m in OPTIONAL_SENTENCE.finditer(advice)]


# --------------------------------------------------------------------------- instructions

INSTRUCTION_TEMPLATES: dict[str, tuple[str, ...]] = {
    ANCHOR_TARGET: (
        "Audio 1 is the anchor, {anchor}; Audio 2 is the target, {target}, from the same mix. "
        "Relative to {anchor}, is {target} too loud, too soft or balanced? Give gain advice for {target}.",
        "Listen to {anchor} (Audio 1, the anchor) and {target} (Audio 2, the target). "
        "How should the {fader} move to balance {target} against {anchor}?",
        "Using {anchor} in Audio 1 as the anchor, judge the level of {target} in Audio 2 "
        "and tell me what to do with its fader.",
        "Audio 1: {anchor} (anchor). Audio 2: {target} (target). Is the target balanced against the anchor? "
        "If not, by how many dB should I move the {fader}?",
    ),
    SINGLE_CLIP: (
        "Audio 1 plays {anchor} (the anchor), then, after a short pause, {target} (the target) from the same mix. "
        "Relative to {anchor}, is {target} too loud, too soft or balanced? Give gain advice for {target}.",
        "First you hear {anchor}, the anchor, then {target}, the target. "
        "How should the {fader} move to balance {target} against {anchor}?",
        "Audio 1: {anchor} (anchor), a pause, then {target} (target). Is the target balanced against the anchor? "
        "If not, by how many dB should I move the {fader}?",
    ),
    TARGET_ONLY: (
        "Audio 1 is {target} from a mix. Is {target} too loud, too soft or balanced? Give gain advice for {target}.",
        "Listen to {target} in Audio 1. How should the {fader} move to balance {it} in the mix?",
        "Audio 1: {target}. Judge its level in the mix and tell me what to do with its fader.",
    ),
}


def instruction_text(
    formulation: str, anchor: str, target: str, rng: random.Random, genre: str | None = None
) -> str:
    """The user's request for one formulation; names the roles of the clips it refers to."""
    if formulation not in INSTRUCTION_TEMPLATES:
        raise ValueError(
            f"unknown formulation {formulation!r}; expected one of {', '.join(INSTRUCTION_TEMPLATES)}"
        )
    text = _fill(rng.choice(INSTRUCTION_TEMPLATES[formulation]), anchor, target)
    if genre:
        text = f"The song is {genre}. {text}"
    return text


# --------------------------------------------------------------------------- conversations


@dataclass(frozen=True)
class Equalisation:
    """A broad EQ on a clip (the pretraining stand-in's timbre augmentation): a tilt of
    ``tilt_db`` from the lowest mel band to the highest (centred, so the lowest band moves
    by ``-tilt_db / 2``), plus a bell of ``bell_db`` centred at ``bell_at`` (0: the lowest
    band, 1: the highest)."""

    tilt_db: float = 0.0
    bell_db: float = 0.0
    bell_at: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 <= self.bell_at <= 1.0:
            raise ValueError(f"bell_at {self.bell_at} lies outside the band range 0-1")

    def __bool__(self) -> bool:
        return bool(round(self.tilt_db, 1) or round(self.bell_db, 1))


@dataclass(frozen=True)
class ClipPart:
    """One stem of a clip: where it comes from, the gain it is played at and any EQ."""

    excerpt_id: str
    stem: str
    gain_db: float = 0.0
    equalisation: Equalisation = Equalisation()


def audio_uri(
    excerpt_id: str,
    stems: str | list[str],
    gain_db: float = 0.0,
    lead_gain_db: float = 0.0,
    lead_excerpt_id: str | None = None,
    equalisation: Equalisation | None = None,
) -> str:
    """Where a clip of a conversation comes from: ``excerpt://<excerpt>/<stem>?gain_db=+4.0``.

    Several stems (``drums+vocals``) make one clip played one after the other; ``gain_db``
    applies to the last one (the target), ``lead_gain_db`` to the ones before it (the
    anchor), which come from ``lead_excerpt_id`` when given (another song's anchor).
    ``equalisation`` colours a clip of one stem (``tilt_db``, ``bell_db``, ``bell_at``).
    """
    joined = stems if isinstance(stems, str) else "+".join(stems)
    query = [f"gain_db={gain_db:+.1f}"] if round(gain_db, 1) else []
    if "+" in joined:
        if round(lead_gain_db, 1):
            query.append(f"lead_gain_db={lead_gain_db:+.1f}")
        if lead_excerpt_id and lead_excerpt_id != excerpt_id:
            query.append(f"lead_excerpt={lead_excerpt_id}")
        if equalisation:
            raise ValueError("an equalisation colours a clip of one stem")
    elif lead_gain_db or lead_excerpt_id:
        raise ValueError("lead_gain_db and lead_excerpt_id need a clip of several stems")
    if equalisation:
        query.append(
            f"tilt_db={equalisation.tilt_db:+.1f}&bell_db={equalisation.bell_db:+.1f}"
            f"&bell_at={equalisation.bell_at:.2f}"
        )
    return f"excerpt://{excerpt_id}/{joined}" + ("?" + "&".join(query) if query else "")


def formulation_clips(
    formulation: str,
    excerpt_id: str,
    anchor: str,
    target: str,
    gain_db: float = 0.0,
    stage_db: float = 0.0,
    anchor_excerpt_id: str | None = None,
) -> list[str]:
    """The clips a formulation plays: anchor and target, the target alone, or both in one.

    ``gain_db`` is the target's perturbation; ``stage_db`` a common gain on anchor and
    target (a session at another level, the same balance); ``anchor_excerpt_id`` takes the
    anchor from another excerpt (default: the target's).
    """
    anchor_from = anchor_excerpt_id or excerpt_id
    clips = {
        ANCHOR_TARGET: lambda: [
            audio_uri(anchor_from, anchor, stage_db),
            audio_uri(excerpt_id, target, gain_db + stage_db),
        ],
        TARGET_ONLY: lambda: [audio_uri(excerpt_id, target, gain_db + stage_db)],
        SINGLE_CLIP: lambda: [
            audio_uri(excerpt_id, [anchor, target], gain_db + stage_db, stage_db, anchor_from)
        ],
    }
    return clips[check_formulation(formulation)]()


def clip_parts(uri: str) -> list[ClipPart]:
    """Inverse of :func:`audio_uri`: the stems of a clip in playing order, each with its
    excerpt and gain."""
    parsed = urlparse(uri)
    if parsed.scheme != "excerpt" or not parsed.netloc or not parsed.path.strip("/"):
        raise ValueError(f"not an excerpt audio URI: {uri!r}")
    query = parse_qs(parsed.query)
    try:
        gain = float(query.get("gain_db", ["0"])[0])
        lead_gain = float(query.get("lead_gain_db", ["0"])[0])
        equalisation = Equalisation(
            *(
                float(query.get(k, [d])[0])
                for k, d in (("tilt_db", "0"), ("bell_db", "0"), ("bell_at", "0.5"))
            )
        )
    except ValueError as exc:
        raise ValueError(
            f"audio URI {uri!r} has a gain or EQ that is not a number in range"
        ) from exc
    lead_excerpt = query.get("lead_excerpt", [parsed.netloc])[0]
    stems = parsed.path.strip("/").split("+")
    leads = [ClipPart(lead_excerpt, stem, lead_gain) for stem in stems[:-1]]
    return [*leads, ClipPart(parsed.netloc, stems[-1], gain, equalisation)]


def audio_items(messages: Sequence[dict]) -> Iterator[dict]:
    """The audio items of a conversation's messages in playing order (``{"type": "audio",
    "audio_url": ...}``), as they are: set ``audio_url`` to replace a clip."""
    for message in messages:
        if isinstance(message["content"], list):
            yield from (item for item in message["content"] if item.get("type") == "audio")


def conversation(
    system_prompt: str, audio_uris: list[str], instruction: str, answer: str
) -> list[dict]:
    """A Qwen2-Audio chat: system, user (clips then text), assistant."""
    user_content = [{"type": "audio", "audio_url": uri} for uri in audio_uris]
    user_content.append({"type": "text", "text": instruction})
    return [
        {"role": "system", "content": system_prompt},
        {"role": "user", "content": user_content},
        {"role": "assistant", "content": answer},
    ]


def example_rng(seed: int, example_id: str, purpose: str) -> random.Random:
    """A generator that depends only on the seed, the example and what it is drawn for."""
    return random.Random(f"{seed}:{purpose}:{example_id}")
