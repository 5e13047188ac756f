"""Shared fixtures: tiny models in every format, sample media, and a guard against leaked threads."""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("CLENS_DEVICE", "cpu")
# tests never write into the user's own cache folder; the one made here goes when the run ends
if "CLENS_CACHE_DIR" not in os.environ:
    os.environ["CLENS_CACHE_DIR"] = tempfile.mkdtemp(prefix="clens-test-cache-")
    atexit.register(shutil.rmtree, os.environ["CLENS_CACHE_DIR"], True)
sys.path.insert(0, str(Path(__file__).parent))

import pytest  # noqa: E402
import tqdm  # noqa: E402

tqdm.tqdm.monitor_interval = 0  # libraries' progress bars must not leave tqdm's monitor thread behind

import media  # noqa: E402
import tiny_models  # noqa: E402


@pytest.fixture(autouse=True)
def no_leaked_threads():
    """Fail a test that leaves Python threads running (bounded join, not a sleep)."""
    before = set(threading.enumerate())
    yield
    # foreign threads (Qt's pool threads show up as _DummyThread) are checked by the Qt tests' own guards;
    # zarr's IO loop is one daemon thread per process, started on first use and reused (not a leak)
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()
              and not isinstance(t, threading._DummyThread) and not (t.name == "zarr_io" and t.daemon)]
    for t in leaked:
        t.join(timeout=10)
    still = [t.name for t in leaked if t.is_alive()]
    assert not still, f"test left threads running: {still}"


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def hf_clip(models_dir):
    folder = models_dir / "hf_clip"
    return folder, tiny_models.make_hf_clip(folder)


@pytest.fixture(scope="session")
def openclip_dir(models_dir, hf_clip):
    return tiny_models.make_openclip_folder(models_dir / "open_clip", hf_clip[1])


@pytest.fixture(scope="session")
def hf_siglip(models_dir):
    folder = models_dir / "hf_siglip"
    return folder, tiny_models.make_hf_siglip(folder)


@pytest.fixture(scope="session")
def hf_clap(models_dir):
    folder = models_dir / "hf_clap"
    return folder, tiny_models.make_hf_clap(folder)


@pytest.fixture(scope="session")
def native_dir(models_dir) -> Path:
    return tiny_models.make_native(models_dir / "native")


@pytest.fixture(scope="session")
def native_model(native_dir):
    from cl_core.models.open import open_checkpoint

    return open_checkpoint(native_dir)


@pytest.fixture
def controller(qapp, native_model, tmp_path):
    """(session, jobs): a Session with the tiny native model open and the window's controller, its cache under
    tmp_path; the test fails if the controller's jobs do not finish."""
    from cl_core.session import Session
    from clens_app.jobs import Jobs

    session = Session()
    jobs = Jobs(session)
    jobs.settings.cache_dir = tmp_path / "cache"
    session.set_model(native_model)
    yield session, jobs
    assert jobs.shutdown()


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory) -> Path:
    return media.make_media(tmp_path_factory.mktemp("media"))
