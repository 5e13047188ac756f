"""Index kinds, the index folder (manifest, checksums, model checks) and search with fusion and calibration."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from cl_core.embed.gallery import Row
from cl_core.errors import ClensError, DimensionMismatchError
from cl_core.modality import Modality
from cl_core.objectives import query_gram_volume as gram_volume
from cl_core.search import kinds
from cl_core.search.query import search
from cl_core.search.store import IndexFileError, build_index_set, load, save

DIM = 32


def clustered(n: int, seed: int, clusters: int = 20) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, DIM))
    x = centres[rng.integers(0, clusters, n)] + 0.6 * rng.standard_normal((n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def index_of(vectors: np.ndarray, modalities: list[Modality], kind: str = "flat"):
    rows = [Row(i, f"s{i % (len(vectors) // len(set(modalities)))}", f"f{i}", m)
            for i, m in enumerate(modalities)]
    return build_index_set(rows, vectors, {"fingerprint": "fp-a", "name": "m"}, {"name": "g"}, kind)


@pytest.mark.parametrize("kind", kinds.KINDS)
def test_every_kind_finds_the_exact_neighbours(kind):
    both = clustered(4100, 0)  # queries from the same clusters as the gallery, not in it
    x, q = both[:4000], both[4000:]
    truth = kinds.exact_topk(q, x, 10)
    s = index_of(x, [Modality.IMAGE] * len(x), kind)
    part = s.parts[Modality.IMAGE]
    assert part.built.kind == kind and part.recall_at_10 is not None and part.recall_at_10 >= 0.9
    found = s.search_part(Modality.IMAGE, q, 10)[1]
    assert kinds.recall_at(found, truth) >= (1.0 if kind == "flat" else 0.9)
    if kind in ("binary", "ivfpq"):  # re-ranked with the float vectors: scores are exact cosines
        scores = s.search_part(Modality.IMAGE, q[:5], 10)[0]
        np.testing.assert_allclose(scores, np.take_along_axis(q[:5] @ x.T, found[:5], 1), atol=1e-5)


def test_ivfpq_takes_finer_codes_only_where_the_small_ones_fall_short(tmp_path):
    """Clustered vectors reach the recall target with d/8-byte codes; unclustered Gaussian ones (every
    neighbour almost as near as the next) do not, and the build measures that and takes d/4-byte codes. The
    saved index reopens repacked for fast-scan search and answers as it did."""
    import faiss

    small = index_of(clustered(4000, 0), [Modality.IMAGE] * 4000, "ivfpq").parts[Modality.IMAGE]
    assert small.built.index.code_size == DIM // 8 and small.recall_at_10 >= kinds.RECALL_TARGET
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4100, DIM)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    s = index_of(x[:4000], [Modality.IMAGE] * 4000, "ivfpq")
    part = s.parts[Modality.IMAGE]
    assert part.built.index.code_size == DIM // 4 and part.recall_at_10 >= kinds.RECALL_TARGET
    assert part.built.bytes_per_vector > small.built.bytes_per_vector
    save(s, tmp_path / "ix")
    again = load(tmp_path / "ix")
    assert isinstance(again.parts[Modality.IMAGE].built.index, faiss.IndexIVFPQFastScan)
    found = again.search_part(Modality.IMAGE, x[4000:], 10)[1]
    np.testing.assert_array_equal(found, s.search_part(Modality.IMAGE, x[4000:], 10)[1])
    assert kinds.recall_at(found, kinds.exact_topk(x[4000:], x[:4000], 10)) >= 0.9


def test_binary_takes_finer_codes_where_the_small_ones_need_many_rows_read(tmp_path):
    """Binary ranks its Hamming candidates by product codes and re-reads the best from disk. Tight clusters
    reach the target re-reading few rows with d/8-byte codes; looser ones need more than FINER_EXACT rows per
    hit, and the build takes d/4-byte codes, which reach it re-reading fewer. Saved, it answers the same."""

    def leaning(noise: float, d: int = 64, n: int = 4000) -> np.ndarray:
        rng = np.random.default_rng(0)
        x = (rng.standard_normal((40, d)) + 3.0)[rng.integers(0, 40, n)] + noise * rng.standard_normal((n, d))
        return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)

    tight = index_of(leaning(0.6), [Modality.IMAGE] * 4000, "binary").parts[Modality.IMAGE]
    assert tight.built.pq.M == 64 // 8 and tight.built.params["exact"] <= kinds.FINER_EXACT
    x = leaning(1.0, n=4100)
    small = kinds.build("binary", x[:4000])
    truth = kinds.exact_topk(x[4000:], x[:4000], 10)
    got_small = kinds.tune(small, x[4000:], truth, 10, kinds.exact_rerank(x[:4000]))
    assert kinds.finer_reason(small, got_small, 10)  # the small codes need many rows read here
    s = index_of(x[:4000], [Modality.IMAGE] * 4000, "binary")
    part = s.parts[Modality.IMAGE]
    assert part.built.pq.M == 64 // 4 and part.recall_at_10 >= kinds.RECALL_TARGET
    assert part.built.params["exact"] < small.params["exact"]
    save(s, tmp_path / "ix")
    again = load(tmp_path / "ix")
    assert again.parts[Modality.IMAGE].built.pq.M == 64 // 4
    found = again.search_part(Modality.IMAGE, x[4000:], 10)[1]
    np.testing.assert_array_equal(found, s.search_part(Modality.IMAGE, x[4000:], 10)[1])
    assert kinds.recall_at(found, truth) >= 0.9


def test_auto_kind_follows_gallery_size():
    assert [kinds.auto_kind(n) for n in (10, 49_999, 50_000, 4_999_999, 5_000_000)] == \
        ["flat", "flat", "hnsw", "hnsw", "ivfpq"]


def test_saved_index_loads_and_answers_the_same(tmp_path):
    x = clustered(600, 2)
    mods = [Modality.IMAGE] * 300 + [Modality.TEXT] * 300
    s = index_of(x, mods, "hnsw")
    save(s, tmp_path / "ix")
    again = load(tmp_path / "ix", fingerprint="fp-a", dim=DIM)
    q = clustered(3, 3)
    for m in (Modality.IMAGE, Modality.TEXT):
        np.testing.assert_array_equal(again.search_part(m, q, 5)[1], s.search_part(m, q, 5)[1])
    assert [r.modality for r in again.rows] == mods


def test_a_bit_flip_is_refused_before_faiss_reads_the_file(tmp_path):
    save(index_of(clustered(100, 0), [Modality.IMAGE] * 100), tmp_path / "ix")
    faiss_file = next((tmp_path / "ix").glob("part-*.faiss"))
    blob = bytearray(faiss_file.read_bytes())
    blob[len(blob) // 2] ^= 0x01
    faiss_file.write_bytes(bytes(blob))
    with pytest.raises(IndexFileError, match="checksum"):
        load(tmp_path / "ix")


def test_foreign_missing_and_other_model_indexes_are_refused(tmp_path):
    save(index_of(clustered(100, 0), [Modality.IMAGE] * 100), tmp_path / "ix")
    with pytest.raises(IndexFileError, match="another model"):
        load(tmp_path / "ix", fingerprint="fp-b")
    with pytest.raises(DimensionMismatchError, match="32-d"):
        load(tmp_path / "ix", dim=64)
    with pytest.raises(IndexFileError, match="not an index folder"):
        load(tmp_path)
    shutil.copytree(tmp_path / "ix", tmp_path / "foreign")
    manifest = json.loads((tmp_path / "foreign" / "manifest.json").read_text())
    manifest["format"] = "something-else"
    (tmp_path / "foreign" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFileError, match="not an index written by Contrastive Lens"):
        load(tmp_path / "foreign")
    next((tmp_path / "ix").glob("vectors-*.npy")).unlink()
    with pytest.raises(IndexFileError, match="missing"):
        load(tmp_path / "ix")


def test_resaving_removes_the_old_files(tmp_path):
    s = index_of(clustered(100, 0), [Modality.IMAGE] * 100)
    save(s, tmp_path / "ix")
    save(s, tmp_path / "ix")
    names = {p.name for p in (tmp_path / "ix").iterdir()}
    assert names == set(json.loads((tmp_path / "ix" / "manifest.json").read_text())["files"]) | {"manifest.json"}


def test_symile_fusion_ranks_by_the_multilinear_inner_product():
    x = clustered(300, 4)
    s = index_of(x, [Modality.IMAGE] * 100 + [Modality.TEXT] * 100 + [Modality.AUDIO] * 100)
    qa, qb = x[0], x[150]
    hits = search(s, np.stack([qa, qb]), Modality.AUDIO, k=100, fusion="symile")
    audio = np.arange(200, 300)
    mip = np.array([sum(qa[d] * qb[d] * x[g, d] for d in range(DIM)) for g in audio])  # the formula, term by term
    assert [h.row for h in hits] == list(audio[np.argsort(-mip, kind="stable")])
    np.testing.assert_allclose([h.score for h in hits], np.sort(mip)[::-1], atol=1e-5)


def test_gram_volume_equals_the_gram_determinant_and_ranks_aligned_first():
    x = clustered(50, 5)
    q = x[:2]
    direct = np.array([np.sqrt(max(np.linalg.det(np.stack([q[0], q[1], g]) @ np.stack([q[0], q[1], g]).T), 0))
                       for g in x])
    np.testing.assert_allclose(gram_volume(q, x), direct, atol=1e-4)  # sqrt near 0 magnifies float32 rounding
    others = x[2:]  # the queries themselves would tie at volume 0
    s = index_of(np.concatenate([others, others]), [Modality.IMAGE] * 48 + [Modality.TEXT] * 48)
    hits = search(s, q, Modality.TEXT, k=5, fusion="gram")
    assert [h.row - 48 for h in hits] == list(np.argsort(direct[2:], kind="stable")[:5])
    assert hits[0].score == pytest.approx(-direct[2:].min(), abs=1e-5)


def test_gram_score_of_a_single_query_is_blind_to_the_cosine_sign():
    from cl_core.objectives import fusion_scores

    x = clustered(20, 7)
    cos = x @ x[0]
    np.testing.assert_allclose(fusion_scores("gram", x[:1], x), -np.sqrt(np.clip(1 - cos**2, 0, None)), atol=1e-3)
    np.testing.assert_allclose(fusion_scores("gram", x[:1], -x), fusion_scores("gram", x[:1], x), atol=1e-6)
    np.testing.assert_allclose(fusion_scores("mean", x[:1], x), cos, atol=1e-6)


def test_weighted_mean_fusion_and_calibrated_threshold():
    x = clustered(400, 6)
    s = index_of(x, [Modality.IMAGE] * 200 + [Modality.TEXT] * 200)
    one = search(s, x[:1], Modality.TEXT, k=3)
    heavy = search(s, np.stack([x[0], x[1]]), Modality.TEXT, k=3, weights=[1.0, 0.0])
    assert [h.row for h in heavy] == [h.row for h in one]
    assert one[0].z > 2.0 and 0.0 <= one[0].relevance <= 1.0 and one[0].basis  # stands out from the query's scores
    noise = np.random.default_rng(9).standard_normal((1, DIM)).astype(np.float32)
    noise /= np.linalg.norm(noise)
    assert search(s, noise, Modality.TEXT, k=5, min_z=one[0].z + 1) == []
    merged = search(s, x[:1], None, k=6)
    assert {h.modality for h in merged} == {"image", "text"} and merged[0].row == 0  # itself first, by z
    with pytest.raises(ClensError, match="no audio items"):
        search(s, x[:1], Modality.AUDIO)
    with pytest.raises(DimensionMismatchError):
        search(s, np.ones((1, 8), np.float32))
    with pytest.raises(ClensError, match="at least two"):
        search(s, x[:1], Modality.TEXT, fusion="symile")


def _rewrite(folder, prefix: str, edit) -> None:  # noqa: ANN001 - edit: bytes -> bytes
    """Rewrite one index file and update its checksum and size, as a deliberate forger would."""
    import hashlib

    manifest = json.loads((folder / "manifest.json").read_text())
    name = next(n for n in manifest["files"] if n.startswith(prefix))
    blob = edit((folder / name).read_bytes())
    (folder / name).write_bytes(blob)
    manifest["files"][name] = {"sha256": hashlib.sha256(blob).hexdigest(), "bytes": len(blob)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.parametrize("kind", ["flat", "hnsw", "ivfpq", "binary"])
def test_a_forged_size_inside_an_index_file_is_refused_before_faiss_allocates(tmp_path, kind, monkeypatch):
    """A vector count rewritten to 2**40 with the checksum made to match: faiss would try to allocate it.
    The app's memo spares reopening the same bytes the walk, never other bytes under the same name."""
    import struct

    from cl_core import actions
    from cl_core.search import store as store_mod

    save(index_of(clustered(300, 1), [Modality.IMAGE] * 300, kind), tmp_path / "ix")
    walked: list[str] = []
    real = store_mod.check_blob
    monkeypatch.setattr(store_mod, "check_blob", lambda *a: walked.append(a[0]) or real(*a))
    cache = actions.EmbeddingCache(tmp_path / "cache")
    load(tmp_path / "ix", memo=cache)
    load(tmp_path / "ix", memo=cache)
    assert walked == [kind]
    at = 25 if kind == "binary" else 37  # the first size field after the header
    _rewrite(tmp_path / "ix", "part-image-", lambda b: b[:at] + struct.pack("<Q", 1 << 40) + b[at + 8:])
    for memo in (cache, None):
        with pytest.raises(IndexFileError, match="larger than the file|do not match|lists for"):
            load(tmp_path / "ix", memo=memo)
    assert walked == [kind] * 3
    cache.close()


def test_a_forged_inverted_list_size_is_refused(tmp_path):
    """Deep inside an IVF-PQ file packed for fast-scan: one list's size made huge, the checksum made to
    match; and in the plain layout that earlier versions saved (8-bit codes), which still opens."""
    import struct

    import faiss

    from cl_core.search.blob_check import BlobError, check_blob

    save(index_of(clustered(300, 3), [Modality.IMAGE] * 300, "ivfpq"), tmp_path / "ix")

    def forge(blob: bytes, tag: bytes, skip: int) -> bytes:
        at = blob.index(tag) + 4 + skip  # the first list's size
        return blob[:at] + struct.pack("<Q", 1 << 40) + blob[at + 8:]

    _rewrite(tmp_path / "ix", "part-image-", lambda b: forge(b, b"ilbl", 32))
    with pytest.raises(IndexFileError, match="larger than the file"):
        load(tmp_path / "ix")
    x = clustered(300, 3)
    plain = faiss.IndexIVFPQ(faiss.IndexFlatIP(DIM), DIM, 7, 4, 8, faiss.METRIC_INNER_PRODUCT)
    plain.cp.min_points_per_centroid = plain.pq.cp.min_points_per_centroid = 1
    plain.train(x)
    plain.add(x)
    blob = faiss.serialize_index(plain).tobytes()
    check_blob("ivfpq", blob, DIM, 300)
    with pytest.raises(BlobError, match="lists hold"):
        check_blob("ivfpq", forge(blob, b"full", 8), DIM, 300)


def test_forged_parts_and_rows_are_refused_with_the_file_named(tmp_path):
    save(index_of(clustered(200, 2), [Modality.IMAGE] * 100 + [Modality.TEXT] * 100), tmp_path / "ix")
    manifest = json.loads((tmp_path / "ix" / "manifest.json").read_text())
    manifest["parts"][1]["start"] = 90  # overlapping parts
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexFileError, match="do not tile"):
        load(tmp_path / "ix")
    manifest["parts"][1]["start"] = 100
    faiss_file, manifest["parts"][1]["file"] = manifest["parts"][1]["file"], manifest["parts"][1]["calibration"]
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))  # a part "indexed" by an array file
    with pytest.raises(IndexFileError, match="do not tile"):
        load(tmp_path / "ix")
    manifest["parts"][1]["file"] = faiss_file
    (tmp_path / "ix" / "manifest.json").write_text(json.dumps(manifest))
    load(tmp_path / "ix")
    _rewrite(tmp_path / "ix", "rows-", lambda b: b + b'[0, "s", "x", "image", null, null]\n')  # a row too many
    with pytest.raises(IndexFileError, match="do not cut it into 200 rows"):
        load(tmp_path / "ix")


@pytest.mark.parametrize("kind", ["flat", "binary"])
def test_forged_row_offsets_are_refused_where_they_are_read(tmp_path, kind):
    """Row offsets are not read whole on open (mapped; a pair at a time for the compact kinds): a forged
    pair (checksum made to match) is refused with the row named when that row is read, the other rows still
    read; a forged header is refused on open."""
    import io

    s = index_of(clustered(300, 1), [Modality.IMAGE] * 300, kind)
    save(s, tmp_path / "ix")
    offsets_name = next((tmp_path / "ix").glob("rows-*.offsets.npy")).name

    def forge(blob: bytes) -> bytes:
        arr = np.load(io.BytesIO(blob))
        arr[31] = arr[30] - 1
        buf = io.BytesIO()
        np.save(buf, arr)
        return buf.getvalue()

    _rewrite(tmp_path / "ix", offsets_name, forge)
    got = load(tmp_path / "ix")
    for read in (lambda: got.records([5, 30]), lambda: got.rows[30], lambda: list(got.rows)):
        with pytest.raises(ClensError, match=r"rows-.*offsets do not cut out row 30"):
            read()
    assert got.rows[29] == s.rows[29] and got.records([32, 4]) == s.records([32, 4])
    _rewrite(tmp_path / "ix", offsets_name, lambda b: b.replace(b"(301,)", b"(999,)"))
    with pytest.raises(IndexFileError, match=r"offsets"):
        load(tmp_path / "ix")


def test_rows_are_read_when_asked_and_a_forged_row_is_named(tmp_path):
    """Opening does not parse the rows; a row rewritten (same length, checksum made to match) is refused
    with its file and number when it is read, and the other rows still read."""
    s = index_of(clustered(200, 2), [Modality.IMAGE] * 100 + [Modality.TEXT] * 100)
    save(s, tmp_path / "ix")
    loaded = load(tmp_path / "ix")
    assert list(loaded.rows) == list(s.rows) and loaded.rows[-1] == s.rows[199] and loaded.rows[3:5] == s.rows[3:5]

    def forge(blob: bytes) -> bytes:
        lines = blob.split(b"\n")
        lines[7] = lines[7].replace(b'"image"', b'"smell"')
        return b"\n".join(lines)

    _rewrite(tmp_path / "ix", "rows-", forge)
    again = load(tmp_path / "ix")
    with pytest.raises(ClensError, match=r"rows-.*row 7 is not a valid index row"):
        again.rows[7]
    with pytest.raises(ClensError, match=r"rows-.*row 7 is not a valid index row"):  # a hit list reading it
        again.records([6, 7, 8])
    assert again.rows[8] == s.rows[8]
    assert again.records([8, 6, -1]) == s.records([8, 6, 199])
    assert again.records([8])[0][:4] == (s.rows[8].entry, s.rows[8].sample_id, s.rows[8].source, s.rows[8].modality.value)

    def blank(blob: bytes) -> bytes:  # a line of spaces: the hit list's one json call fails, the line is named
        lines = blob.split(b"\n")
        lines[21] = b" " * len(lines[21])
        return b"\n".join(lines)

    save(s, tmp_path / "iy")
    _rewrite(tmp_path / "iy", "rows-", blank)
    other = load(tmp_path / "iy")
    with pytest.raises(ClensError, match=r"rows-.*row 21 is not a valid index row"):
        other.records([19, 20, 21, 22])


def test_reopening_an_index_does_not_read_its_vectors_again_but_a_change_is_caught(tmp_path, monkeypatch):
    """With the embedding cache's memo the vectors file is hashed once, then trusted while its size, mtime,
    ctime and inode stay; an edit (which changes ctime) is hashed and refused."""
    from cl_core import actions
    from cl_core.embed import cache as cache_mod

    save(index_of(clustered(300, 4), [Modality.IMAGE] * 300), tmp_path / "ix")
    cache = actions.EmbeddingCache(tmp_path / "cache")
    hashed: list[str] = []
    real = cache_mod.file_sha256
    monkeypatch.setattr(cache_mod, "file_sha256", lambda p: hashed.append(p.name) or real(p))
    load(tmp_path / "ix", memo=cache)
    load(tmp_path / "ix", memo=cache)
    assert len([n for n in hashed if n.startswith("vectors-")]) == 1
    vectors = next((tmp_path / "ix").glob("vectors-*.npy"))
    blob = bytearray(vectors.read_bytes())
    blob[-1] ^= 0xFF
    vectors.write_bytes(bytes(blob))
    with pytest.raises(IndexFileError, match="checksum"):
        load(tmp_path / "ix", memo=cache)
    cache.close()


def test_reported_recall_holds_for_held_out_queries():
    """The build reports agreement with exact search measured on gallery items left out of their own
    results; queries the index has never seen (same distribution) must get about the same figure."""
    both = clustered(6400, 11, clusters=60)
    x, held = both[:6000], both[6000:]
    s = index_of(x, [Modality.IMAGE] * len(x), "hnsw")
    part = s.parts[Modality.IMAGE]
    assert part.recall_at_10 is not None and part.recall_at_10 >= kinds.RECALL_TARGET
    found = s.search_part(Modality.IMAGE, held, 10)[1]
    assert kinds.recall_at(found, kinds.exact_topk(held, x, 10)) >= part.recall_at_10 - 0.03
    assert "left out of its own results" in s.manifest["recall_measured"]


def test_left_out_rows_never_count_as_their_own_neighbours():
    x = clustered(300, 12)
    own = np.arange(5)
    truth = kinds.exact_topk(x[:5], x, 10, own)
    assert truth.shape == (5, 10) and not any(i in row for i, row in zip(own, truth, strict=True))
    np.testing.assert_array_equal(truth, kinds.exact_topk(x[:5], x, 11)[:, 1:])  # itself was the first


def test_rows_the_recall_is_measured_with_are_left_out_of_training_and_get_no_wider_search():
    """The rows a build measures its recall with train none of its quantisers (a small part, where they would
    be most of it, trains on all), and a search for k plus a spare slot (for the query's own row) scans the
    candidates of a search for k plus one, not those of k + 1: otherwise the recall reported overstates what
    a user's queries get."""
    rng = np.random.default_rng(3)
    held = np.sort(rng.choice(2000, size=150, replace=False))
    rows = kinds.training_rows(2000, 1000, rng, held)
    assert len(rows) == 1000 and not set(rows.tolist()) & set(held.tolist())
    assert np.array_equal(kinds.training_rows(2000, 5000, rng, held), np.setdiff1d(np.arange(2000), held))
    assert len(kinds.training_rows(1000, 5000, rng, held)) == 1000  # 15% of the rows: all of them train
    x = (rng.standard_normal((2000, 32)) + rng.standard_normal((1, 32))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    built = kinds.build("binary", x, held=held)
    built.params.update(rerank=10, exact=3)
    seen: list[int] = []

    def rerank(q, cand, k):
        seen.append(int((cand[0] >= 0).sum()))
        return kinds.exact_rerank(x)(q, cand, k)

    scores, pos = kinds.search(built, x[:1], 10, rerank, spare=1)
    assert pos.shape == (1, 11) and seen == [10 * 3 + 1]
    kinds.search(built, x[:1], 11, rerank)
    assert seen[-1] == 11 * 3  # what searching k + 1 would have read
