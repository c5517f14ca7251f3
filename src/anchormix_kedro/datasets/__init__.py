"""Kedro datasets for AnchorMix's own formats (audio corpora, array records, model packages)."""

from anchormix_kedro.datasets.model_package_dataset import ModelPackageDataset
from anchormix_kedro.datasets.musdb_dataset import MusdbCorpusDataset
from anchormix_kedro.datasets.npz_record_dataset import NpzRecordDataset

__all__ = ["ModelPackageDataset", "MusdbCorpusDataset", "NpzRecordDataset"]
