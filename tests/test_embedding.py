"""The embedding job: bad inputs are named and skipped, bad rows quarantined, cancel keeps work."""

from __future__ import annotations

import numpy as np
import pytest

from cl_core.embed.items import embed_items, embed_paths
from cl_core.modality import Item, Modality
from cl_core.session import Session
from cl_core.task import TaskState


def test_mixed_inputs_keep_order_and_name_failures(native_model, media_dir):
    files = [media_dir / n for n in ("red.png", "truncated.png", "tone.wav", "fake.eps", "mif.ome.tif",
                                     "caption.txt", "bomb.png")]
    res = embed_paths(native_model, files, texts=["a blue square"])
    assert [it.source.rsplit("/", 1)[-1] for it in res.items] == [
        "red.png", "tone.wav", "mif.ome.tif", "caption.txt", "text:a blue square"]
    assert res.vectors.shape == (5, native_model.embed_dim) and res.vectors.dtype == np.float32
    failed = {f.source.rsplit("/", 1)[-1]: f.reason for f in res.failures}
    assert set(failed) == {"truncated.png", "fake.eps", "bomb.png"}
    assert "too large" in failed["bomb.png"]
    # each row equals embedding that item alone: results do not depend on what else was in the job
    alone = native_model.encode(Modality.AUDIO, [res.items[1]])
    np.testing.assert_allclose(res.vectors[1], alone[0], atol=1e-5)


def test_item_that_breaks_its_batch_is_isolated(native_model, media_dir):
    """A stack lacking a channel the model needs fails alone; its batch mates are embedded."""
    from cl_core.readers import read_path

    good = read_path(media_dir / "mif.ome.tif")[0]
    bad = read_path(media_dir / "stack.npy")[0]
    bad.data = type(bad.data)(bad.data.pixels, ("DAPI", "CD68", "Ki67"))
    res = embed_items(native_model, [good, bad, good])
    assert len(res.items) == 2
    assert [f.source for f in res.failures] == [bad.source] and "panCK" in res.failures[0].reason


def test_nan_and_zero_rows_are_quarantined_with_reasons(native_model):
    texts = ["fine one", "makes nan", "makes zero", "fine two"]
    original = native_model.forward

    def poisoned(modality, inputs):
        out = original(modality, inputs).clone()
        out[1] = float("nan")
        out[2] = 0.0
        return out

    native_model.forward = poisoned
    try:
        res = embed_items(native_model, [Item(t, Modality.TEXT, t) for t in texts], batch_size=4)
    finally:
        del native_model.forward
    assert [it.data for it in res.items] == ["fine one", "fine two"]
    assert np.all(np.isfinite(res.vectors))
    reasons = {f.source: f.reason for f in res.quarantined}
    assert "NaN" in reasons["makes nan"] and "zero" in reasons["makes zero"]


def test_cancel_keeps_finished_batches(native_model):
    texts = [f"text {i}" for i in range(10)]
    state = TaskState()
    seen = []

    def on_progress(p):
        seen.append(p.done)
        if p.done >= 4:
            state.cancel()

    state._on_progress = on_progress
    res = embed_items(native_model, [Item(t, Modality.TEXT, t) for t in texts], state, batch_size=2)
    assert res.cancelled
    assert [it.data for it in res.items] == texts[:4]
    assert res.vectors.shape == (4, native_model.embed_dim)


def test_modality_without_tower_is_per_item(hf_siglip, media_dir):
    from cl_core.models.open import open_checkpoint

    model = open_checkpoint(hf_siglip[0])
    res = embed_paths(model, [media_dir / "tone.wav", media_dir / "red.png"])
    assert len(res.items) == 1 and "no audio tower" in res.failures[0].reason


def test_session_collects_results_and_similarity(native_model, media_dir):
    session = Session()
    events = []
    session.items_changed.connect(lambda: events.append("items"))
    session.failures_added.connect(lambda f: events.append(("failures", len(f))))
    session.set_model(native_model)
    res = embed_paths(native_model, [media_dir / "red.png", media_dir / "fake.eps"], texts=["red"])
    session.add_result(res)
    sim = session.similarity()
    assert sim.shape == (2, 2) and np.allclose(np.diag(sim), 1.0, atol=1e-5)
    assert ("failures", 1) in events
    session.select([1, 5])
    assert session.selection == frozenset({1})
    session.set_model(native_model)
    assert session.items == [] and len(session.pending_items) == 2


def test_session_refuses_vectors_of_another_dimension(native_model):
    from cl_core.embed.items import EmbedResult

    session = Session()
    session.set_model(native_model)
    bad = EmbedResult(items=[Item("x", Modality.TEXT, "x")], vectors=np.ones((1, 3), np.float32))
    with pytest.raises(ValueError, match="3-d"):
        session.add_result(bad)
