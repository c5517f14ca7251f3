"""Building the instruction dataset: audio I/O and loudness, MUSDB18, excerpts, the synthetic
corpus, perturbation, advice text and genre conventions. Testable without Kedro."""
