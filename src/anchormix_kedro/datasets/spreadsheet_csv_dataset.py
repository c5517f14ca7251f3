"""A CSV of people's text (ratings, comments, rater names) that is safe to open in a
spreadsheet and reads back exactly as typed."""

from __future__ import annotations

import csv

import pandas as pd
from kedro_datasets.pandas import CSVDataset

from anchormix_kedro.study.kit.page_csv import (
    restore_spreadsheet_text,
    spreadsheet_safe,
)


class SpreadsheetSafeCSVDataset(CSVDataset):
    """``pandas.CSVDataset`` that writes every field quoted and every text cell that a
    spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, carriage return)
    behind an apostrophe, and takes the apostrophe off again when it loads."""

    # Kedro wraps ``save`` and ``load`` (logging, versions) once, around these methods: the
    # parent's own bodies (``__wrapped__``) are called so a version is resolved only once.
    def save(self, data: pd.DataFrame) -> None:
        self._save_args = {**self._save_args, "quoting": csv.QUOTE_ALL}
        CSVDataset.save.__wrapped__(self, spreadsheet_safe(data))

    def load(self) -> pd.DataFrame:
        return restore_spreadsheet_text(CSVDataset.load.__wrapped__(self))
