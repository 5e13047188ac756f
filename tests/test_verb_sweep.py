"""Every verb with bad arguments: one message and an exit code, never a traceback (in-process, so a stray
exception would surface here as a test error instead of a line)."""

from __future__ import annotations

import pytest

from cl_core.cli import main
from media import make_gallery


@pytest.fixture(scope="module")
def places(tmp_path_factory, native_dir):
    root = tmp_path_factory.mktemp("sweep")
    gallery = make_gallery(root / "g", n=4)
    not_json = root / "bad.json"
    not_json.write_text("{nope", encoding="utf-8")
    bad_csv = root / "bad.csv"
    bad_csv.write_bytes(b"\xff\xfe\x00garbage")
    return {"root": root, "gallery": gallery, "model": native_dir, "not_json": not_json, "bad_csv": bad_csv}


CASES = [
    ["info", "{root}/nope"],
    ["info", "{not_json}"],
    ["info", "{gallery}"],
    ["embed", "{model}", "--out", "{root}"],
    ["embed", "{model}", "{root}/missing.png", "--out", "{root}/e.npy"],
    ["embed", "{model}", "--text", "x", "--out", "{root}/no/such/dir/e.npy"],
    ["embed", "{model}", "--text", "x", "--batch-size", "0", "--out", "{root}/e.npy"],
    ["embed", "{model}", "--modality", "smell", "--text", "x", "--out", "{root}/e.npy"],
    ["demo", "nope"],
    ["train", "{root}/missing.toml", "--out", "{root}/t"],
    ["train", "{not_json}", "--out", "{root}/t"],
    ["index", "build", "{model}", "{root}/missing", "--out", "{root}/i"],
    ["index", "build", "{model}", "{bad_csv}", "--out", "{root}/i", "--no-cache"],
    ["index", "build", "{model}", "{gallery}", "--out", "{root}/i2", "--kind", "ivfpq", "--no-cache"],
    ["index", "build", "{model}", "{gallery}", "--out", "{not_json}", "--no-cache"],
    ["search", "{root}/missing", "--text", "x"],
    ["search", "{gallery}", "--text", "x"],
    ["search", "{root}", "--text", "x", "-k", "0"],
    ["search", "{root}", "--text", "x", "--min-z", "nan"],
    ["search", "{root}", "--queries", "{root}/missing.txt"],
    ["search", "{root}"],
    ["project", "{root}/missing"],
    ["project", "{gallery}", "--method", "mds"],
    ["eval", "{model}", "{root}/missing.csv"],
    ["eval", "{model}", "{gallery}", "--template", "{{x}}", "--no-cache"],
    ["diagnose", "{model}", "{gallery}", "-k", "-1"],
    ["cache", "prune", "--cache", "{root}/c"],
    ["cache", "prune", "--older-than", "nan", "--cache", "{root}/c"],
    ["cache", "prune", "--older-than", "-1", "--cache", "{root}/c"],
    ["doctor", "--cache", "{not_json}", "--bogus"],
    ["nonsense-verb-that-is-a-missing-path-opens-the-gui-instead"],
]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(c[:2]) for c in CASES])
def test_bad_arguments_give_one_message_and_an_exit_code(capsys, places, case):
    argv = [part.format(**{k: str(v) for k, v in places.items()}) for part in case]
    window = []
    try:
        code = main(argv, gui=lambda args: window.append(args) or 0)
    except SystemExit as exc:  # argparse: usage errors
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    if window:  # a word that is no verb opens the window on it, which then says what is wrong with it
        return
    assert code in (1, 2, 3), err
    assert err.strip(), "a failure must say why"
