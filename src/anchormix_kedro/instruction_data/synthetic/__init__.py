"""Synthetic multitrack songs with drums, bass, other and vocals stems.

Stands in for MUSDB18 on machines without it. Each song is planned by :func:`plan_corpus`
and rendered by :func:`synthesize_song` from its seed alone, so the same plan always gives
bit-identical stems. A genre (:class:`GenreStyle`) fixes the tempo range, the drum, bass and
chord patterns and, above all, the level conventions: the mean loudness of bass, other and
vocals relative to the drums, around which each song draws its own levels. Stems are scaled
so that their measured ITU-R BS.1770 loudness differences equal the drawn values, which
makes the stems themselves the ground truth for "how loud is X relative to the drums".

The content is simple but musical: a drum kit playing a genre pattern with fills and crashes,
a plucked bass on the chord roots, chords as pads, strums, stabs or distorted power chords,
and a formant-filtered glottal-pulse voice singing chord tones in phrases separated by rests.

Modules: ``styles`` (genres), ``plan`` (song and corpus plans, drawn levels, arrangement),
``sound`` (shared synthesis helpers), one renderer per stem (``drums``, ``bass``, ``other``,
``vocals``) and ``song`` (rendering and balancing a whole song).
"""

from anchormix_kedro.instruction_data.synthetic.plan import (
    MIN_SONG_SECONDS,
    SongPlan,
    drawn_relative_lufs,
    plan_corpus,
)
from anchormix_kedro.instruction_data.synthetic.song import (
    MIN_SAMPLE_RATE,
    PEAK_LIMIT,
    synthesize_song,
)
from anchormix_kedro.instruction_data.synthetic.styles import (
    DEFAULT_GENRES,
    TARGET_STEMS,
    GenreStyle,
)

__all__ = [
    "DEFAULT_GENRES",
    "MIN_SAMPLE_RATE",
    "MIN_SONG_SECONDS",
    "PEAK_LIMIT",
    "TARGET_STEMS",
    "GenreStyle",
    "SongPlan",
    "drawn_relative_lufs",
    "plan_corpus",
    "synthesize_song",
]
