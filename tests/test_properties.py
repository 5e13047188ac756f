"""Property-based tests (hypothesis) for what reads untrusted input: a manifest, a checkpoint config, the
command line, the content sniffer, the readers and the CLIP tokenizer. Whatever the input, each answers
with a result or its own clear error (a ClensError, or argparse's usage exit), never another exception."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from cl_core.cli.parser import build_parser
from cl_core.embed.sources import GalleryError, read_manifest
from cl_core.errors import CheckpointError, ClensError, ReaderError
from cl_core.models.clip_tokenizer import get_clip_tokenizer
from cl_core.models.config_limits import read_config
from cl_core.readers import read_path
from cl_core.readers.sniff import sniff

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
CELL = st.text(alphabet=string.printable + "éß中\u202e\x00", max_size=30)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats(allow_nan=True) | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=30)
CONFIG_KEYS = st.sampled_from(["image_size", "embed_dim", "width", "layers", "heads", "patch_size",
                               "context_length", "sample_rate", "n_mels", "size", "towers", "vision_cfg", "x"])


@FAST
@example(header=["image"], rows=[["\x00"]])  # found in CI: a NUL byte in a file cell
@given(header=st.lists(st.sampled_from(["id", "image", "audio", "path", "caption", "label", "modality", "site",
                                        "mif", "text", ""]), min_size=1, max_size=6),
       rows=st.lists(st.lists(CELL, min_size=0, max_size=7), max_size=6))
def test_a_manifest_reads_or_says_why_and_never_opens_its_files(tmp_path_factory, header, rows):
    import csv
    import io

    folder = tmp_path_factory.mktemp("m")
    buf = io.StringIO()
    csv.writer(buf).writerows([header, *rows])
    path = folder / "manifest.csv"
    path.write_text(buf.getvalue(), encoding="utf-8", errors="surrogatepass")
    try:
        gallery = read_manifest(path)
    except GalleryError:
        return
    for entry in gallery.entries:  # paths are data until a job reads them (under the manifest's folder)
        assert entry.path is not None or entry.text


@FAST
@given(data=st.dictionaries(CONFIG_KEYS, JSON_VALUES, max_size=6))
def test_a_checkpoint_config_is_read_or_refused_by_name(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("c") / "config.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    try:
        got = read_config(path)
    except CheckpointError as exc:
        assert str(path) in str(exc)
        return
    assert isinstance(got, dict)


@FAST
@given(raw=st.binary(max_size=300))
def test_config_bytes_that_are_not_json_are_refused(tmp_path_factory, raw):
    path = tmp_path_factory.mktemp("c") / "config.json"
    path.write_bytes(raw)
    try:
        read_config(path)
    except CheckpointError:
        pass


@FAST
@given(argv=st.lists(st.sampled_from(["search", "embed", "project", "index", "build", "eval", "-k", "0", "-1",
                                      "nan", "inf", "--min-z", "--weight", "--text", "--out", "--method",
                                      "umap", "--param", "n_neighbors=0", "x=1", "--fusion", "gram", "-",
                                      "--json", "--kind", "ivfpq", "cache", "prune", "--older-than", "1e400"]),
                     max_size=8))
def test_the_command_line_parses_or_exits_with_usage(argv):
    parser = build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as exc:
        assert exc.code in (0, 2)


@FAST
@given(head=st.binary(max_size=512))
def test_sniffing_any_bytes_names_a_kind(head):
    assert isinstance(sniff(Path("x"), head), str)


@FAST
@given(raw=st.binary(min_size=1, max_size=2048),
       name=st.sampled_from(["x.png", "x.wav", "x.txt", "x.csv", "x.npy", "x.tif", "x.flac", "x.jpg", "x.bin"]))
def test_reading_any_bytes_gives_items_or_a_reader_error(tmp_path_factory, raw, name):
    path = tmp_path_factory.mktemp("r") / name
    path.write_bytes(raw)
    try:
        items = read_path(path)
    except ReaderError as exc:
        assert exc.reason
        return
    except ClensError:
        return
    assert isinstance(items, list)


@pytest.fixture(scope="module")
def tokenizer():
    return get_clip_tokenizer()


@FAST
@given(text=st.text(max_size=400))
def test_the_clip_tokenizer_takes_any_text_and_fits_its_context(tokenizer, text):
    ids = tokenizer([text])
    assert tuple(ids.shape) == (1, tokenizer.context_length)
