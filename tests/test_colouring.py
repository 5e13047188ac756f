"""Colouring a map by a gallery column: categories for words and few numbers, a continuous range for many
numbers (missing values kept apart); the metadata travels with the index through save and load."""

from __future__ import annotations

import numpy as np
import pytest

from cl_core import actions
from cl_core.embed.gallery import Row
from cl_core.errors import ClensError
from cl_core.modality import Modality
from cl_core.search.store import build_index_set, load, save


def rows(n: int) -> list[Row]:
    return [Row(i, f"s{i}", f"f{i}.png", Modality.IMAGE if i % 2 else Modality.TEXT, "cat" if i % 3 else None)
            for i in range(n)]


def test_words_are_categories_and_missing_values_come_last():
    how = actions.colouring(rows(4), {"site": ["b", "", "a", None]}, "site")
    assert how.kind == "categorical" and how.categories == ["a", "b", "(none)"]
    assert how.codes.tolist() == [1, 2, 0, 2]


def test_few_numbers_are_ordered_categories_many_are_a_range():
    few = actions.colouring(rows(4), {"grade": ["10", "2", "2", "1"]}, "grade")
    assert few.kind == "categorical" and few.categories == ["1", "2", "10"]
    values = [str(i * 1.5) for i in range(20)]
    values[3] = ""
    many = actions.colouring(rows(20), {"depth": values}, "depth")
    assert many.kind == "continuous" and (many.low, many.high) == (0.0, 28.5)
    assert np.isnan(many.values[3]) and many.values[4] == 6.0


def test_modality_and_label_are_built_in_and_unknown_columns_are_named():
    assert actions.colour_columns({"site": [], "label": []}) == ["modality", "label", "site"]
    assert actions.colouring(rows(3), {}, "label").categories == ["cat", "(none)"]
    with pytest.raises(KeyError, match="have: modality, label"):
        actions.colouring(rows(3), {}, "age")


def test_metadata_is_reordered_with_the_rows_and_survives_save_and_load(tmp_path):
    r = rows(6)
    vectors = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    built = build_index_set(r, vectors, {"fingerprint": "fp", "name": "m"}, {}, "flat",
                            meta={"n": list(range(6))})
    assert [row.entry for row in built.rows] == [1, 3, 5, 0, 2, 4]  # grouped by modality, images first
    assert built.meta["n"] == [1, 3, 5, 0, 2, 4]
    loaded = load(save(built, tmp_path / "idx"))
    assert {name: list(column) for name, column in loaded.meta.items()} == built.meta
    assert loaded.meta_of(1) == {"n": 3} and built.meta_of(1) == {"n": 3}


def test_metadata_that_is_not_plain_values_is_refused(tmp_path):
    import hashlib
    import json

    r = rows(3)
    vectors = np.eye(3, 8, dtype=np.float32)
    folder = save(build_index_set(r, vectors, {"fingerprint": "fp", "name": "m"}, {}, "flat",
                                  meta={"n": [11, 22, 33]}), tmp_path / "idx")
    manifest = json.loads((folder / "manifest.json").read_text())
    name = next(n for n in manifest["files"] if n.endswith(".jsonl"))
    blob = (folder / name).read_bytes().replace(b'{"n": 22}', b'{"n":[2]}')  # same length, checksum made to match
    (folder / name).write_bytes(blob)
    manifest["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    loaded = load(folder)
    with pytest.raises(ClensError, match=r"\.jsonl: row \d is not a valid index row: metadata is not one object"):
        list(loaded.meta["n"])
    readable = []
    for i in range(3):
        try:
            readable.append(loaded.meta_of(i)["n"])
        except ClensError:
            pass
    assert sorted(readable) == [11, 33]  # the other rows still read
