"""Session stems: which of MUSDB18's four stem groups each file of a song folder belongs to.

A mixing session's files are named by their instrument ("Kick In.wav", "OH L.wav",
"Lead Vox.wav", "Bass DI.wav"), not by MUSDB18's four stems. Each file's name is cut into
words (spaces, punctuation, camelCase and digits split it; case is ignored) and mapped:

- a drum word (kick, snare, hat, overheads, toms, ...) makes it ``drums``;
- else a vocal word (vocals, vox, bv, harmony, ...) makes it ``vocals``;
- else a bass word (bass, sub, 808) makes it ``bass``;
- else "lead" or "backing" with nothing but neutral words ("Lead 2", "Backing L") makes
  it ``vocals`` ("Lead Guitar" stays an instrument);
- everything else is ``other``.

Files of one group are summed into that group's stem. A name that is a whole mix
("mixture", "Final Mix", "Master 24bit", "Bounce 1") is not a stem. ``--stem GROUP=FILE`` overrides the words,
and ``--stem-words FILE`` (YAML: group -> list of words) adds words to a group.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from anchormix_kedro.errors import CliError
from anchormix_kedro.vocabulary import STEM_NAMES

#: Words naming each group, checked in this order (a "bass drum" is a drum).
DEFAULT_STEM_WORDS: dict[str, tuple[str, ...]] = {
    "drums": (
        "drum", "drums", "kit", "kick", "kik", "bd", "snare", "snr", "sn", "hat", "hats",
        "hihat", "hihats", "hh", "tom", "toms", "floortom", "overhead", "overheads", "oh",
        "ohs", "room", "rooms", "cymbal", "cymbals", "ride", "crash", "perc", "percussion",
        "clap", "claps", "shaker", "tamb", "tambourine", "conga", "congas", "bongo", "bongos",
    ),
    "vocals": (
        "vocal", "vocals", "vox", "voc", "vocs", "vo", "voice", "voices", "bv", "bvs", "bgv",
        "bgvs", "harmony", "harmonies", "choir", "adlib", "adlibs", "singer", "sing", "rap",
    ),
    "bass": ("bass", "basses", "sub", "subbass", "808", "bassdi"),
}  # fmt: skip
#: Vocal only when nothing but neutral words come with them ("Lead 2", not "Lead Guitar").
WEAK_VOCAL_WORDS: tuple[str, ...] = ("lead", "backing", "back", "backs", "bg")
#: Words that say nothing about the instrument (position, side, take, processing).
NEUTRAL_WORDS: tuple[str, ...] = (
    "l", "r", "left", "right", "st", "stereo", "mono", "take", "tk", "comp", "main", "top",
    "bottom", "bot", "in", "out", "di", "amp", "mic", "close", "far", "wet", "dry", "final",
    "track", "trk", "audio", "stem", "bus", "group", "print", "v", "ver", "version",
)  # fmt: skip
#: Words naming a mix of everything, not a stem ("Final Mix", "Master 24bit", "Bounce 1").
MIX_WORDS: tuple[str, ...] = (
    "mixture", "mix", "mixdown", "mixed", "master", "mastered", "premaster", "bounce",
    "bounced", "render",
)  # fmt: skip
#: Words that may come with a mix word in a mix's name: its state, format and bit depth.
MIX_QUALIFIERS: tuple[str, ...] = (
    "rough", "full", "song", "ref", "reference", "premix", "pre", "bit", "bits", "k", "khz",
    "hz", "float", "wav", "mp", "export", "new", "old", "test", "demo",
)  # fmt: skip
OTHER = "other"


def name_words(name: str) -> list[str]:
    """Lower-case words of a file name: split at non-letters, camelCase and digit runs."""
    spaced = re.sub(r"(?<=[a-z])(?=[A-Z])", " ", name)
    return [word.lower() for word in re.findall(r"[A-Za-z]+|\d+", spaced)]


def is_mix_name(name: str) -> bool:
    """Whether a file (without its extension) is a whole mix: a mix word (``mixture``, ``Mix``,
    ``Master``, ``Bounce``) with nothing but take numbers, formats and neutral words
    (``Final Mix``, ``Master 24bit``, ``Bounce 1``); ``Drum Mix`` is the drums."""
    words = name_words(name)
    if not any(word in MIX_WORDS for word in words):
        return False
    allowed = {*MIX_WORDS, *MIX_QUALIFIERS, *NEUTRAL_WORDS}
    return all(word.isdigit() or word in allowed for word in words)


def group_of(name: str, stem_words: Mapping[str, Sequence[str]] = DEFAULT_STEM_WORDS) -> str:
    """The stem group of a file name (without extension); see the module's docstring."""
    words = name_words(name)
    joined = "".join(words)
    for group in ("drums", "vocals", "bass"):
        vocabulary = set(stem_words.get(group, ()))
        if any(word in vocabulary for word in words) or joined in vocabulary:
            return group
    meaningful = [w for w in words if not w.isdigit() and w not in NEUTRAL_WORDS]
    if meaningful and all(word in WEAK_VOCAL_WORDS for word in meaningful):
        return "vocals"
    return OTHER


def read_stem_words(path: Path) -> dict[str, tuple[str, ...]]:
    """The default words plus those of a YAML file ``{group: [word, ...]}``.

    Raises :class:`CliError` naming the file for anything but the four groups and lists of
    words.
    """
    import yaml

    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise CliError(
            f"{path}: the stem words are not UTF-8 text; give a YAML file such as "
            "'vocals: [leadvox, gang]'"
        ) from None
    except (OSError, yaml.YAMLError) as exc:
        raise CliError(f"{path}: cannot read the stem words ({exc})") from None
    groups = (*DEFAULT_STEM_WORDS, OTHER)
    if not isinstance(loaded, dict) or not all(
        isinstance(words, list) and all(isinstance(w, str | int) for w in words)
        for words in loaded.values()
    ):
        raise CliError(
            f"{path}: expected a mapping of stem groups to lists of words, e.g. "
            "'vocals: [leadvox, gang]'"
        )
    unknown = sorted(set(loaded) - set(groups))
    if unknown:
        raise CliError(f"{path}: unknown stem group(s) {unknown}; groups are {', '.join(groups)}")
    merged = {group: list(words) for group, words in DEFAULT_STEM_WORDS.items()}
    for group, words in loaded.items():
        added = ["".join(name_words(str(w))) for w in words]
        if group == OTHER:
            # Words of "other" take a word away from the groups that would claim it.
            for claimed in merged.values():
                claimed[:] = [w for w in claimed if w not in added]
            continue
        merged[group] += added
    return {group: tuple(words) for group, words in merged.items()}


def parse_stem_override(text: str) -> tuple[str, str]:
    """``GROUP=FILE`` of ``--stem`` as ``(group, file name)``; argparse shows the error."""
    group, separator, file_name = text.partition("=")
    group = group.strip().lower()
    if not separator or not file_name.strip():
        raise argparse.ArgumentTypeError(
            f'expected GROUP=FILE (e.g. vocals="Lead Vox.wav"), got {text!r}'
        )
    if group not in STEM_NAMES:
        raise argparse.ArgumentTypeError(
            f"unknown stem group {group!r} in {text!r}; groups are {', '.join(STEM_NAMES)}"
        )
    return group, file_name.strip()


def assign_files(
    files: Iterable[Path],
    overrides: Sequence[tuple[str, str]] = (),
    stem_words: Mapping[str, Sequence[str]] = DEFAULT_STEM_WORDS,
    folder: Path | None = None,
) -> dict[str, list[Path]]:
    """``{group: [files]}`` in MUSDB18's stem order, each group's files sorted by name.

    ``overrides`` (from ``--stem``) put a file in a group whatever its name says; a file
    named there but absent from ``files`` raises :class:`CliError` listing the files.
    """
    files = list(files)
    by_name = {f.name: f for f in files}
    by_lower = {f.name.lower(): f for f in files}
    forced: dict[Path, str] = {}
    for group, file_name in overrides:
        chosen = by_name.get(file_name) or by_lower.get(file_name.lower())
        if chosen is None:
            where = f" in {folder}" if folder else ""
            raise CliError(
                f"--stem {group}={file_name}: no such audio file{where}; files: "
                f"{', '.join(sorted(by_name)) or 'none'}"
            )
        if chosen in forced and forced[chosen] != group:
            raise CliError(
                f"--stem puts {chosen.name} in both {forced[chosen]} and {group}; choose one"
            )
        forced[chosen] = group
    groups: dict[str, list[Path]] = {}
    for file in files:
        group = forced.get(file) or group_of(file.stem, stem_words)
        groups.setdefault(group, []).append(file)
    return {g: sorted(groups[g], key=lambda f: f.name.lower()) for g in STEM_NAMES if g in groups}
