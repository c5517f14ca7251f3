"""A ratings file saved in a Windows code page (Excel's "CSV" on Windows) is named, with
how to save it, however it is read: directly or through the catalog's partitions."""

from __future__ import annotations

import pytest

from anchormix_kedro.datasets.optional_partitioned_dataset import OptionalPartitionedDataset
from anchormix_kedro.study.ratings import RatingsError, merge_ratings, read_ratings_csv

HEADER = "rater,scenario_id,effectiveness,musicality,actionability,helpfulness,comment\n"


def write_cp1252(folder, name="zoe.csv"):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes((HEADER + "Zoé,s-1,5,5,5,5,très bien\n").encode("cp1252"))
    return path


def test_a_cp1252_file_read_directly_is_named_with_the_fix(tmp_path):
    path = write_cp1252(tmp_path)
    with pytest.raises(RatingsError) as error:
        read_ratings_csv(path)
    message = str(error.value)
    assert str(path) in message and "not UTF-8" in message and "save it as UTF-8" in message
    assert len(message.splitlines()) == 1


def test_a_cp1252_file_among_the_catalog_s_partitions_is_named(tmp_path):
    write_cp1252(tmp_path / "ratings")
    files = OptionalPartitionedDataset(
        path=str(tmp_path / "ratings"),
        dataset={
            "type": "pandas.CSVDataset",
            "load_args": {"dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"},
        },
        filename_suffix=".csv",
    ).load()
    with pytest.raises(RatingsError, match=r"ratings file 'zoe' is not UTF-8 .*save it as UTF-8"):
        merge_ratings(files, {"s-1"})
    problems: list[str] = []
    assert merge_ratings(files, {"s-1"}, problems=problems).empty
    assert len(problems) == 1 and "'zoe' is not UTF-8" in problems[0]
