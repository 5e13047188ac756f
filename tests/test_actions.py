"""One verb, one place: each verb run through the actions layer and through `clens` gives the same answer,
and the one parser routes the window's forms (`clens`, `clens MODEL`, `clens gui`) and lists every verb."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from cl_core import actions
from cl_core.cli import VERBS, main
from cl_core.demo.galleries import DEMOS
from media import make_gallery


def run_cli(capsys, *args) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def gallery(tmp_path):
    return make_gallery(tmp_path / "g", n=8) / "manifest.csv"


def test_info_is_the_action_result(capsys, native_dir):
    opened = actions.open_model(native_dir)
    code, out, _ = run_cli(capsys, "info", native_dir, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["fingerprint"] == opened.fingerprint and len(opened.fingerprint) == 32
    assert {k: shown[k] for k in ("name", "format", "embed_dim", "modalities")} == \
        {k: opened.info[k] for k in ("name", "format", "embed_dim", "modalities")}


def test_embed_writes_what_the_action_returns(capsys, native_dir, media_dir, tmp_path):
    model = actions.open_model(native_dir).model
    direct = actions.embed_inputs(model, [media_dir / "red.png", media_dir / "tone.wav"], ["a red circle"])
    code, _, err = run_cli(capsys, "embed", native_dir, media_dir / "red.png", media_dir / "tone.wav",
                           "--text", "a red circle", "--out", tmp_path / "e.npy", "--quiet")
    assert code == 0, err
    np.testing.assert_allclose(np.load(tmp_path / "e.npy"), direct.vectors, atol=1e-6)
    rows = json.loads((tmp_path / "e.json").read_text())["rows"]
    assert [r["source"] for r in rows] == [it.source for it in direct.items]
    assert direct.model_fingerprint == actions.open_model(native_dir).fingerprint


def test_index_search_eval_diagnose_agree(capsys, native_dir, gallery, tmp_path):
    cache = actions.EmbeddingCache(tmp_path / "cache")
    model = actions.open_model(native_dir, cache=cache).model
    built = actions.build_index(model, gallery, tmp_path / "idx-a", "flat", cache)
    assert built.out is not None and built.index is not None and not built.embedding.failures
    code, out, err = run_cli(capsys, "index", "build", native_dir, gallery, "--out", tmp_path / "idx-b",
                             "--kind", "flat", "--cache", tmp_path / "cache", "--json", "--quiet")
    assert code == 0, err
    assert json.loads(out)["count"] == len(built.index.rows) == 24

    request = actions.SearchRequest(texts=("caption number 3",), k=5)
    direct = actions.search(model, built.index, request)
    code, out, err = run_cli(capsys, "search", tmp_path / "idx-b", "--text", "caption number 3", "-k", "5", "--all",
                             "--model", native_dir, "--cache", tmp_path / "cache", "--json")
    assert code == 0, err
    hits = json.loads(out)["hits"]
    assert [(h["source"], h["modality"]) for h in hits] == [(h.source, h.modality) for h in direct.hits]
    np.testing.assert_allclose([h["score"] for h in hits], [h.score for h in direct.hits], atol=1e-5)

    ev = actions.evaluate(model, gallery, cache=cache)
    code, out, _ = run_cli(capsys, "eval", native_dir, gallery, "--cache", tmp_path / "cache", "--json", "--quiet")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(ev.to_dict()))

    dg = actions.diagnose(model, gallery, 3, cache=cache)
    code, out, _ = run_cli(capsys, "diagnose", native_dir, gallery, "-k", "3", "--cache", tmp_path / "cache",
                           "--json", "--quiet")
    assert code == 0 and json.loads(out) == json.loads(json.dumps(dg.report))
    cache.close()


def test_search_takes_many_queries_in_one_process(capsys, native_dir, gallery, tmp_path):
    model = actions.open_model(native_dir).model
    built = actions.build_index(model, gallery, tmp_path / "idx", "flat")
    queries = tmp_path / "q.txt"
    queries.write_text("caption number 1\n\ncaption number 6\n", encoding="utf-8")
    code, out, err = run_cli(capsys, "search", tmp_path / "idx", "--queries", queries, "--target-modality", "text",
                             "-k", "1", "--model", native_dir, "--no-cache", "--json")
    assert code == 0, err
    blocks = json.loads(out)
    assert [b["hits"][0]["text"] for b in blocks] == ["caption number 1", "caption number 6"]
    assert built.index is not None


def test_demo_verb_lists_what_the_action_writes(capsys):
    got = actions.demo_files("shapes_sounds")
    code, out, _ = run_cli(capsys, "demo")
    assert code == 0 and out.split() == [str(got.model), *map(str, got.files)]


@pytest.mark.parametrize("bad", [["-k", "0"], ["--min-z", "nan"], ["--weight", "inf"], ["-k", "many"]])
def test_bad_search_arguments_are_one_line_not_a_traceback(capsys, tmp_path, bad):
    with pytest.raises(SystemExit) as exit_:
        main(["search", str(tmp_path), "--text", "x", *bad])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err and err.strip().splitlines()[-1].startswith("clens search")


def test_embed_out_must_be_a_file(capsys, native_dir, tmp_path):
    code, _, err = run_cli(capsys, "embed", native_dir, "--text", "x", "--out", tmp_path)
    assert code == 2 and "is a folder" in err and "Traceback" not in err


def test_one_parser_routes_the_window_and_lists_every_verb(capsys, native_dir):
    seen = []

    def window(args):
        seen.append((args.model, list(args.inputs), args.empty, args.gallery))
        return 0

    assert main([], gui=window) == 0
    assert main([str(native_dir), "a.png"], gui=window) == 0
    assert main(["gui", "--empty"], gui=window) == 0
    assert main(["--gallery", "demo:tissue"], gui=window) == 0
    assert seen == [(None, [], False, None), (str(native_dir), ["a.png"], False, None), (None, [], True, None),
                    (None, [], False, "demo:tissue")]
    with pytest.raises(SystemExit):
        main(["--help"])
    helptext = capsys.readouterr().out
    assert all(verb in helptext for verb in VERBS)


def test_python_m_cl_core_is_clens(tmp_path):
    out = subprocess.run([sys.executable, "-m", "cl_core", "--help"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "diagnose" in out.stdout and "gui" in out.stdout
    listed = subprocess.run([sys.executable, "-m", "cl_core", "demo", "tissue"], capture_output=True, text=True,
                            timeout=300)
    assert listed.returncode == 0 and listed.stdout.splitlines()[0] == str(DEMOS["tissue"].model)


def test_a_bad_template_is_refused_before_any_work(capsys, native_dir, gallery):
    for bad in ("a photo of {0} {1}", "{name}", "no slot"):
        code, _, err = run_cli(capsys, "eval", native_dir, gallery, "--template", bad, "--no-cache", "--quiet")
        assert code == 3 and "template" in err and "Traceback" not in err


def test_progress_on_a_file_is_plain_lines_at_a_modest_rate():
    import io

    from cl_core.cli.progress import ProgressPrinter

    stream = io.StringIO()
    with ProgressPrinter(stream=stream) as progress:
        for i in range(1, 5001):
            progress.state.set_progress(i, 5000, "embedding image")
        progress.state.set_progress(3, 3, "indexing")
    lines = stream.getvalue().splitlines()
    assert "\r" not in stream.getvalue()
    assert lines[0] == "embedding image 1/5000" and lines[-1] == "indexing 3/3"
    assert "embedding image 5000/5000" in lines and len(lines) <= 4


def test_every_exported_verb_is_itself_even_after_its_module_is_imported():
    import importlib
    import types

    for module in actions._EXPORTS:
        importlib.import_module(module)  # importing a submodule must not hide an exported name
    for name in actions.__all__:
        assert not isinstance(getattr(actions, name), types.ModuleType), name


def test_doctor_reports_versions_devices_cache_and_what_is_missing(capsys, tmp_path):
    (tmp_path / "embeddings").mkdir()
    (tmp_path / "embeddings" / "x.bin").write_bytes(b"\0" * 1000)
    report = actions.doctor(tmp_path)
    assert report["packages"]["torch"] and report["devices"]["torch_build"]
    assert report["cache"] == {"folder": str(tmp_path), "bytes": 1000}
    assert all({"what", "for", "fix"} <= set(m) for m in report["missing"])
    code, out, _ = run_cli(capsys, "doctor", "--cache", tmp_path)
    assert code == 0 and "torch build" in out and "cache:" in out


def test_a_model_trained_with_symile_fuses_queries_by_symile_unless_told(capsys, native_dir, gallery, tmp_path):
    import shutil

    from cl_core.choices import OBJECTIVE_NAMES
    from cl_core.objectives import OBJECTIVES

    assert OBJECTIVE_NAMES == tuple(OBJECTIVES)  # the names a config may record are the trainer's
    folder = tmp_path / "symile-model"
    shutil.copytree(native_dir, folder)
    config = json.loads((folder / "clens_config.json").read_text())
    (folder / "clens_config.json").write_text(json.dumps(config | {"objective": "symile"}))
    model = actions.open_model(folder).model
    assert model.objective == "symile" and actions.open_model(native_dir).model.objective is None
    index = actions.build_index(model, gallery, tmp_path / "idx", "flat").index
    assert index is not None
    two = actions.SearchRequest(texts=("caption number 3",), files=(str(gallery.parent / "s3.wav"),),
                                k=5)
    got = actions.search(model, index, two)
    assert got.request.fusion == "symile" and "trained with the symile objective" in got.fusion_note
    told = actions.search(model, index, actions.SearchRequest(texts=two.texts, files=two.files, k=5, fusion="symile"))
    assert [h.row for h in got.hits] == [h.row for h in told.hits]
    assert actions.search(model, index, actions.SearchRequest(texts=two.texts, files=two.files, k=5,
                                                              fusion="mean")).request.fusion == "mean"
    one = actions.search(model, index, actions.SearchRequest(texts=("caption number 3",), k=5))
    assert one.request.fusion == "mean"  # one item has nothing to fuse

    code, out, err = run_cli(capsys, "search", tmp_path / "idx", "--text", "caption number 3", "--query",
                             gallery.parent / "s3.wav", "--model", folder, "--no-cache", "--all", "--json")
    assert code == 0, err
    assert json.loads(out)["fusion"] == "symile"
