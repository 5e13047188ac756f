"""Files that are not files: a FIFO, a device, a socket given as an input or named in a manifest are refused at
once with what they are (never read, never waited on), and the rest of the job goes on; UTF-16/32 text with a
byte-order mark is text, not an MP3."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import numpy as np
import pytest

from cl_core import actions
from cl_core.errors import ReaderError
from cl_core.readers import read_path
from cl_core.readers.sniff import sniff
from media import make_gallery


@pytest.fixture
def fifo(tmp_path):
    path = tmp_path / "pipe.png"
    os.mkfifo(path)
    return path


def test_a_fifo_is_refused_without_waiting(fifo):
    with pytest.raises(ReaderError, match="FIFO"):
        read_path(fifo)  # no writer exists: reading it would block forever


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/null"])
def test_a_device_is_refused(device):
    if not os.path.exists(device):
        pytest.skip(f"{device} missing here")
    with pytest.raises(ReaderError, match="character device"):
        read_path(device)


def test_a_socket_is_refused(tmp_path):
    path = tmp_path / "s.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(path))
        with pytest.raises(ReaderError, match="socket"):
            read_path(path)


def test_a_gallery_naming_a_fifo_and_dev_zero_embeds_the_rest(native_model, tmp_path, fifo):
    folder = make_gallery(tmp_path / "g", n=4)
    manifest = folder / "manifest.csv"
    manifest.write_text(manifest.read_text() + f"bad1,{fifo},,,,\nbad2,/dev/zero,,,,\n", encoding="utf-8")
    cache = actions.EmbeddingCache(tmp_path / "cache")
    emb = actions.embed_source(native_model, manifest, cache)  # outside the manifest's folder: not even opened
    reasons = {f.source: f.reason for f in emb.failures}
    assert "outside its folder" in reasons[str(fifo)] and "outside its folder" in reasons["/dev/zero"]
    assert len(emb.rows) == 12  # 4 images, 4 sounds, 4 captions
    emb = actions.embed_source(native_model, manifest, cache, allow_outside=True)  # allowed: refused by kind
    reasons = {f.source: f.reason for f in emb.failures}
    assert "FIFO" in reasons[str(fifo)] and "character device" in reasons["/dev/zero"]
    assert len(emb.rows) == 12
    cache.close()


def test_clens_embed_of_a_fifo_exits_with_one_line(native_dir, media_dir, fifo, tmp_path):
    out = subprocess.run([sys.executable, "-m", "cl_core", "embed", str(native_dir), str(fifo),
                          str(media_dir / "red.png"), "--out", str(tmp_path / "e.npy"), "--quiet"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 1, out.stderr
    assert "FIFO" in out.stderr and "Traceback" not in out.stderr and (tmp_path / "e.npy").is_file()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_text(tmp_path, encoding):
    path = tmp_path / "note.txt"
    path.write_bytes("a crimson disc — ünïcode".encode(encoding))
    assert sniff(path) == "text"
    [item] = read_path(path)
    assert item.data == "a crimson disc — ünïcode"


def test_a_file_name_that_is_not_utf8_is_kept_losslessly_and_printed_escaped(native_dir, tmp_path):
    folder = make_gallery(tmp_path / "g", n=3)
    odd = os.fsdecode(os.fsencode(folder) + b"/s1-\xff\xfe.png")
    os.rename(folder / "s1.png", odd)
    model = actions.open_model(native_dir).model
    cache = actions.EmbeddingCache(tmp_path / "cache")
    built = actions.build_index(model, folder, tmp_path / "idx", "flat", cache)
    assert built.index is not None and odd in [r.source for r in built.index.rows]
    assert odd in [r.source for r in actions.read_index(tmp_path / "idx").rows]  # the same name after a reload
    again = actions.embed_source(model, folder, cache)
    assert again.from_cache == len(again.rows) and not again.failures
    cache.close()
    out = subprocess.run([sys.executable, "-m", "cl_core", "project", str(tmp_path / "idx"), "--place", odd,
                          "--model", str(native_dir), "--no-cache", "--quiet"], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert out.returncode == 0, out.stderr
    assert "s1-\\udcff\\udcfe.png" in out.stdout and "Traceback" not in out.stderr


def test_a_file_rewritten_with_its_size_and_mtime_kept_is_hashed_again(tmp_path):
    cache = actions.EmbeddingCache(tmp_path / "cache")
    path = tmp_path / "a.txt"
    path.write_text("a red circle", encoding="utf-8")
    st = path.stat()
    first = cache.file_digest(path)
    path.write_text("a tan square", encoding="utf-8")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the old mtime: only ctime tells
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert cache.file_digest(path) != first
    cache.close()


def test_embedding_many_files_goes_chunk_by_chunk_in_input_order(native_model, media_dir, monkeypatch):
    from cl_core.embed import items as items_mod

    files = [media_dir / "red.png", media_dir / "tone.wav", media_dir / "truncated.png", media_dir / "red.png"]
    whole = items_mod.embed_paths(native_model, files, ["a red circle"])
    monkeypatch.setattr(items_mod, "FILE_CHUNK", 1)  # one file decoded and embedded at a time
    seen: list[int] = []
    real = items_mod.collect_items
    monkeypatch.setattr(items_mod, "collect_items", lambda p=(), *a, **k: seen.append(len(p)) or real(p, *a, **k))
    chunked = items_mod.embed_paths(native_model, files, ["a red circle"])
    assert max(seen) == 1
    assert [it.source for it in chunked.items] == [it.source for it in whole.items]
    assert np.allclose(chunked.vectors, whole.vectors, atol=1e-6)
    assert [f.source for f in chunked.failures] == [f.source for f in whole.failures]


def test_a_huge_picture_is_decoded_at_a_reduced_scale(tmp_path):
    from PIL import Image

    path = tmp_path / "big.png"
    Image.new("RGB", (9000, 300), (200, 30, 30)).save(path)
    [item] = read_path(path)
    assert max(item.data.size) <= 4096 and item.meta["size"] == (9000, 300)
    assert item.data.getpixel((10, 10)) == (200, 30, 30)


def test_editing_a_stacks_channel_sidecar_embeds_it_again(native_model, media_dir, tmp_path):
    """The sidecar naming a stack's channels is part of the item: reordering the names gives another vector,
    not the cached one; a FIFO named like a sidecar is refused, never waited on."""
    import shutil

    folder = tmp_path / "g"
    folder.mkdir()
    shutil.copy(media_dir / "stack.npy", folder / "stack.npy")
    sidecar = folder / "stack.npy.channels.txt"
    sidecar.write_text("DAPI\npanCK\nCD8\n", encoding="utf-8")
    cache = actions.EmbeddingCache(tmp_path / "cache")
    first = actions.open_gallery(native_model, folder, cache, "flat")
    assert first.embedding.embedded == 1
    again = actions.open_gallery(native_model, folder, cache, "flat")
    assert again.embedding.from_cache == 1  # nothing changed: served by the cache
    sidecar.write_text("CD8\npanCK\nDAPI\n", encoding="utf-8")  # the same planes, named the other way round
    edited = actions.open_gallery(native_model, folder, cache, "flat")
    assert edited.embedding.embedded == 1 and edited.embedding.from_cache == 0
    assert not np.allclose(edited.embedding.vectors, first.embedding.vectors, atol=1e-4)
    sidecar.unlink()
    os.mkfifo(folder / "stack.npy.channels.json")
    cache.file_digests([folder / "stack.npy"])  # returns: the FIFO is not opened for reading
    cache.close()
