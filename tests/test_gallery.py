"""Gallery sources and the cached gallery embedding job (cache hits, changes, quarantine, cancel/resume)."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from PIL import Image

from cl_core.embed.cache import EmbeddingCache
from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.gallery import embed_gallery
from cl_core.embed.sources import GalleryError, open_source, read_manifest
from cl_core.errors import ClensError
from cl_core.modality import Modality
from cl_core.task import TaskState
from media import make_gallery


def test_manifest_groups_rows_by_id_with_labels_and_metadata(tmp_path):
    g = read_manifest(make_gallery(tmp_path / "g") / "manifest.csv")
    assert len(g.entries) == 18
    s1 = [e for e in g.entries if e.sample_id == "s1"]
    assert [e.modality for e in s1] == [Modality.IMAGE, Modality.AUDIO, Modality.TEXT]
    assert s1[0].path == tmp_path / "g" / "s1.png" and s1[2].text == "caption number 1"
    assert {e.label for e in s1} == {"cat"} and s1[0].meta == {"site": "site1", "depth": "0.5"}


def test_parquet_manifest_reads_like_csv(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = make_gallery(tmp_path / "g")
    csv_g = read_manifest(folder / "manifest.csv")
    rows = [line.split(",") for line in (folder / "manifest.csv").read_text().splitlines()]
    table = pa.table({name: [r[i] for r in rows[1:]] for i, name in enumerate(rows[0])})
    pq.write_table(table, folder / "manifest.parquet")
    pq_g = open_source(folder / "manifest.parquet")
    assert [(e.sample_id, e.path, e.text, e.label) for e in pq_g.entries] == \
        [(e.sample_id, e.path, e.text, e.label) for e in csv_g.entries]


def test_long_manifest_with_path_and_modality_columns(tmp_path):
    folder = make_gallery(tmp_path / "g", n=2)
    (folder / "long.csv").write_text("sample,path,modality\na,s0.png,image\na,s0.wav,\nb,s1.png,multichannel\n")
    g = open_source(folder / "long.csv")
    assert [(e.sample_id, e.path.name, e.modality) for e in g.entries] == [
        ("a", "s0.png", Modality.IMAGE), ("a", "s0.wav", None), ("b", "s1.png", Modality.MULTICHANNEL)]


@pytest.mark.parametrize(("content", "reason"), [
    (b"name,age\nx,1\n", "no file or text column"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (b"", "empty"),
])
def test_bad_manifests_are_named_with_the_reason(tmp_path, content, reason):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(content)
    with pytest.raises(GalleryError, match=reason) as err:
        open_source(bad)
    assert str(bad) in str(err.value)


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    bad = tmp_path / "m.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(GalleryError, match="Parquet"):
        open_source(bad)


def test_folder_pairs_files_by_stem_and_skips_hidden_and_sidecars(tmp_path):
    folder = make_gallery(tmp_path / "g", n=2)
    (folder / ".hidden.png").write_bytes((folder / "s0.png").read_bytes())
    (folder / "s0.npy.channels.txt").write_text("DAPI\n")
    g = open_source(folder)
    names = [e.path.name for e in g.entries]
    assert ".hidden.png" not in names and "s0.npy.channels.txt" not in names
    assert {e.sample_id for e in g.entries if e.path.name.startswith("s0.")} == {"s0"}


def test_demo_source_has_labels_and_three_modalities():
    g = open_source("demo:shapes_sounds")
    assert {e.modality for e in g.entries} == {Modality.IMAGE, Modality.AUDIO, Modality.TEXT}
    assert all(e.label for e in g.entries)
    with pytest.raises(GalleryError, match="no such demo"):
        open_source("demo:nope")


def test_second_run_is_served_by_the_cache_and_a_changed_file_is_re_embedded(native_model, tmp_path):
    folder = make_gallery(tmp_path / "g")
    cache = EmbeddingCache(tmp_path / "cache")
    gallery = open_source(folder / "manifest.csv")
    with DecodePool() as pool:
        first = embed_gallery(native_model, gallery, cache, pool=pool)
        assert first.embedded == 18 and first.from_cache == 0 and not first.failures
        again = embed_gallery(native_model, gallery, cache, pool=pool)
        assert again.embedded == 0 and again.from_cache == 18
        np.testing.assert_array_equal(again.vectors, first.vectors)
        Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(folder / "s2.png")
        changed = embed_gallery(native_model, gallery, cache, pool=pool)
    assert changed.embedded == 1 and changed.from_cache == 17
    row = next(i for i, r in enumerate(changed.rows) if r.source.endswith("s2.png"))
    assert not np.allclose(changed.vectors[row], first.vectors[row])
    cache.close()


def test_moved_gallery_still_hits_and_another_model_misses(native_model, native_dir, tmp_path):
    import tiny_models
    from cl_core.models.open import open_checkpoint

    folder = make_gallery(tmp_path / "g", n=3)
    cache = EmbeddingCache(tmp_path / "cache")
    embed_gallery(native_model, open_source(folder / "manifest.csv"), cache)
    moved = tmp_path / "moved"
    shutil.copytree(folder, moved)
    assert embed_gallery(native_model, open_source(moved / "manifest.csv"), cache).from_cache == 9
    other = open_checkpoint(tiny_models.make_native(tmp_path / "other", seed=1))
    assert embed_gallery(other, open_source(moved / "manifest.csv"), cache).from_cache == 0


def test_bad_files_are_listed_and_nan_rows_quarantined_and_counted_again(native_model, tmp_path, monkeypatch):
    import torch

    folder = make_gallery(tmp_path / "g", n=3)
    (folder / "s1.wav").write_bytes(b"not audio at all" * 10)
    (folder / "manifest.csv").write_text((folder / "manifest.csv").read_text().replace("caption number 2", "nan-me"))
    real = native_model.forward

    def poisoned(modality, inputs):
        out = real(modality, inputs)
        if modality is Modality.TEXT:
            out = out.clone()
            out[-1] = float("nan")  # the last text of a batch: "nan-me" comes last in the gallery
        return out

    monkeypatch.setattr(native_model, "forward", poisoned)
    cache = EmbeddingCache(tmp_path / "cache")
    gallery = open_source(folder / "manifest.csv")
    res = embed_gallery(native_model, gallery, cache, batch_size=8)
    assert {(f.stage, f.source.rsplit("/", 1)[-1]) for f in res.failures} == {("read", "s1.wav"),
                                                                                ("quarantine", "text:nan-me")}
    assert len(res.rows) == 7 and np.isfinite(res.vectors).all()
    again = embed_gallery(native_model, gallery, cache, batch_size=8)
    assert [f.stage for f in again.quarantined] == ["quarantine"] and again.embedded == 0
    assert torch.isfinite(torch.from_numpy(np.asarray(again.vectors))).all()


def test_cancelled_job_keeps_its_work_and_a_rerun_continues(native_model, tmp_path):
    folder = make_gallery(tmp_path / "g", n=10)
    cache = EmbeddingCache(tmp_path / "cache")
    gallery = open_source(folder / "manifest.csv")
    state = TaskState()

    def cancel_midway(p):
        if p.text.startswith("embedding s") and p.done >= 18:
            state.cancel()

    state._on_progress = cancel_midway
    part = embed_gallery(native_model, gallery, cache, state, batch_size=4, flush_rows=4)
    assert part.cancelled and 0 < len(part.rows) < 30
    rest = embed_gallery(native_model, gallery, cache, batch_size=4)
    assert not rest.cancelled and len(rest.rows) == 30
    assert rest.from_cache >= len(part.rows) - 4 and rest.embedded == 30 - rest.from_cache
    full = embed_gallery(native_model, gallery, None, batch_size=4)
    np.testing.assert_allclose(rest.vectors, full.vectors, atol=1e-5)


def test_file_digest_is_memoised_until_the_file_changes(tmp_path):
    cache = EmbeddingCache(tmp_path / "cache")
    f = tmp_path / "a.txt"
    f.write_text("one")
    d1 = cache.file_digest(f)
    assert cache.file_digest(f) == d1
    f.write_text("two")
    os.utime(f, ns=(1, 1))
    assert cache.file_digest(f) != d1


def test_file_digests_in_bulk_hash_only_new_files_and_name_missing_ones(tmp_path, monkeypatch):
    import cl_core.embed.cache as cache_mod

    cache = EmbeddingCache(tmp_path / "cache")
    files = [tmp_path / f"f{i}.bin" for i in range(5)]
    for i, f in enumerate(files):
        f.write_bytes(bytes([i]) * 100)
    hashed = []
    real = cache_mod.file_sha256
    monkeypatch.setattr(cache_mod, "file_sha256", lambda p: hashed.append(p.name) or real(p))
    first = cache.file_digests([*files, tmp_path / "missing.bin"])
    assert len(set(first[:5])) == 5 and isinstance(first[5], FileNotFoundError)
    assert sorted(hashed) == sorted(f.name for f in files)
    hashed.clear()
    files[2].write_bytes(b"changed")
    assert cache.file_digests(files)[:2] == first[:2] and hashed == ["f2.bin"]
    cache.close()
    hashed.clear()
    reopened = EmbeddingCache(tmp_path / "cache")
    assert reopened.file_digests(files[:2]) == first[:2] and hashed == []  # the memo was committed
    reopened.close()


def test_items_prepared_in_the_workers_embed_as_in_process(native_model, tmp_path):
    """Preprocessing moved into the decoder processes changes where it runs, not what comes out."""
    from cl_core.embed.items import embed_paths

    folder = make_gallery(tmp_path / "g", n=4)
    gallery = open_source(folder / "manifest.csv")
    with DecodePool() as pool:
        job = embed_gallery(native_model, gallery, None, pool=pool)
    files = [r for r in job.rows if not r.source.startswith("text:")]
    assert {r.modality for r in files} == {Modality.IMAGE, Modality.AUDIO}
    direct = embed_paths(native_model, [r.source for r in files])
    assert not direct.failures
    rows = [i for i, r in enumerate(job.rows) if not r.source.startswith("text:")]
    np.testing.assert_allclose(job.vectors[rows], direct.vectors, atol=1e-6)


def test_preparation_names_items_it_cannot_prepare(native_model):
    from cl_core.embed.preparation import Preparation, rebuild
    from cl_core.modality import ChannelStack, Item

    prep = Preparation.of(native_model)
    assert set(prep.preparers) == {Modality.IMAGE, Modality.AUDIO, Modality.MULTICHANNEL}  # text: per batch
    image = Item("a.png", Modality.IMAGE, Image.fromarray(np.full((40, 30, 3), 200, np.uint8)))
    stack = Item("b.ome.tif", Modality.MULTICHANNEL, ChannelStack(np.zeros((4, 8, 8), np.float32), ("a", "b", "c", "d")))
    text = Item("c.txt", Modality.TEXT, "hello")
    items, outcomes = prep.run([image, stack, text])
    assert items[0].data is None and items[2].data == "hello"  # prepared items travel back without pixels
    expected = native_model.prepare(Modality.IMAGE, [image]).inputs["pixels"]
    np.testing.assert_array_equal(rebuild(outcomes[0]).inputs["pixels"].numpy(), expected.numpy())
    assert "lacks channel(s) DAPI, panCK, CD8" in outcomes[1] and outcomes[2] is None


def test_a_file_the_workers_cannot_prepare_is_listed_and_the_rest_embedded(native_model, tmp_path):
    import tifffile

    folder = make_gallery(tmp_path / "g", n=2)
    tifffile.imwrite(folder / "s9.ome.tif", np.ones((2, 16, 16), np.uint16), ome=True,
                     metadata={"axes": "CYX", "Channel": {"Name": ["DAPI", "Vimentin"]}})
    res = embed_gallery(native_model, open_source(folder), None)
    assert [(f.stage, f.source.rsplit("/", 1)[-1]) for f in res.failures] == [("encode", "s9.ome.tif")]
    assert "lacks channel(s) panCK, CD8" in res.failures[0].reason
    kinds = [r.modality for r in res.rows]
    assert kinds.count(Modality.IMAGE) == 2 and kinds.count(Modality.AUDIO) == 2


@pytest.mark.parametrize("kind", ["hf", "openclip"])
def test_hugging_face_and_open_clip_images_prepared_in_workers_match_encode(kind, hf_clip, openclip_dir, tmp_path):
    """Their image preprocessing (a Hugging Face processor, open_clip's transform) pickles into the workers."""
    from cl_core.embed.items import collect_items
    from cl_core.models.open import open_checkpoint

    model = open_checkpoint(hf_clip[0] if kind == "hf" else openclip_dir)
    folder = make_gallery(tmp_path / "g", n=3)
    gallery = open_source(folder / "manifest.csv")
    images = [e.path for e in gallery.entries if e.modality is Modality.IMAGE]
    with DecodePool() as pool:
        job = embed_gallery(model, gallery, None, pool=pool)  # its sounds fail: the model has no audio tower
    rows = [i for i, r in enumerate(job.rows) if r.modality is Modality.IMAGE]
    items, failures = collect_items(images, [], None)
    assert not failures and len(rows) == 3
    assert {f.source.rsplit(".", 1)[-1] for f in job.failures} == {"wav"}
    np.testing.assert_allclose(job.vectors[rows], model.encode(Modality.IMAGE, items), atol=1e-5)


def test_cache_info_and_prune_forget_one_model_and_old_files(native_model, tmp_path):
    from cl_core import actions

    folder = make_gallery(tmp_path / "g", n=4)
    cache = EmbeddingCache(tmp_path / "cache")
    first = embed_gallery(native_model, open_source(folder), cache)
    assert first.embedded == len(first.rows)
    cache.close()
    info = actions.cache_info(tmp_path / "cache")
    [(fp, usage)] = info["models"].items()
    assert fp == first.model_fingerprint and usage["items"] == len(first.rows) and usage["bytes"] > 0
    assert actions.cache_prune(tmp_path / "cache", older_than_days=1)["items"] == 0  # nothing that old
    segments = list((tmp_path / "cache" / "segments").glob("*.npy"))
    for path in segments:  # written two days ago
        os.utime(path, (path.stat().st_atime - 2 * 86_400, path.stat().st_mtime - 2 * 86_400))
    got = actions.cache_prune(tmp_path / "cache", older_than_days=1)
    assert got["items"] == len(first.rows) and not list((tmp_path / "cache" / "segments").glob("*.npy"))
    cache = EmbeddingCache(tmp_path / "cache")
    again = embed_gallery(native_model, open_source(folder), cache)
    assert again.from_cache == 0 and again.embedded == len(again.rows)  # embedded anew, nothing stale
    assert actions.cache_prune(tmp_path / "cache", model=first.model_fingerprint[:8])["items"] == len(again.rows)
    cache.close()
    with pytest.raises(ClensError, match="say what to prune"):
        actions.cache_prune(tmp_path / "cache")


def test_finished_files_reach_the_cache_every_few_seconds_not_only_every_2048_rows():
    """A slow model: a kill loses at most the last few seconds, whatever the row count."""
    from cl_core.embed.gallery import FLUSH_EVERY_S, _Staging

    now = [0.0]
    written: list[int] = []

    class Cache:
        def put(self, fp, records, complete):  # noqa: ANN001
            written.append(len(records))

    staging = _Staging(Cache(), "fp", flush_rows=2048, clock=lambda: now[0])  # type: ignore[arg-type]
    staging.add_file("d1", [object()] * 3, True)  # type: ignore[list-item]
    assert written == []
    now[0] += FLUSH_EVERY_S
    staging.add_file("d2", [object()] * 2, True)  # type: ignore[list-item]
    assert written == [5]
    staging.add_file("d3", [object()], True)  # type: ignore[list-item]
    assert written == [5]  # the clock starts again at each write


def test_a_manifest_reads_files_under_its_own_folder_unless_allowed(native_model, media_dir, tmp_path):
    """Paths in a manifest are data: one naming a file elsewhere (absolute, ../, or through a symlink) is
    refused by name and the rest go on; --allow-outside-files lets them be read."""
    import os
    import shutil

    from test_cli import clens

    from cl_core import actions

    folder = tmp_path / "g"
    folder.mkdir()
    shutil.copy(media_dir / "red.png", folder / "inside.png")
    shutil.copy(media_dir / "red.png", tmp_path / "outside.png")
    os.symlink(tmp_path / "outside.png", folder / "link.png")
    manifest = folder / "manifest.csv"
    manifest.write_text("id,image,caption\na,inside.png,one\nb,../outside.png,two\n"
                        f"c,{tmp_path / 'outside.png'},three\nd,link.png,four\n", encoding="utf-8")
    emb = actions.embed_source(native_model, manifest)
    assert sorted(r.source for r in emb.rows if r.modality.value == "image") == [str(folder / "inside.png")]
    refused = [f for f in emb.failures if "outside its folder" in f.reason]
    assert len(refused) == 3 and all("manifest.csv" in f.reason and "--allow-outside-files" in f.reason
                                     for f in refused)
    assert len([r for r in emb.rows if r.text]) == 4  # the texts of every row are kept
    allowed = actions.embed_source(native_model, manifest, allow_outside=True)
    assert len([r for r in allowed.rows if r.modality.value == "image"]) == 4 and not allowed.failures
    out = clens("index", "build", _native_dir(native_model), manifest, "--out", tmp_path / "ix", "--no-cache",
                "--quiet")
    assert out.returncode == 1 and out.stderr.count("outside its folder") == 3, out.stderr
    out = clens("index", "build", _native_dir(native_model), manifest, "--out", tmp_path / "ix", "--no-cache",
                "--quiet", "--allow-outside-files")
    assert out.returncode == 0, out.stderr


def _native_dir(model) -> str:  # noqa: ANN001
    return str(model.source)


def test_a_manifest_cell_with_a_nul_byte_is_refused_by_row(tmp_path):
    """Found by the property tests: a NUL byte in a file cell is refused with its row, the rest read."""
    from cl_core.embed.sources import read_manifest

    manifest = tmp_path / "m.csv"
    manifest.write_text("id,image,caption\na,x\x00y.png,one\nb,,two\n", encoding="utf-8")
    gallery = read_manifest(manifest)
    assert [f.reason for f in gallery.refused] == ["named by m.csv (row 2): not a file name (it holds a NUL byte)"]
    assert [e.text for e in gallery.entries] == ["one", "two"]
