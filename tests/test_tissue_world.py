"""The synthetic tissue world follows its written causal model."""

from __future__ import annotations

import numpy as np

from cl_core.worlds import tissue as ts


def test_deterministic_and_shaped():
    a, b = ts.make_sample(3, 5), ts.make_sample(3, 5)
    assert a.text == b.text and (a.mif == b.mif).all() and a.he.tobytes() == b.he.tobytes()
    assert a.mif.shape == (6, 64, 64) and a.mif.dtype == np.float32 and a.he.size == (64, 64)
    assert ts.CHANNELS == ("DAPI", "panCK", "CD8", "CD68", "PD-L1", "Ki67")


def test_stage_drives_cellularity_and_infiltration():
    rng = np.random.default_rng(0)
    early = [ts.sample_case(rng, stage="I") for _ in range(300)]
    late = [ts.sample_case(rng, stage="IV") for _ in range(300)]
    assert np.mean([c.cellularity for c in late]) > np.mean([c.cellularity for c in early]) + 0.3
    assert np.mean([c.cd8 for c in late]) < np.mean([c.cd8 for c in early]) - 0.3
    assert np.mean([c.responder for c in late]) < np.mean([c.responder for c in early])


def test_pictures_follow_the_cells():
    """More tumour -> more panCK signal and darker H&E; more CD8 infiltration -> more CD8 signal."""
    world = ts.make_world(1, 200)
    cell = np.array([s.case.cellularity for s in world])
    cd8 = np.array([s.case.cd8 for s in world])
    panck = np.array([s.mif[1].mean() for s in world])
    cd8_signal = np.array([s.mif[2].mean() for s in world])
    darkness = np.array([255 - np.asarray(s.he, dtype=float).mean() for s in world])
    assert np.corrcoef(cell, panck)[0, 1] > 0.7
    assert np.corrcoef(cd8 * (1 - cell), cd8_signal)[0, 1] > 0.6
    assert np.corrcoef(cell, darkness)[0, 1] > 0.3


def test_text_states_the_case():
    s = ts.make_sample(2, 11)
    assert f"stage {s.case.stage}".lower() in s.text.lower()
    assert str(s.case.age) in s.text
    assert ("respon" in s.text and "not" not in s.text and "non-" not in s.text and "progressed" not in s.text) \
        == s.case.responder


def test_findings_are_counted_on_the_cells_and_reported_in_the_text():
    """Scores are measured on the patch, so the text says what the pictures show."""
    for i in range(40):
        s = ts.make_sample(4, i)
        f = s.findings
        assert f"tumour cellularity about {int(round(f.cellularity * 10)) * 10}%" in s.text
        infiltrate = "sparse" if f.cd8_density < 0.1 else "moderate" if f.cd8_density < 0.25 else "dense"
        assert f"{infiltrate} CD8 T-cell infiltrate" in s.text
        assert ("Ki67 high" in s.text) == (f.ki67_index >= 0.35)
    cells = [(1, 1, "tumour", True, False), (2, 2, "tumour", False, True), (3, 3, "cd8", False, False),
             (4, 4, "stroma", False, False)]
    assert ts.measure(cells) == ts.Findings(0.5, 0.25, 0.5, 0.5)


def test_mif_shows_the_tissue_architecture():
    """Autofluorescence: empty spaces (alveoli, fat, lumens) are darker than tissue in every channel."""
    rng = np.random.default_rng(0)
    case = ts.sample_case(rng, organ="breast")
    tissue = ts._architecture(case.organ, rng)
    mif = ts.render_mif([], tissue, rng)  # no cells: only the tissue itself
    for channel in mif:
        assert channel[tissue > 0].mean() > channel[tissue == 0].mean() + 30
