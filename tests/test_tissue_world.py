"""The synthetic tissue world follows its written causal model."""

from __future__ import annotations

import numpy as np

from cl_core.demo.worlds import tissue as ts


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


def _case(**changes) -> ts.Case:
    from dataclasses import replace

    base = ts.Case("lung", "III", 60, 0.5, 0.3, 0.4, 0.5, False, 2, False)
    return replace(base, **changes)


def _cells_of(case: ts.Case, seed: int = 0) -> tuple[list[ts.Cell], np.ndarray, np.ndarray, np.random.Generator]:
    rng = np.random.default_rng(seed)
    tissue = ts._architecture(case.organ, rng)
    centres = np.array([[24.0, 24.0], [40.0, 40.0]])
    dead = ts._necrotic_zone(case, centres, rng)
    return ts._cells(case, tissue, rng, centres, dead), tissue, dead, rng


def test_grade_sets_nuclear_pleomorphism():
    """Grade 3 tumour nuclei vary in size far more than grade 1 ones, in H&E and in DAPI."""
    spread = {}
    for grade in (1, 3):
        cells = _cells_of(_case(grade=grade))[0]
        spread[grade] = np.std([c.size for c in cells if c.kind == "tumour"])
    assert spread[3] > 3 * spread[1]
    assert all(c.size == 1.0 for c in _cells_of(_case(grade=3))[0] if c.kind != "tumour")


def test_necrosis_is_a_dead_zone_seen_in_both_pictures():
    cells, tissue, dead, rng = _cells_of(_case(necrosis=True))
    assert dead.sum() > 50 and not _cells_of(_case(necrosis=False))[2].any()
    assert not any(dead[int(round(c.y)), int(round(c.x))] for c in cells)  # no intact cell in it
    fragments = ts._fragments(dead, rng)
    he = np.asarray(ts.render_he(cells, tissue, rng, dead, fragments), dtype=float)
    mif = ts.render_mif(cells, tissue, rng, dead, fragments)
    inner = dead & (tissue > 0)
    live = (tissue > 0) & ~dead
    # eosinophilic debris: redder than green (eosin absorbs green) more than living tissue on average
    assert (he[..., 0] - he[..., 1])[inner].mean() > (he[..., 0] - he[..., 1])[live].mean()
    assert mif[1][inner].mean() > mif[1][tissue == 0].mean()  # necrotic debris autofluoresces
    assert fragments[dead].sum() > 10 * max(fragments[~dead].sum(), 1e-3)


def test_nuclei_keep_their_distance():
    """Nuclei do not pile up, so a model (or a pathologist) can count them."""
    cells = _cells_of(_case(cellularity=0.8))[0]
    xy = np.array([(c.x, c.y) for c in cells])
    d = np.hypot(*(xy[:, None] - xy[None]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    assert (d.min(1) < ts.MIN_DISTANCE).mean() < 0.1


def test_cycling_tumour_nuclei_are_hyperchromatic():
    cells, tissue, dead, rng = _cells_of(_case(ki67=0.5))
    he = np.asarray(ts.render_he(cells, tissue, rng), dtype=float).sum(-1)
    tumour = [c for c in cells if c.kind == "tumour"]
    at = lambda group: np.mean([he[int(round(c.y)), int(round(c.x))] for c in group])  # noqa: E731
    assert at([c for c in tumour if c.ki67]) < at([c for c in tumour if not c.ki67]) - 30


def test_text_states_grade_and_necrosis():
    for i in range(30):
        s = ts.make_sample(6, i)
        assert f"grade {s.case.grade}" in s.text or ts.GRADE_WORDS[s.case.grade] in s.text
        assert ("necrosis present" in s.text or "focal necrosis" in s.text) == s.case.necrosis
        assert ("no necrosis" in s.text or "necrosis absent" in s.text) == (not s.case.necrosis)


def test_a_world_made_in_worker_processes_is_the_same_world(monkeypatch):
    import cl_core.demo.worlds as worlds

    monkeypatch.setattr(worlds, "PARALLEL_FROM", 10)
    monkeypatch.setattr(worlds, "CHUNK", 5)
    parallel, serial = ts.make_world(8, 12, workers=2), ts.make_world(8, 12, workers=1)
    assert [s.text for s in parallel] == [s.text for s in serial]
    assert all((a.mif == b.mif).all() and a.he.tobytes() == b.he.tobytes() for a, b in zip(parallel, serial, strict=True))
