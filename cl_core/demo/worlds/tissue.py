"""Synthetic tissue: an H&E patch, a multiplexed immunofluorescence (mIF) patch and clinical text per case,
all generated from one written causal model, so that what a model infers can be checked against truth.

Causal model (every arrow is in the code below, nothing else links the modalities):

    organ ─┬─> tissue architecture (lung: alveolar spaces; breast: fat vacuoles; colon: glands), seen in
           │   H&E as eosin and in mIF as tissue autofluorescence (empty spaces are dark in every channel)
           └─> baseline PD-L1
    stage ─┬─> tumour cellularity (higher stage, more tumour)
           ├─> Ki67 proliferation (higher stage, more Ki67+ tumour cells; in H&E their nuclei are
           │   hyperchromatic, as cycling cells' condensing chromatin is)
           ├─> grade (nuclear pleomorphism: grade 3 tumour nuclei vary widely in size, grade 1 hardly;
           │   seen in H&E and in DAPI)
           ├─> necrosis (a dead zone in a tumour nest: eosinophilic debris with nuclear fragments in
           │   H&E, DAPI specks and bright autofluorescence in mIF, no intact cells)
           └─> CD8 infiltration (higher stage, fewer T cells: immune escape)
    CD8 infiltration ─> macrophages (CD68) and PD-L1 (adaptive resistance)
    CD8, PD-L1, stage ─> outcome (responder to immunotherapy or not)
    age ─> nothing visible (a nuisance variable in the text)
    cells on the patch ─> the pathologist's findings (measured on them, as scores are in practice)

Cells (tumour, CD8 T cell, macrophage, stromal) are placed on a 64 x 64 µm-ish patch. The mIF stack has
channels DAPI, panCK, CD8, CD68, PD-L1, Ki67 (float32 [6, 64, 64]); the H&E image is rendered from the
same cells by Beer-Lambert mixing of haematoxylin (nuclei) and eosin (cytoplasm, stroma). The clinical
text states organ, stage, age and outcome, and the pathologist's findings in varied phrasing: grade,
necrosis, tumour cellularity, CD8 T-cell density, PD-L1 tumour proportion score and Ki67 index, the scores
counted on the cells of this patch (so a finding is what the pictures show, not the latent rate that
produced them). Cells keep a minimum distance, as nuclei do not overlap, so they can be counted.
Everything is a pure function of (seed, index).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from cl_core.demo.worlds import generate


def gaussian_filter(image: np.ndarray, sigma: Any) -> np.ndarray:
    """scipy's, imported on first drawing: opening the demo's model does not pay for scipy.ndimage."""
    from scipy.ndimage import gaussian_filter as scipy_gaussian

    return np.asarray(scipy_gaussian(image, sigma))


CHANNELS = ("DAPI", "panCK", "CD8", "CD68", "PD-L1", "Ki67")
ORGANS = ("lung", "breast", "colon")
STAGES = ("I", "II", "III", "IV")
SIZE = 64
HEMATOXYLIN = np.array([0.65, 0.70, 0.29])
EOSIN = np.array([0.07, 0.99, 0.11])


@dataclass(frozen=True)
class Case:
    organ: str
    stage: str
    age: int
    cellularity: float  # tumour fraction of cells, 0..1
    cd8: float  # T-cell infiltration, 0..1
    pdl1: float  # fraction of PD-L1+ tumour cells
    ki67: float  # fraction of Ki67+ tumour cells
    responder: bool
    grade: int = 2  # 1 well, 2 moderately, 3 poorly differentiated (nuclear pleomorphism)
    necrosis: bool = False


@dataclass(frozen=True)
class Findings:
    """What a pathologist measures on this patch: scores are counts over its cells, as in practice
    (tumour cellularity, CD8 density, PD-L1 tumour proportion score, Ki67 index)."""

    cellularity: float  # tumour cells / all cells
    cd8_density: float  # CD8 T cells / all cells
    pdl1_tps: float  # PD-L1+ tumour cells / tumour cells
    ki67_index: float  # Ki67+ tumour cells / tumour cells


def measure(cells) -> Findings:
    tumour = [c for c in cells if c[2] == "tumour"]
    n, nt = max(1, len(cells)), max(1, len(tumour))
    return Findings(len(tumour) / n, sum(c[2] == "cd8" for c in cells) / n,
                    sum(c[3] for c in tumour) / nt, sum(c[4] for c in tumour) / nt)


@dataclass(frozen=True)
class TissueSample:
    index: int
    case: Case
    he: Image.Image
    mif: np.ndarray  # [6, 64, 64] float32, channels as CHANNELS
    text: str
    findings: Findings


def _sigmoid(x: float) -> float:
    return float(1 / (1 + np.exp(-x)))


def sample_case(rng: np.random.Generator, organ: str | None = None, stage: str | None = None) -> Case:
    organ = organ or str(rng.choice(ORGANS))
    stage = stage or str(rng.choice(STAGES))
    s = STAGES.index(stage)
    age = int(np.clip(rng.normal(63, 11), 30, 90))
    cellularity = float(np.clip(0.2 + 0.15 * s + rng.normal(0, 0.07), 0.05, 0.9))
    cd8 = float(np.clip(0.65 - 0.15 * s + rng.normal(0, 0.15), 0.02, 0.95))
    base_pdl1 = {"lung": 0.3, "breast": 0.1, "colon": 0.15}[organ]
    pdl1 = float(np.clip(base_pdl1 + 0.5 * cd8 + rng.normal(0, 0.1), 0.0, 0.95))
    ki67 = float(np.clip(0.1 + 0.18 * s + rng.normal(0, 0.08), 0.02, 0.95))
    responder = bool(rng.random() < _sigmoid(3.0 * cd8 + 2.0 * pdl1 - 0.6 * s - 1.2))
    grade = int(np.clip(round(1.2 + 0.5 * s + rng.normal(0, 0.5)), 1, 3))
    necrosis = bool(rng.random() < _sigmoid(0.9 * s - 2.6))
    return Case(organ, stage, age, cellularity, cd8, pdl1, ki67, responder, grade, necrosis)


def _architecture(organ: str, rng: np.random.Generator) -> np.ndarray:
    """1 where tissue is, 0 in empty spaces (alveoli, fat, gland lumens)."""
    noise = gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), {"lung": 4.0, "breast": 6.0, "colon": 3.0}[organ])
    noise = (noise - noise.mean()) / (noise.std() + 1e-6)
    if organ == "colon":  # glands: rings of tissue around lumens
        yy, xx = np.mgrid[:SIZE, :SIZE]
        cx, cy = rng.uniform(20, 44, 2)
        r = np.hypot(xx - cx, yy - cy)
        return ((r > 7) | (noise < 1.2)).astype(np.float32)
    threshold = {"lung": 0.35, "breast": 0.6}[organ]
    return (noise < threshold).astype(np.float32)


class Cell(NamedTuple):
    x: float
    y: float
    kind: str  # tumour, cd8, macrophage, stroma
    pdl1: bool
    ki67: bool
    size: float = 1.0  # nuclear size relative to the kind's usual one (pleomorphism)


# nuclear size spread of tumour cells per grade (uniform range, relative)
PLEOMORPHISM = {1: (0.9, 1.1), 2: (0.75, 1.35), 3: (0.55, 1.75)}
MIN_DISTANCE = 2.6  # µm-ish pixels between nucleus centres


def _place(draw, placed: list[tuple[float, float]], tries: int = 25) -> tuple[float, float]:
    """Of `tries` positions from draw(tries) -> [tries, 2], the first at least MIN_DISTANCE from every
    placed cell (the farthest if none is)."""
    candidates = draw(tries)
    if not placed:
        return float(candidates[0, 0]), float(candidates[0, 1])
    pts = np.asarray(placed)
    d = np.hypot(candidates[:, None, 0] - pts[None, :, 0], candidates[:, None, 1] - pts[None, :, 1]).min(1)
    ok = np.flatnonzero(d >= MIN_DISTANCE)
    k = int(ok[0]) if len(ok) else int(np.argmax(d))
    return float(candidates[k, 0]), float(candidates[k, 1])


def _necrotic_zone(case: Case, centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of the dead zone (empty when the case has no necrosis)."""
    if not case.necrosis:
        return np.zeros((SIZE, SIZE), bool)
    yy, xx = np.mgrid[:SIZE, :SIZE]
    cx, cy = centres[0] + rng.normal(0, 2, 2)
    return np.hypot(xx - cx, yy - cy) < rng.uniform(6, 9)


def _cells(case: Case, tissue: np.ndarray, rng: np.random.Generator, centres: np.ndarray,
           dead: np.ndarray) -> list[Cell]:
    """Tumour cells in nests, immune and stromal cells scattered over the tissue; none in the dead zone."""
    n = 70
    n_tumour = int(round(n * case.cellularity))
    n_cd8 = int(round((n - n_tumour) * case.cd8 * 0.8))
    n_mac = int(round((n - n_tumour) * (0.1 + 0.25 * case.cd8)))
    n_stroma = max(0, n - n_tumour - n_cd8 - n_mac)
    ys, xs = np.nonzero(tissue)
    placed: list[tuple[float, float]] = []
    out: list[Cell] = []
    low, high = PLEOMORPHISM[case.grade]

    def in_nest(k: int) -> np.ndarray:
        return np.clip(centres[rng.integers(len(centres), size=k)] + rng.normal(0, 8, (k, 2)), 1, SIZE - 2)

    def on_tissue(k: int) -> np.ndarray:
        if not len(xs):
            return rng.uniform(1, SIZE - 2, (k, 2))
        pick = rng.integers(len(xs), size=k)
        return np.stack([xs[pick], ys[pick]], 1) + rng.uniform(-0.5, 0.5, (k, 2))

    for _ in range(n_tumour):
        x, y = _place(in_nest, placed)
        placed.append((x, y))
        out.append(Cell(x, y, "tumour", bool(rng.random() < case.pdl1), bool(rng.random() < case.ki67),
                        float(rng.uniform(low, high))))
    for kind, count in (("cd8", n_cd8), ("macrophage", n_mac), ("stroma", n_stroma)):
        for _ in range(count):
            x, y = _place(on_tissue, placed)
            placed.append((x, y))
            pd = kind == "macrophage" and bool(rng.random() < case.pdl1)
            out.append(Cell(x, y, kind, pd, False))
    inside = lambda v: min(max(int(round(v)), 0), SIZE - 1)  # noqa: E731
    return [c for c in out if not dead[inside(c.y), inside(c.x)]]


def _nuclei(cells: list[Cell], select, sigma: float, weight=None) -> np.ndarray:
    """Gaussian nuclei of width sigma x each cell's size, peak `weight` (default 1); separable, one matmul."""
    chosen = [c for c in cells if select(c)]
    if not chosen:
        return np.zeros((SIZE, SIZE))
    axis = np.arange(SIZE, dtype=np.float64)
    xs, ys = np.array([[c.x, c.y] for c in chosen]).T
    s = sigma * np.array([c.size for c in chosen])[:, None]
    w = np.array([1.0 if weight is None else weight(c) for c in chosen])[:, None]
    gy = w * np.exp(-0.5 * ((axis - ys[:, None]) / s) ** 2)
    gx = np.exp(-0.5 * ((axis - xs[:, None]) / s) ** 2)
    return gy.T @ gx


def _fragments(dead: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Karyorrhexis: small dense nuclear fragments scattered over the dead zone."""
    ys, xs = np.nonzero(dead)
    grid = np.zeros((SIZE, SIZE))
    if len(xs):
        k = rng.integers(len(xs), size=int(len(xs) * 0.12))
        np.add.at(grid, (ys[k], xs[k]), 1.0)
    return gaussian_filter(grid, 0.5) * (2 * np.pi * 0.25)


def _blobs(cells, select, sigma: float, weight=None) -> np.ndarray:
    grid = np.zeros((SIZE, SIZE), np.float64)
    for c in cells:
        if select(c):
            x, y = int(round(c[0])), int(round(c[1]))
            if 0 <= x < SIZE and 0 <= y < SIZE:
                grid[y, x] += 1.0 if weight is None else weight(c)
    return gaussian_filter(grid, sigma) * (2 * np.pi * sigma**2)


# tissue autofluorescence per channel (collagen, elastin, red cells glow, most at short wavelengths);
# empty spaces (alveoli, fat, lumens) stay dark, so the architecture shows in every channel as in real mIF
AUTOFLUORESCENCE = np.array([140.0, 90.0, 70.0, 70.0, 60.0, 50.0])


def render_mif(cells, tissue: np.ndarray, rng: np.random.Generator, dead: np.ndarray | None = None,
               fragments: np.ndarray | None = None) -> np.ndarray:
    cells = [c if isinstance(c, Cell) else Cell(*c) for c in cells]
    dead = np.zeros((SIZE, SIZE), bool) if dead is None else dead
    fragments = np.zeros((SIZE, SIZE)) if fragments is None else fragments
    chans = [
        _nuclei(cells, lambda c: True, 1.0) + fragments,  # DAPI: every nucleus (sizes vary), and debris
        _blobs(cells, lambda c: c.kind == "tumour", 1.6),  # panCK: epithelial tumour cytoplasm
        _blobs(cells, lambda c: c.kind == "cd8", 1.2),
        _blobs(cells, lambda c: c.kind == "macrophage", 1.8),
        _blobs(cells, lambda c: c.pdl1, 1.6),  # PD-L1 on tumour cells and macrophages
        _blobs(cells, lambda c: c.ki67, 0.9),  # Ki67: nuclear, proliferating tumour cells
    ]
    # necrotic debris autofluoresces brightly (as in real tissue)
    glow = gaussian_filter(np.maximum(tissue, 2.0 * dead), 1.0)[None] * AUTOFLUORESCENCE[:, None, None]
    stack = np.stack(chans) * 800 + glow + rng.normal(0, 20, (len(CHANNELS), SIZE, SIZE)) + 60
    return np.clip(stack, 0, 4095).astype(np.float32)  # 12-bit camera range


def _spindles(cells, select, rng: np.random.Generator, long: float = 2.2, short: float = 0.55) -> np.ndarray:
    """Elongated nuclei (fibroblasts), each at its own angle; peak 1 per cell like _blobs."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(np.float64)
    grid = np.zeros((SIZE, SIZE))
    for c in cells:
        if select(c):
            a = rng.uniform(0, np.pi)
            dx, dy = xx - c[0], yy - c[1]
            u, v = dx * np.cos(a) + dy * np.sin(a), -dx * np.sin(a) + dy * np.cos(a)
            grid += np.exp(-0.5 * ((u / long) ** 2 + (v / short) ** 2))
    return grid


def render_he(cells, tissue: np.ndarray, rng: np.random.Generator, dead: np.ndarray | None = None,
              fragments: np.ndarray | None = None) -> Image.Image:
    cells = [c if isinstance(c, Cell) else Cell(*c) for c in cells]
    dead = np.zeros((SIZE, SIZE), bool) if dead is None else dead
    fragments = np.zeros((SIZE, SIZE)) if fragments is None else fragments
    # (blob width, haematoxylin peak): large vesicular tumour nuclei (hyperchromatic when cycling, sizes
    # varying with grade), small round very dark lymphocytes, large pale macrophage nuclei; fibroblasts
    # (stroma) are thin spindles, as a pathologist tells them apart
    hema = _nuclei(cells, lambda c: c.kind == "tumour", 1.6, lambda c: 1.5 if c.ki67 else 0.8)
    hema += 1.6 * _blobs(cells, lambda c: c.kind == "cd8", 0.8)
    hema += 0.5 * _blobs(cells, lambda c: c.kind == "macrophage", 1.4)
    hema += 0.8 * _spindles(cells, lambda c: c.kind == "stroma", rng) + 1.2 * fragments
    hema = gaussian_filter(hema, 0.4)
    cytoplasm = 0.25 * _blobs(cells, lambda c: c.kind == "tumour", 2.5)
    eosin = (0.35 * tissue + 0.45 * gaussian_filter(dead.astype(float), 1.0) + 0.5 * cytoplasm
             + 0.05 * gaussian_filter(rng.normal(0, 1, (SIZE, SIZE)), 1.0))
    od = hema[..., None] * HEMATOXYLIN + np.clip(eosin, 0, None)[..., None] * EOSIN
    rgb = 255 * np.exp(-od) + rng.normal(0, 3, (SIZE, SIZE, 3))
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB")


GRADE_WORDS = {1: "well differentiated", 2: "moderately differentiated", 3: "poorly differentiated"}


def _bucket(value: float, words: tuple[str, str, str]) -> str:
    return words[0] if value < 0.3 else words[1] if value < 0.6 else words[2]


def clinical_text(case: Case, found: Findings, rng: np.random.Generator) -> str:
    outcome = str(rng.choice(["responded to immunotherapy", "responder to checkpoint inhibition",
                              "showed a response to anti-PD-1 therapy"] if case.responder else
                             ["did not respond to immunotherapy", "non-responder to checkpoint inhibition",
                              "progressed on anti-PD-1 therapy"]))
    organ = {"lung": str(rng.choice(["lung adenocarcinoma", "non-small cell lung cancer"])),
             "breast": str(rng.choice(["breast carcinoma", "invasive ductal carcinoma of the breast"])),
             "colon": str(rng.choice(["colorectal adenocarcinoma", "colon cancer"]))}[case.organ]
    cell = f"tumour cellularity about {int(round(found.cellularity * 10)) * 10}%"
    infil = ("sparse" if found.cd8_density < 0.1 else "moderate" if found.cd8_density < 0.25 else "dense"
             ) + " CD8 T-cell infiltrate"
    pd = "PD-L1 " + _bucket(found.pdl1_tps, ("negative", "low", "high"))
    ki = "Ki67 " + ("low" if found.ki67_index < 0.35 else "high")
    grade = str(rng.choice([f"grade {case.grade}", GRADE_WORDS[case.grade]]))
    necrosis = str(rng.choice(["tumour necrosis present", "focal necrosis"] if case.necrosis else
                              ["no necrosis", "necrosis absent"]))
    phrases = [grade, necrosis, cell, infil, pd, ki]
    order = rng.permutation(len(phrases))
    said = ", ".join(phrases[i] for i in order)
    template = int(rng.integers(3))
    if template == 0:
        return f"{case.age}-year-old patient with stage {case.stage} {organ}; {said}; {outcome}."
    if template == 1:
        return f"Stage {case.stage} {organ} in a {case.age} year old. Pathology: {said}. Patient {outcome}."
    return f"{organ.capitalize()}, stage {case.stage}, age {case.age}: {said}; {outcome}."


def make_sample(seed: int, index: int) -> TissueSample:
    rng = np.random.default_rng([seed, index, 7])
    return _draw(index, sample_case(rng), rng)


def make_case(seed: int, index: int, patches: int, **do: Any) -> list[TissueSample]:
    """`patches` patches of one case (one patient), with variables set by intervention (do(stage="IV"),
    do(age=80), ...): the case's other variables are drawn as usual, downstream of what was set, so two calls
    differing only in `do` are the same patient in two worlds (the causal effect, paired)."""
    unknown = set(do) - {"organ", "stage", "age", "grade", "responder", "necrosis"}
    if unknown:
        raise ValueError(f"no clinical variable {', '.join(sorted(unknown))} in the tissue world")
    rng = np.random.default_rng([seed, index, 11])
    case = sample_case(rng, organ=do.get("organ"), stage=do.get("stage"))
    case = replace(case, **{k: v for k, v in do.items() if k not in ("organ", "stage")})
    return [_draw(index, case, np.random.default_rng([seed, index, 11, p])) for p in range(patches)]


def _draw(index: int, case: Case, rng: np.random.Generator) -> TissueSample:
    tissue = _architecture(case.organ, rng)
    centres = rng.uniform(12, 52, (2, 2))  # tumour nests
    dead = _necrotic_zone(case, centres, rng)
    cells = _cells(case, tissue, rng, centres, dead)
    found = measure(cells)
    fragments = _fragments(dead, rng)
    he, mif = render_he(cells, tissue, rng, dead, fragments), render_mif(cells, tissue, rng, dead, fragments)
    return TissueSample(index, case, he, mif, clinical_text(case, found, rng), found)


# how each clinical variable is said in the texts (clinical_text), for counterfactual edits of a text
_ORGAN_WORDS = {"lung": ("lung adenocarcinoma", "non-small cell lung cancer"),
                "breast": ("breast carcinoma", "invasive ductal carcinoma of the breast"),
                "colon": ("colorectal adenocarcinoma", "colon cancer")}
_OUTCOME_WORDS = {True: ("responded to immunotherapy", "responder to checkpoint inhibition",
                         "showed a response to anti-PD-1 therapy"),
                  False: ("did not respond to immunotherapy", "non-responder to checkpoint inhibition",
                          "progressed on anti-PD-1 therapy")}


def edit_text(text: str, variable: str, value: Any) -> str:
    """The clinical text with one variable said differently (stage, grade, organ, age, responder), the rest
    of its wording kept: the counterfactual a pathologist would type."""
    import re

    if variable == "stage":
        return re.sub(r"\b([Ss])tage (IV|III|II|I)\b", lambda m: f"{m.group(1)}tage {value}", text)
    if variable == "grade":
        text = re.sub(r"\bgrade [123]\b", f"grade {value}", text)
        return re.sub("|".join(GRADE_WORDS.values()), GRADE_WORDS[int(value)], text)
    if variable == "age":
        text = re.sub(r"\b\d+-year-old", f"{value}-year-old", text)
        text = re.sub(r"\ba \d+ year old", f"a {value} year old", text)
        return re.sub(r"\bage \d+", f"age {value}", text)
    if variable == "organ":
        for words in _ORGAN_WORDS.values():
            for i, w in enumerate(words):
                for said in (w, w.capitalize()):
                    if said in text:
                        new = _ORGAN_WORDS[value][i]
                        return text.replace(said, new.capitalize() if said[0].isupper() else new)
        return text
    if variable == "responder":  # longest phrase first, so "non-responder ..." is never read as "responder ..."
        place = {w: i for flag in (True, False) for i, w in enumerate(_OUTCOME_WORDS[flag])}
        pattern = "|".join(re.escape(w) for w in sorted(place, key=len, reverse=True))
        return re.sub(pattern, lambda m: _OUTCOME_WORDS[bool(value)][place[m.group(0)]], text)
    raise ValueError(f"no clinical variable {variable!r} in the tissue texts")


def make_world(seed: int, count: int, workers: int | None = None) -> list[TissueSample]:
    return generate(make_sample, seed, count, workers)
