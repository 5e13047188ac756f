"""A file's channels matched to the model's by name: case and separators aside, common aliases of a marker
(PanCK / pan-cytokeratin), extra channels ignored and listed, a missing one named with the names tried — in the
preprocessing, the composites, and `clens tissue channels`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

from cl_core.cli import main
from cl_core.errors import ReaderError
from cl_core.modality import ChannelStack, Item, Modality
from cl_core.models.preprocess import StackPreprocess
from cl_core.readers.channels import aliases, canonical, match_channels
from cl_core.readers.thumbnail import channels_by_name


def test_names_match_across_case_separators_and_aliases():
    assert canonical("Pan-Cytokeratin") == canonical("panCK") == canonical("PAN_CK")
    assert canonical("CD274") == canonical("PD-L1") and canonical("MKI67") == canonical("Ki-67")
    assert canonical("CD8") != canonical("CD68") and canonical("mystery") == "mystery"
    got = match_channels(["DAPI", "panCK", "PD-L1", "Ki67"],
                         ["Hoechst 33342", "CD3", "pan-cytokeratin", "pdl1", "Ki67", "Autofluorescence"])
    assert got.indices == (0, 2, 3, 4) and not got.missing
    assert ("pan-cytokeratin", "panCK") in got.renamed and ("Hoechst 33342", "DAPI") in got.renamed
    assert ("Ki67", "Ki67") not in got.renamed  # its own name, not an alias
    assert got.extra == ("CD3", "Autofluorescence")
    lacking = match_channels(["DAPI", "CD68"], ["DAPI", "CD8"])
    assert lacking.missing == ("CD68",) and lacking.indices == () and "missing: CD68" in lacking.describe()
    # an exact name wins over an alias of the same marker
    assert match_channels(["panCK"], ["cytokeratin", "panCK"]).indices == (1,)
    assert "pan-cytokeratin" in aliases("panCK")


def test_the_preprocessing_picks_channels_by_alias_and_names_what_is_missing():
    pre = StackPreprocess(size=8, channels=("DAPI", "panCK", "CD8"), scale="none")
    pixels = np.stack([np.full((8, 8), v, np.float32) for v in (1, 2, 3, 4)])
    item = Item("slide.ome.tif", Modality.MULTICHANNEL, ChannelStack(pixels, ("CD8a", "extra", "Hoechst", "PanCK")))
    out = pre(item)
    assert [float(out[c, 0, 0]) for c in range(3)] == [3.0, 4.0, 1.0]
    short = Item("short.tif", Modality.MULTICHANNEL, ChannelStack(pixels[:2], ("DAPI", "CD3")))
    with pytest.raises(ReaderError, match=r"lacks channel\(s\) panCK, CD8 the model needs \(file has: DAPI, CD3; .*aliases"):
        pre(short)
    assert channels_by_name(item.data, ["pan-cytokeratin", "CD8", "DNA"]) == (3, 0, 2)


def test_clens_tissue_channels_lists_renamed_ignored_and_missing(capsys, native_dir, tmp_path):
    from tests.tiny_models import native_config

    model = native_dir
    expected = native_config()["towers"]["multichannel"]["preprocess"]["channels"]
    names = [("Pan-Cytokeratin" if canonical(n) == canonical("panCK") else n.upper()) for n in expected]
    good = tmp_path / "good.ome.tif"
    tifffile.imwrite(good, np.zeros((len(names) + 1, 16, 16), np.uint16),
                     metadata={"axes": "CYX", "Channel": {"Name": [*names, "Autofluorescence"]}})
    bad = tmp_path / "bad.npy"
    np.save(bad, np.zeros((1, 16, 16), np.float32))
    (tmp_path / "bad.npy.channels.json").write_text(json.dumps(["Vimentin"]))
    assert main(["tissue", "channels", str(model), str(good), str(bad), "--json"]) == 3
    out = {Path(r["file"]).name: r for r in json.loads(capsys.readouterr().out)}
    assert out["good.ome.tif"]["readable"] and out["good.ome.tif"]["ignored"] == ["Autofluorescence"]
    assert not out["bad.npy"]["readable"] and out["bad.npy"]["missing"] == expected
    assert main(["tissue", "channels", str(model), str(good)]) == 0
    assert "ignored (the model does not read them): Autofluorescence" in capsys.readouterr().out


def test_each_channel_is_shown_in_its_colour_between_its_limits():
    from cl_core.readers.thumbnail import ChannelLook, blend, render

    pixels = np.zeros((3, 4, 4), np.float32)
    pixels[0] = 100.0  # DAPI everywhere at 100
    pixels[1, :2] = 1000.0  # panCK in the top half
    stack = ChannelStack(pixels, ("DAPI", "panCK", "CD8"))
    looks = [ChannelLook("Hoechst", "blue", 0, 200), ChannelLook("pan-cytokeratin", "yellow", 0, 1000)]
    rgb = blend(stack, looks)
    assert tuple(rgb[0, 0]) == (255, 255, 127) and tuple(rgb[3, 0]) == (0, 0, 127)  # added as light, clipped
    assert tuple(blend(stack, [ChannelLook("CD68", "red")])[0, 0]) == (0, 0, 0)  # a channel it lacks: dark
    for look in (*looks, ChannelLook("CD8", "#10ff80")):
        assert ChannelLook.parse(look.spec()) == look
    assert ChannelLook.parse("CD8", 1) == ChannelLook("CD8", "green")  # a plain name: the RGB pickers
    with pytest.raises(ValueError, match="unknown colour"):
        ChannelLook("CD8", "mauve").rgb()
    item = Item("s.npy", Modality.MULTICHANNEL, stack)
    picture = render(item, 4, [lk.spec() for lk in looks])
    assert picture is not None and picture.getpixel((0, 0)) == (255, 255, 127)


def test_embedding_stacks_notes_aliases_and_ignored_channels_once_per_set(capsys, native_dir, tmp_path):
    from cl_core import actions
    from cl_core.readers.channels import channel_notes

    notes = channel_notes(["DAPI", "panCK"], [("a", ["Hoechst", "panCK", "CD3"]), ("b", ["Hoechst", "panCK", "CD3"]),
                                              ("c", ["DAPI", "panCK"]), ("d", ["CD8"])])
    assert notes == [("a and 1 more with the same channels",
                      "Hoechst is read as DAPI; ignored (the model does not read them): CD3")]  # c matches; d fails
    for i in range(3):
        np.save(tmp_path / f"s{i}.npy", np.random.default_rng(i).random((4, 16, 16)).astype(np.float32))
        (tmp_path / f"s{i}.npy.channels.json").write_text(json.dumps(["DNA", "Pan-CK", "CD8", "Autofluorescence"]))
    model = actions.open_model(native_dir).model
    got = actions.embed_inputs(model, [tmp_path / f"s{i}.npy" for i in range(3)])
    assert len(got.items) == 3
    (note,) = [f for f in got.failures if f.stage == "note"]
    assert "and 2 more" in note.source and "DNA is read as DAPI" in note.reason and "Autofluorescence" in note.reason
    out = tmp_path / "v.npy"
    assert main(["embed", str(native_dir), *[str(tmp_path / f"s{i}.npy") for i in range(3)], "--out", str(out)]) == 0
    assert "note: " in capsys.readouterr().err  # said, and not a failure: the exit code stays 0


def test_an_indexed_gallery_of_stacks_notes_its_ignored_channels_and_still_exits_zero(capsys, native_dir, tmp_path):
    gallery = tmp_path / "g"
    gallery.mkdir()
    for i in range(4):
        np.save(gallery / f"s{i}.npy", np.random.default_rng(i).random((4, 16, 16)).astype(np.float32))
        (gallery / f"s{i}.npy.channels.json").write_text(json.dumps(["DAPI", "PanCK", "CD8", "Vimentin"]))
    assert main(["index", "build", str(native_dir), str(gallery), "--out", str(tmp_path / "ix"),
                 "--cache", str(tmp_path / "cache")]) == 0
    err = capsys.readouterr().err
    assert err.count("note: ") == 1 and "and 3 more" in err and "Vimentin" in err and "0 failed" in err
