"""Kedro datasets for AnchorMix's own formats (audio corpora, excerpts)."""

from anchormix_kedro.datasets.excerpt_dataset import ExcerptDataset
from anchormix_kedro.datasets.musdb_dataset import MusdbCorpusDataset

__all__ = ["ExcerptDataset", "MusdbCorpusDataset"]
