"""Tests for the synthetic multitrack corpus (anchormix_kedro.instruction_data.synthetic)."""

import math

import numpy as np
import pyloudnorm
import pytest

from anchormix_kedro.instruction_data.synthetic import (
    DEFAULT_GENRES,
    GenreStyle,
    SongPlan,
    drawn_relative_lufs,
    plan_corpus,
    synthesize_song,
)
from anchormix_kedro.vocabulary import STEM_NAMES

SAMPLE_RATE = 16000
SONG_SECONDS = 8.0
LEVEL_TOLERANCE_LU = 0.2
MUSDB_GENRES = {
    "Pop/Rock",
    "Rap",
    "Jazz",
    "Heavy Metal",
    "Electronic",
    "Country",
    "Reggae",
    "Rock",
    "Pop",
    "Singer/Songwriter",
}


def make_plan(genre="Pop/Rock", seed=1, seconds=SONG_SECONDS, instrumental=False):
    return SongPlan(
        name=f"Synthetic - test {seed:03d}",
        split="train",
        genre=genre,
        seed=seed,
        seconds=seconds,
        instrumental=instrumental,
    )


def loudness(audio, sample_rate=SAMPLE_RATE):
    return pyloudnorm.Meter(sample_rate).integrated_loudness(audio)


def relative_loudness(stems, sample_rate=SAMPLE_RATE):
    drums = loudness(stems["drums"], sample_rate)
    return {stem: loudness(stems[stem], sample_rate) - drums for stem in STEM_NAMES[1:]}


def frame_rms(audio, sample_rate=SAMPLE_RATE, seconds=0.25):
    mono = audio.mean(axis=1)
    size = int(sample_rate * seconds)
    frames = mono[: len(mono) // size * size].reshape(-1, size)
    return np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))


@pytest.fixture(scope="module")
def plans_by_genre():
    return {genre: make_plan(genre, seed=10 + index) for index, genre in enumerate(DEFAULT_GENRES)}


@pytest.fixture(scope="module")
def songs_by_genre(plans_by_genre):
    return {genre: synthesize_song(plan, SAMPLE_RATE) for genre, plan in plans_by_genre.items()}


def test_default_genres_use_musdb_vocabulary_with_distinct_conventions():
    assert len(DEFAULT_GENRES) >= 4
    assert set(DEFAULT_GENRES) <= MUSDB_GENRES
    conventions = set()
    for name, style in DEFAULT_GENRES.items():
        assert style.name == name
        assert set(style.relative_lufs) == {"bass", "other", "vocals"}
        assert style.tempo_bpm[0] <= style.tempo_bpm[1]
        conventions.add(tuple(style.relative_lufs[stem] for stem in ("bass", "other", "vocals")))
    assert len(conventions) == len(DEFAULT_GENRES)
    # Rap pushes the voice over quiet backing; metal buries the voice under the guitars.
    rap, metal = DEFAULT_GENRES["Rap"].relative_lufs, DEFAULT_GENRES["Heavy Metal"].relative_lufs
    assert rap["vocals"] - rap["other"] > 5 > 0 > metal["vocals"] - metal["other"]


def test_stems_are_float32_stereo_of_the_planned_length(songs_by_genre):
    for stems in songs_by_genre.values():
        assert tuple(stems) == STEM_NAMES
        for audio in stems.values():
            assert audio.dtype == np.float32
            assert audio.shape == (round(SONG_SECONDS * SAMPLE_RATE), 2)
            assert np.isfinite(audio).all()


def test_same_plan_gives_identical_stems_and_another_seed_does_not():
    plan = make_plan("Jazz", seed=3, seconds=4.0)
    first = synthesize_song(plan, SAMPLE_RATE)
    again = synthesize_song(plan, SAMPLE_RATE)
    other_seed = synthesize_song(make_plan("Jazz", seed=4, seconds=4.0), SAMPLE_RATE)
    for stem in STEM_NAMES:
        assert np.array_equal(first[stem], again[stem])
        assert not np.array_equal(first[stem], other_seed[stem])


def test_measured_relative_loudness_matches_the_drawn_levels(plans_by_genre, songs_by_genre):
    for genre, stems in songs_by_genre.items():
        drawn = drawn_relative_lufs(plans_by_genre[genre])
        measured = relative_loudness(stems)
        for stem in ("bass", "other", "vocals"):
            assert measured[stem] == pytest.approx(drawn[stem], abs=LEVEL_TOLERANCE_LU), (
                genre,
                stem,
            )
        peak = max(float(np.abs(audio).max()) for audio in stems.values())
        drums = loudness(stems["drums"])
        # The drums sit at the requested level unless the song had to be turned down.
        assert drums == pytest.approx(-20.0, abs=0.1) or (drums < -20.0 and peak > 0.95)


def test_no_stem_clips(songs_by_genre):
    for stems in songs_by_genre.values():
        for audio in stems.values():
            assert np.abs(audio).max() <= 0.99


def test_a_loud_target_turns_the_whole_song_down_and_keeps_relative_levels():
    plan = make_plan("Singer/Songwriter", seed=5, seconds=4.0)
    stems = synthesize_song(plan, SAMPLE_RATE, drums_lufs=-4.0)
    assert max(float(np.abs(audio).max()) for audio in stems.values()) <= 0.99
    assert loudness(stems["drums"]) < -5.0
    drawn = drawn_relative_lufs(plan)
    for stem, level in relative_loudness(stems).items():
        assert level == pytest.approx(drawn[stem], abs=LEVEL_TOLERANCE_LU)


def test_full_rate_song_has_the_right_shape_and_levels():
    plan = make_plan("Electronic", seed=8, seconds=3.0)
    stems = synthesize_song(plan, 44100)
    assert all(audio.shape == (132300, 2) for audio in stems.values())
    drawn = drawn_relative_lufs(plan)
    for stem, level in relative_loudness(stems, 44100).items():
        assert level == pytest.approx(drawn[stem], abs=LEVEL_TOLERANCE_LU)


def test_drawn_levels_follow_each_genre_convention():
    songs = 60
    means = {}
    for genre in ("Rap", "Jazz"):
        plans = plan_corpus(songs, 10.0, seed=21, genres=[genre], instrumental_fraction=0.0)
        drawn = [drawn_relative_lufs(plan) for plan in plans]
        means[genre] = {stem: np.mean([d[stem] for d in drawn]) for stem in drawn[0]}
        style = DEFAULT_GENRES[genre]
        for stem, mean in means[genre].items():
            # The mean of 60 draws is within 4 standard errors of the convention.
            limit = 4 * style.spread_lu / math.sqrt(songs)
            assert mean == pytest.approx(style.relative_lufs[stem], abs=limit)
    rap, jazz = DEFAULT_GENRES["Rap"].relative_lufs, DEFAULT_GENRES["Jazz"].relative_lufs
    for stem in ("vocals", "other"):
        expected = rap[stem] - jazz[stem]
        assert means["Rap"][stem] - means["Jazz"][stem] == pytest.approx(expected, abs=1.0)


def test_drawn_levels_are_reproducible_and_instrumentals_have_silent_vocals():
    plan = make_plan("Reggae", seed=12)
    instrumental = make_plan("Reggae", seed=12, instrumental=True)
    assert drawn_relative_lufs(plan) == drawn_relative_lufs(plan)
    assert drawn_relative_lufs(plan) != drawn_relative_lufs(make_plan("Reggae", seed=13))
    levels, without_voice = drawn_relative_lufs(plan), drawn_relative_lufs(instrumental)
    assert without_voice["vocals"] == -math.inf
    assert {k: levels[k] for k in ("bass", "other")} == {
        k: without_voice[k] for k in ("bass", "other")
    }


def test_instrumental_song_has_digitally_silent_vocals():
    plan = make_plan("Country", seed=6, seconds=4.0, instrumental=True)
    stems = synthesize_song(plan, SAMPLE_RATE)
    assert not stems["vocals"].any()
    drawn = drawn_relative_lufs(plan)
    measured = relative_loudness(stems)
    for stem in ("bass", "other"):
        assert np.abs(stems[stem]).max() > 0
        assert measured[stem] == pytest.approx(drawn[stem], abs=LEVEL_TOLERANCE_LU)


def test_vocals_are_pitched_in_a_voice_range(songs_by_genre):
    window = int(0.064 * SAMPLE_RATE)
    shortest, longest = SAMPLE_RATE // 800, SAMPLE_RATE // 100
    for genre, stems in songs_by_genre.items():
        vocals = stems["vocals"].mean(axis=1).astype(np.float64)
        rms = frame_rms(stems["vocals"])
        loudest = int(np.argmax(rms)) * SAMPLE_RATE // 4
        frame = vocals[loudest : loudest + window]
        correlations = [
            np.dot(frame[:-lag], frame[lag:])
            / math.sqrt(np.dot(frame[:-lag], frame[:-lag]) * np.dot(frame[lag:], frame[lag:]))
            for lag in range(shortest, longest + 1)
        ]
        best = int(np.argmax(correlations))
        assert correlations[best] > 0.6, genre
        assert 100 <= SAMPLE_RATE / (shortest + best) <= 800, genre


def test_vocals_sing_in_phrases_separated_by_rests(songs_by_genre):
    for genre, stems in songs_by_genre.items():
        rms = frame_rms(stems["vocals"])
        # A rest: a quarter-second frame at least 30 dB below the typical sung frame.
        assert rms.min() < np.median(rms) * 10 ** (-30 / 20), genre
        assert (rms > np.median(rms) * 0.1).mean() > 0.5, genre


def test_drums_never_fall_silent(songs_by_genre):
    for genre, stems in songs_by_genre.items():
        rms = frame_rms(stems["drums"])
        assert rms.min() > np.median(rms) * 10 ** (-40 / 20), genre


def estimated_tempo_bpm(drums, sample_rate=SAMPLE_RATE):
    """Tempo from the autocorrelation of the drums' onset strength (86-200 BPM)."""
    mono = drums.mean(axis=1).astype(np.float64)
    hop = sample_rate // 100
    energy = (mono[: len(mono) // hop * hop].reshape(-1, hop) ** 2).sum(axis=1)
    onsets = np.maximum(np.diff(np.log(energy + 1e-9)), 0)
    onsets -= onsets.mean()
    autocorrelation = np.correlate(onsets, onsets, "full")[len(onsets) - 1 :]
    lags = np.arange(30, 71)  # hops of 10 ms
    return 6000 / lags[np.argmax(autocorrelation[lags])]


@pytest.mark.parametrize("genre", ["Electronic", "Country"])
def test_drum_onsets_repeat_at_the_genre_tempo(songs_by_genre, genre):
    slowest, fastest = DEFAULT_GENRES[genre].tempo_bpm
    assert slowest - 3 <= estimated_tempo_bpm(songs_by_genre[genre]["drums"]) <= fastest + 3


@pytest.mark.parametrize("genre", list(DEFAULT_GENRES))
def test_every_stem_plays_most_of_a_longer_song_after_a_short_intro(genre):
    # 48 s is at least 12 bars at every genre's slowest tempo, long enough for an intro.
    stems = synthesize_song(make_plan(genre, seed=2, seconds=48.0), SAMPLE_RATE)
    active = {}
    for stem, audio in stems.items():
        rms = frame_rms(audio)
        quietest_db = -40 if stem == "drums" else -30
        active[stem] = rms > np.median(rms) * 10 ** (quietest_db / 20)
    assert active["drums"].all()
    assert active["bass"].mean() > 0.7
    assert active["other"].mean() > 0.85
    assert 0.5 < active["vocals"].mean() < 0.9
    # The intro: drums and chords first, bass and voice join later.
    assert active["drums"][0] and active["other"][0]
    assert not stems["bass"][: SAMPLE_RATE // 2].any()
    assert not stems["vocals"][: SAMPLE_RATE // 2].any()


def test_stems_are_stereo_with_a_centred_voice(songs_by_genre):
    stems = songs_by_genre["Pop/Rock"]
    assert np.array_equal(stems["vocals"][:, 0], stems["vocals"][:, 1])
    assert not np.array_equal(stems["other"][:, 0], stems["other"][:, 1])
    assert not np.array_equal(stems["drums"][:, 0], stems["drums"][:, 1])


def test_plan_corpus_is_deterministic_and_covers_every_genre():
    plans = plan_corpus(len(DEFAULT_GENRES), 30.0, seed=4)
    assert plans == plan_corpus(len(DEFAULT_GENRES), 30.0, seed=4)
    assert [p.seed for p in plans] != [p.seed for p in plan_corpus(len(DEFAULT_GENRES), 30.0, 5)]
    assert {plan.genre for plan in plans} == set(DEFAULT_GENRES)
    assert all(plan.seconds == 30.0 for plan in plans)
    assert len({plan.seed for plan in plans}) == len(plans)
    names = [plan.name for plan in plans]
    assert len(set(names)) == len(names)
    assert all(name.startswith("Synthetic - ") and "/" not in name for name in names)

    chosen = plan_corpus(7, 10.0, seed=4, genres=["Rap", "Jazz"])
    assert {plan.genre for plan in chosen} == {"Rap", "Jazz"}


def test_plan_corpus_splits_and_instrumentals():
    plans = plan_corpus(20, 10.0, seed=1, test_fraction=0.25, instrumental_fraction=0.1)
    assert sum(plan.split == "test" for plan in plans) == 5
    assert {plan.split for plan in plans} == {"train", "test"}
    assert sum(plan.instrumental for plan in plans) == 2

    assert [plan.split for plan in plan_corpus(2, 10.0, seed=1, test_fraction=0.1)].count(
        "test"
    ) == 1
    assert all(plan.split == "train" for plan in plan_corpus(5, 10.0, 1, test_fraction=0.0))
    assert [plan.split for plan in plan_corpus(1, 10.0, seed=1)] == ["train"]
    assert not any(plan.instrumental for plan in plan_corpus(5, 10.0, 1, instrumental_fraction=0))


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"n_songs": 0}, r"n_songs.*0"),
        ({"n_songs": -3}, r"n_songs.*-3"),
        ({"seconds": 0.0}, r"seconds.*0\.0"),
        ({"seconds": -2.5}, r"seconds.*-2\.5"),
        ({"genres": ["Rap", "Polka"]}, r"'Polka'.*known genres: .*Rap"),
        ({"test_fraction": 1.5}, r"test_fraction.*1\.5"),
        ({"test_fraction": -0.1}, r"test_fraction.*-0\.1"),
        ({"instrumental_fraction": 2.0}, r"instrumental_fraction.*2\.0"),
    ],
)
def test_plan_corpus_rejects_bad_values(arguments, message):
    call = {"n_songs": 4, "seconds": 10.0, "seed": 0, **arguments}
    with pytest.raises(ValueError, match=message):
        plan_corpus(**call)


def test_synthesize_song_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"'Polka'.*known genres"):
        synthesize_song(make_plan("Polka", seconds=2.0), SAMPLE_RATE)
    with pytest.raises(ValueError, match=r"sample_rate.*4000"):
        synthesize_song(make_plan(seconds=2.0), 4000)


def test_custom_styles_set_the_level_conventions():
    rock = GenreStyle(
        name="Rock",
        tempo_bpm=(110.0, 120.0),
        relative_lufs={"vocals": 0.0, "bass": -8.0, "other": 5.0},
        spread_lu=0.0,
        chord_style="power",
        chord_steps=(0, 2, 4, 6, 8, 10, 12, 14),
        chord_length_steps=2,
    )
    styles = {"Rock": rock}
    (plan,) = plan_corpus(1, 3.0, seed=3, styles=styles)
    assert plan.genre == "Rock"
    assert drawn_relative_lufs(plan, styles) == {"bass": -8.0, "other": 5.0, "vocals": 0.0}
    measured = relative_loudness(synthesize_song(plan, SAMPLE_RATE, styles=styles))
    for stem, level in rock.relative_lufs.items():
        assert measured[stem] == pytest.approx(level, abs=LEVEL_TOLERANCE_LU)
    with pytest.raises(ValueError, match="chord_style"):
        GenreStyle(
            "Odd", (100.0, 110.0), {"vocals": 0.0, "bass": 0.0, "other": 0.0}, 1.0, chord_style="x"
        )
