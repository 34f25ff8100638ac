"""Tests of onebit.table.format_table (golden text, alignment, errors)."""
import pytest

from onebit.table import format_cell, format_table


def test_format_table_golden():
    rows = [{"name": "conv1", "params": 288, "acc": 0.99123}, {"name": "fc", "params": 12345}]
    expected = (
        "name   params     acc\n"
        "-----  ------  ------\n"
        "conv1     288  0.9912\n"
        "fc      12345"
    )
    assert format_table(rows) == expected


def test_format_table_columns_order_and_rename():
    rows = [{"a": 1, "b": "x"}]
    text = format_table(rows, columns={"b": "B", "a": "A"})
    assert text.splitlines()[0] == "B  A"
    assert text.splitlines()[2] == "x  1"


def test_format_table_floatfmt_per_column():
    text = format_table([{"x": 1.23456, "y": 1.23456}], floatfmt={"x": ".2f"})
    assert text.splitlines()[2] == "1.23  1.235"


def test_format_table_empty_rows_keeps_header():
    assert format_table([], columns=["a", "bb"]) == "a  bb\n-  --"


def test_format_table_rejects_non_dict_rows():
    with pytest.raises(TypeError, match="row 1"):
        format_table([{"a": 1}, [1, 2]])
    with pytest.raises(TypeError, match="list of dicts"):
        format_table({"a": 1})


def test_format_cell_types():
    assert format_cell(None) == ""
    assert format_cell(True) == "True"
    assert format_cell(3) == "3"
    assert format_cell(0.5, ".2f") == "0.50"
