"""A decoder crash kills one worker process, not the job: the file is named, the others are read."""

from __future__ import annotations

import shutil

from cl_core.embed.decode_pool import DecodePool
from cl_core.embed.items import embed_paths
from cl_core.readers import ReadLimits


def test_crash_is_pinned_on_its_file_and_the_rest_is_read(media_dir, tmp_path):
    crash = tmp_path / "crash_me.png"
    shutil.copy(media_dir / "red.png", crash)
    files = [media_dir / "red.png", crash, media_dir / "tone.wav", media_dir / "truncated.png",
             media_dir / "caption.txt"]
    with DecodePool(workers=2, reader="crash_reader:read") as pool:
        outcomes = pool.read_many(files, None, ReadLimits())
    assert [len(items) for items, _ in outcomes] == [1, 0, 1, 0, 1]
    crashed, corrupt = outcomes[1][1], outcomes[3][1]
    assert crashed is not None and crashed.source == str(crash) and "crashed" in crashed.reason
    assert corrupt is not None and "corrupt" in corrupt.reason


def test_embedding_job_survives_a_decoder_crash(native_model, media_dir, tmp_path):
    crash = tmp_path / "crash.wav"
    shutil.copy(media_dir / "tone.wav", crash)
    with DecodePool(reader="crash_reader:read") as pool:
        res = embed_paths(native_model, [media_dir / "red.png", crash, media_dir / "tone.wav"], pool=pool)
    assert [it.source.rsplit("/", 1)[-1] for it in res.items] == ["red.png", "tone.wav"]
    assert [f.source for f in res.failures] == [str(crash)]


def test_items_decoded_in_workers_equal_in_process(media_dir):
    from cl_core.readers import read_path

    with DecodePool() as pool:
        [(items, err)] = pool.read_many([media_dir / "mif.ome.tif"], None, ReadLimits())
    assert err is None
    local = read_path(media_dir / "mif.ome.tif")[0]
    assert items[0].data.channel_names == local.data.channel_names
    assert (items[0].data.pixels == local.data.pixels).all()
