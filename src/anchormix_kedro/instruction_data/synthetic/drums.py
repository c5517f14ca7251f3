"""The drums stem: a synthesized kit playing the genre pattern with fills and crashes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from anchormix_kedro.instruction_data.synthetic.plan import SECTION_BARS, STEPS_PER_BAR, Arrangement
from anchormix_kedro.instruction_data.synthetic.sound import add_at, noise_filter, panned, silence
from anchormix_kedro.instruction_data.synthetic.styles import GenreStyle


@dataclass
class _DrumKit:
    kick: np.ndarray
    snares: list[np.ndarray]
    hats: list[np.ndarray]
    open_hat: np.ndarray
    rides: list[np.ndarray]
    crash: np.ndarray
    toms: list[np.ndarray]


def _build_kit(style: GenreStyle, sample_rate: int, rng: np.random.Generator) -> _DrumKit:
    def times(seconds: float) -> np.ndarray:
        return np.arange(int(seconds * sample_rate)) / sample_rate

    def noise(t: np.ndarray) -> np.ndarray:
        return rng.standard_normal(len(t))

    def swept_sine(t, start_hz, end_hz, sweep_s, decay_s):
        frequency = end_hz + (start_hz - end_hz) * np.exp(-t / sweep_s)
        phase = 2 * np.pi * np.cumsum(frequency) / sample_rate
        return np.sin(phase) * np.exp(-t / decay_s)

    t = times(max(0.4, 2.5 * style.kick_decay_s))
    kick_hz = rng.uniform(45, 60)
    click = signal.sosfilt(noise_filter("highpass", 2000, sample_rate), noise(t))
    kick = swept_sine(t, 160, kick_hz, 0.03, style.kick_decay_s) + 0.3 * click * np.exp(-t / 0.003)

    t = times(0.3)
    snare_tone = rng.uniform(170, 220)
    band = noise_filter("bandpass", [900, 7000], sample_rate)
    snares = [
        signal.sosfilt(band, noise(t)) * np.exp(-t / rng.uniform(0.05, 0.08))
        + 0.6 * swept_sine(t, snare_tone * 1.3, snare_tone, 0.01, 0.05)
        for _ in range(3)
    ]

    high = noise_filter("highpass", 7000, sample_rate)
    t = times(0.12)
    hats = [
        signal.sosfilt(high, noise(t)) * np.exp(-t / rng.uniform(0.015, 0.025)) for _ in range(3)
    ]
    t = times(0.4)
    open_hat = signal.sosfilt(high, noise(t)) * np.exp(-t / 0.12)

    # Ride and crash: bright noise plus a few inharmonic partials for the metallic ping.
    def cymbal(seconds, cutoff_hz, decay_s, partials_hz):
        t = times(seconds)
        wash = signal.sosfilt(noise_filter("highpass", cutoff_hz, sample_rate), noise(t))
        ping = sum(np.sin(2 * np.pi * hz * t + rng.uniform(0, 2 * np.pi)) for hz in partials_hz)
        return (wash + 0.15 * ping) * np.exp(-t / decay_s)

    ride_partials = [hz for hz in rng.uniform(2800, 6500, size=3) if hz < 0.45 * sample_rate]
    rides = [cymbal(0.9, 5000, 0.35, ride_partials) for _ in range(2)]
    crash = cymbal(2.0, 3500, 0.6, [])

    t = times(0.45)
    toms = [swept_sine(t, hz * 1.4, hz, 0.04, 0.2) for hz in (200.0, 150.0, 100.0)]

    def finished(sound: np.ndarray) -> np.ndarray:
        # A 10 ms fade-out: cutting a still-ringing sound would click.
        fade = np.clip(np.arange(len(sound))[::-1] / (0.01 * sample_rate), 0, 1)
        return (sound * fade).astype(np.float32)

    return _DrumKit(
        kick=finished(kick),
        snares=[finished(snare) for snare in snares],
        hats=[finished(hat) for hat in hats],
        open_hat=finished(open_hat),
        rides=[finished(ride) for ride in rides],
        crash=finished(crash),
        toms=[finished(tom) for tom in toms],
    )


def render_drums(arrangement: Arrangement, rng: np.random.Generator) -> np.ndarray:
    style = arrangement.style
    sample_rate = arrangement.sample_rate
    kit = _build_kit(style, sample_rate, rng)
    buffer = silence(arrangement)
    hat_pan = float(rng.choice([-0.35, 0.35]))
    jitter_s = style.humanize_ms / 1000

    stereo_sounds: dict[tuple[int, float], np.ndarray] = {}

    def hit(bar: int, step: float, sound: np.ndarray, gain: float, pan: float) -> None:
        seconds = arrangement.step_time(bar, step) + (rng.normal(0, jitter_s) if jitter_s else 0)
        velocity = float(np.clip(1 + rng.normal(0, 0.08), 0.7, 1.25))
        key = (id(sound), pan)  # the kit's sounds outlive this render
        if key not in stereo_sounds:
            stereo_sounds[key] = panned(sound, pan)
        start = arrangement.sample(max(seconds, 0.0))
        add_at(buffer, start, stereo_sounds[key], gain * velocity)

    # At slow tempos a drummer fills the gaps between eighth-note hats with soft sixteenths;
    # it also keeps the drum stem free of near-silent quarter seconds.
    ghost_hat_steps = ()
    if 2 * arrangement.step_seconds > 0.22:
        hats = set(style.hat_steps)
        ghost_hat_steps = tuple(s + 1 for s in sorted(hats) if s + 1 not in hats and s + 2 in hats)
        ghost_hat_steps += (15,) if {14, 0} <= hats and 15 not in hats else ()

    previous_was_fill = False
    for bar in range(arrangement.n_bars):
        section_start = bar == 0 or (
            bar >= arrangement.intro_bars and (bar - arrangement.intro_bars) % SECTION_BARS == 0
        )
        fill = bar % 4 == 3 and rng.random() < style.fill_probability
        # A fill takes over the last beat; the kick, snare and hats make room for it.
        last_step = 12 if fill else STEPS_PER_BAR
        if section_start or previous_was_fill:
            hit(bar, 0, kit.crash, 0.5, float(rng.uniform(-0.5, 0.5)))
        for step in style.kick_steps:
            if step < last_step:
                hit(bar, step, kit.kick, 1.0, 0.0)
        if not fill and rng.random() < 0.2:
            hit(bar, 14, kit.kick, 0.8, 0.0)  # an occasional pickup kick into the next bar
        for step in style.snare_steps:
            if step < last_step:
                hit(bar, step, kit.snares[int(rng.integers(3))], 0.8, 0.05)
        for step in style.ghost_snare_steps:
            if step < last_step:
                hit(bar, step, kit.snares[int(rng.integers(3))], 0.18, 0.05)
        for step in style.hat_steps:
            if step < last_step:
                accent = 1.0 if step % 4 == 0 else 0.7
                hit(bar, step, kit.hats[int(rng.integers(3))], 0.4 * accent, hat_pan)
        for step in ghost_hat_steps:
            if step < last_step:
                hit(bar, step, kit.hats[int(rng.integers(3))], 0.18, hat_pan)
        for step in style.open_hat_steps:
            if step < last_step:
                hit(bar, step, kit.open_hat, 0.25, hat_pan)
        for step in style.ride_steps:
            hit(bar, step, kit.rides[int(rng.integers(2))], 0.35, -hat_pan)
        if fill:
            if rng.random() < 0.5:
                for index, step in enumerate((12, 13, 14, 15)):
                    tom = min(index * 3 // 4, 2)
                    hit(bar, step, kit.toms[tom], 0.6 + 0.1 * index, 0.4 - 0.4 * tom)
            else:
                for index, step in enumerate((12, 13, 14, 15)):
                    hit(bar, step, kit.snares[index % 3], 0.45 + 0.12 * index, 0.05)
        previous_was_fill = fill
    return buffer
