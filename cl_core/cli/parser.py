"""The one argument parser of `clens`: every verb, the window's options, typed and range-checked."""

from __future__ import annotations

import argparse
import math

from cl_core.choices import (
    ARCH_NAMES,
    AUTO_FUSION,
    DEFAULT_MIN_RELEVANCE,
    DEVICE_CHOICES,
    FUSIONS,
    INDEX_KINDS,
    PROJECTIONS,
)
from cl_core.modality import Modality

VERBS = ("gui", "info", "embed", "demo", "train", "index", "search", "project", "explain", "eval", "diagnose", "compare", "doctor",
         "cache", "tissue")


def _modality(value: str) -> Modality:
    try:
        return Modality.parse(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (got {n})")
    return n


def _finite(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not math.isfinite(x):
        raise argparse.ArgumentTypeError(f"must be a finite number (got {value})")
    return x


def _probability(value: str) -> float:
    x = _finite(value)
    if not 0.0 <= x <= 1.0:
        raise argparse.ArgumentTypeError(f"a probability, from 0 to 1 (got {value})")
    return x


def _param(value: str) -> tuple[str, str]:
    name, sep, raw = value.partition("=")
    if not sep or not name.strip():
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE (got {value!r})")
    return name.strip(), raw.strip()


def _model_args(p: argparse.ArgumentParser, required: bool = True) -> None:
    if required:
        p.add_argument("model", help="checkpoint folder or file (native, Hugging Face, open_clip, OpenAI CLIP)")
    p.add_argument("--device", choices=DEVICE_CHOICES, default=None, help="force a device (default: best available)")
    p.add_argument("--allow-pickle", action="store_true",
                   help="allow .bin/.pt weights where no safetensors exist (loaded weights-only, never code)")
    p.add_argument("--arch", choices=ARCH_NAMES, metavar="NAME", default=None,
                   help="a lone CLIP state dict's open_clip architecture, e.g. ViT-B-32 or ViT-B-16-quickgelu "
                        "(remembered beside the file)")


def _cache_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", default=None, help="embedding cache folder (default: the user cache folder)")
    p.add_argument("--no-cache", action="store_true", help="embed everything again and store nothing")
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")


def _source_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--allow-outside-files", action="store_true",
                   help="let a manifest name files outside its own folder (by default they are refused, each named)")


def _reference_args(p: argparse.ArgumentParser, k: int, w: float) -> None:
    """What marker inference by retrieval takes (clens tissue infer and counterfactual: the notebooks' defaults
    differ), then --json, the cache and the source options."""
    p.add_argument("--reference", required=True,
                   help="the reference gallery with mIF patches: a folder, a manifest, or demo:tissue")
    p.add_argument("-k", type=_positive_int, default=k, help="neighbours (default %(default)s)")
    p.add_argument("-w", type=_finite, default=w, help="weight of the H&E similarity (default %(default)s)")
    p.add_argument("--target", choices=("mean", "positive"), default="mean",
                   help="what a marker's value is: mean channel intensity (default) or positive-cell fraction")
    p.add_argument("--json", action="store_true")
    _cache_args(p)
    _source_args(p)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clens", description="Contrastive Lens. With no verb, opens the window (clens [MODEL] [FILES...]).")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    gui = sub.add_parser("gui", help="open the window (the default): clens [gui] [MODEL] [FILES...]")
    gui.add_argument("model", nargs="?", help="checkpoint to open at start")
    gui.add_argument("inputs", nargs="*", help="files to embed once the model is open")
    gui.add_argument("--empty", action="store_true", help="start without the bundled demo")
    gui.add_argument("--gallery", help="open this gallery (folder, manifest, demo:NAME) once the model is ready")
    gui.add_argument("--search", help="then search it for this text")
    gui.add_argument("--explain", type=_positive_int, metavar="RANK",
                     help="then show why the search's result at this rank (1: the best) matched")
    gui.add_argument("--project", choices=PROJECTIONS, help="then map the gallery with this method")
    gui.add_argument("--compare", metavar="MODEL",
                     help="then open this second checkpoint beside the model, on the same gallery and searches")
    gui.add_argument("--evaluate", action="store_true",
                     help="then evaluate the model on the gallery (Recall@K per modality pair, zero-shot by its "
                          "labels) in the Evaluation panel")
    gui.add_argument("--diagnose", action="store_true",
                     help="then measure the gallery's geometry (gap, spectrum, cosines, hubs) in the Diagnostics panel")
    _source_args(gui)
    gui.add_argument("--theme", choices=("light", "dark"), help="the window's colours (else the last one chosen)")
    gui.add_argument("--colour", metavar="COLUMN", help="colour the map by this column (modality, label, or a "
                     "column of the gallery's manifest)")
    gui.add_argument("--screenshot", help="save a PNG of the window once the work is done, then quit")
    _model_args(gui, required=False)

    info = sub.add_parser("info", help="describe a checkpoint: format, modalities, preprocessing, fingerprint")
    _model_args(info)
    info.add_argument("--json", action="store_true", help="machine-readable output")

    embed = sub.add_parser("embed", help="embed files and texts into an .npy of L2-normalised float32 rows")
    _model_args(embed)
    embed.add_argument("inputs", nargs="*", help="files or folders")
    embed.add_argument("--out", required=True, help="output .npy; a .json beside it maps rows to inputs")
    embed.add_argument("--modality", type=_modality, default=None, help="read every file as this modality")
    embed.add_argument("--text", action="append", default=[], help="a text to embed (repeatable)")
    embed.add_argument("--batch-size", type=_positive_int, default=None)
    embed.add_argument("--quiet", action="store_true", help="no progress on stderr")

    demo = sub.add_parser("demo", help="print a demo model's path and its gallery files (written on first use)")
    demo.add_argument("name", nargs="?", default="shapes_sounds", choices=["shapes_sounds", "tissue"])

    tr = sub.add_parser("train", help="train a native checkpoint from a TOML recipe (resumes if interrupted)")
    tr.add_argument("recipe", help="recipe .toml ([model], [data], [train])")
    tr.add_argument("--out", required=True, help="output folder: checkpoint, model card, resumable state")
    tr.add_argument("--device", choices=DEVICE_CHOICES, default=None)
    tr.add_argument("--quiet", action="store_true")

    ix = sub.add_parser("index", help="gallery indexes (clens index build ...)").add_subparsers(
        dest="index_verb", required=True, metavar="VERB")
    build = ix.add_parser("build", help="embed a gallery (cached) and write an index folder")
    _model_args(build)
    build.add_argument("source", help="a folder, a .csv/.tsv/.parquet manifest, or demo:NAME")
    build.add_argument("--out", required=True, help="index folder (replaced atomically if it exists)")
    build.add_argument("--kind", choices=["auto", *INDEX_KINDS], default="auto",
                       help="index type (default: by gallery size; the choice and its measured recall are printed)")
    build.add_argument("--json", action="store_true")
    build.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="ray: embed on Ray actors (a local Ray, or a cluster with --address); needs the extra "
                            "contrastive-lens[distributed]")
    build.add_argument("--address", default=None, help="a Ray cluster's address (with --engine ray)")
    build.add_argument("--actors", type=_positive_int, default=None,
                       help="Ray actors embedding at once (default: one per CPU, or per GPU with --device cuda)")
    build.add_argument("--shard-files", type=_positive_int, default=None, metavar="N",
                       help="entries per Ray shard, the unit written to the cache and resumed (default 256)")
    _cache_args(build)
    _source_args(build)

    se = sub.add_parser("search", help="search an index folder with files and/or texts (several are fused)")
    se.add_argument("index", help="index folder written by `clens index build`")
    se.add_argument("--query", action="append", default=[], help="a query file (repeatable)")
    se.add_argument("--text", action="append", default=[], help="a query text (repeatable)")
    se.add_argument("--queries", default=None,
                    help="a file with one text query per line ('-' for stdin): each searched on its own, "
                         "with the model loaded once")
    se.add_argument("--target-modality", type=_modality, default=None,
                    help="search only this modality (default: all, merged by relevance)")
    se.add_argument("-k", type=_positive_int, default=10)
    se.add_argument("--fusion", choices=(AUTO_FUSION, *FUSIONS), default=AUTO_FUSION,
                    help="how several query items combine (default: the model's own: symile or gram for a model "
                         "its config records as trained with that objective, else the weighted mean)")
    se.add_argument("--weight", type=_finite, action="append", default=None,
                    help="weight of each query item, in order: files first, then texts")
    se.add_argument("--min-relevance", type=_probability, default=DEFAULT_MIN_RELEVANCE,
                    help="drop hits less likely than this to be relevant (default %(default)s; the index's "
                         "mapping per modality pair, fitted on the gallery's pairs)")
    se.add_argument("--all", action="store_true", help="every hit up to -k, however unlikely to be relevant")
    se.add_argument("--min-z", type=_finite, default=None,
                    help="drop hits below this z (standard deviations above the query's mean score)")
    se.add_argument("--min-score", type=_finite, default=None, help="drop hits below this raw score")
    se.add_argument("--model", default=None, help="the model (default: the one recorded in the index)")
    _model_args(se, required=False)
    se.add_argument("--json", action="store_true")
    _cache_args(se)

    pj = sub.add_parser("project", help="2-D map of every item of an index (PCA, UMAP, t-SNE), and where new "
                                        "items land in it")
    pj.add_argument("index", help="index folder written by `clens index build`")
    pj.add_argument("--method", choices=PROJECTIONS, default="pca")
    pj.add_argument("--param", action="append", default=[], type=_param, metavar="NAME=VALUE",
                    help="a method parameter: umap n_neighbors, min_dist, seed; tsne perplexity, n_iter, seed")
    pj.add_argument("--out", default=None, help="coordinates .npy (row order = the index's rows); a .json beside "
                                                "it maps rows to items")
    pj.add_argument("--place", action="append", default=[], help="a file to place in the map (repeatable)")
    pj.add_argument("--text", action="append", default=[], help="a text to place in the map (repeatable)")
    pj.add_argument("--model", default=None, help="the model (default: the one recorded in the index)")
    _model_args(pj, required=False)
    pj.add_argument("--json", action="store_true")
    _cache_args(pj)

    cp = sub.add_parser("compare", help="two models on one gallery: figures side by side, overlap@k per query")
    _model_args(cp)
    cp.add_argument("second", help="the second checkpoint")
    cp.add_argument("source", help="the gallery both embed: a folder, a manifest, or demo:NAME")
    cp.add_argument("--text", action="append", default=[], help="a query searched through both (repeatable)")
    cp.add_argument("-k", type=_positive_int, default=10, help="hits compared per query (default %(default)s)")
    cp.add_argument("--json", action="store_true")
    _cache_args(cp)
    _source_args(cp)

    ev = sub.add_parser("eval", help="Recall@K both ways per modality pair, and zero-shot classification")
    _model_args(ev)
    ev.add_argument("manifest", help="a paired manifest (.csv/.tsv/.parquet), a folder, or demo:NAME")
    ev.add_argument("--template", action="append", default=None,
                    help="zero-shot prompt template with {} for the label (repeatable)")
    ev.add_argument("--json", action="store_true")
    _cache_args(ev)
    _source_args(ev)

    ex = sub.add_parser("explain", help="where in an image, when in a sound or which words of a text match a query")
    _model_args(ex)
    ex.add_argument("target", nargs="?", default=None, help="the image, channel stack or sound to map")
    ex.add_argument("--target-text", default=None, help="a text to map word by word (instead of a file)")
    ex.add_argument("--text", action="append", default=[], help="a query text (repeatable; fused with --query)")
    ex.add_argument("--query", action="append", default=[], help="a query file (repeatable)")
    ex.add_argument("--png", default=None, help="write the map as a PNG (over the picture, or the curve of a sound)")
    ex.add_argument("--opacity", type=_probability, default=0.55, help="the map's opacity over the picture")
    ex.add_argument("--json", action="store_true")
    ex.add_argument("--quiet", action="store_true", help="no progress on stderr")

    dg = sub.add_parser("diagnose", help="geometry of the embedding space on a gallery")
    _model_args(dg)
    dg.add_argument("source", help="a folder, a manifest, or demo:NAME")
    dg.add_argument("-k", type=_positive_int, default=10, help="neighbourhood size for hubness and agreement")
    dg.add_argument("--json", action="store_true")
    _cache_args(dg)
    _source_args(dg)
    ca = sub.add_parser("cache", help="the embedding cache: what it holds (info), making it smaller (prune)"
                        ).add_subparsers(dest="cache_verb", required=True, metavar="VERB")
    for name, text in (("info", "size per model, and of thumbnails, maps and indexes"),
                       ("prune", "forget embeddings older than DAYS and/or of one model")):
        c = ca.add_parser(name, help=text)
        c.add_argument("--cache", default=None, help="the cache folder (default: the user cache folder)")
        c.add_argument("--json", action="store_true")
        if name == "prune":
            c.add_argument("--older-than", type=_finite, default=None, metavar="DAYS")
            c.add_argument("--model", default=None, metavar="FINGERPRINT", help="a model fingerprint (or its start)")
    ti = sub.add_parser("tissue", help="tissue workflows (clens tissue infer ...)").add_subparsers(
        dest="tissue_verb", required=True, metavar="VERB")
    inf = ti.add_parser("infer", help="an H&E patch's marker profile, inferred from a reference gallery of mIF "
                                      "patches by retrieval (with the case's clinical text)")
    _model_args(inf)
    inf.add_argument("--he", required=True, help="the H&E patch (an image file)")
    inf.add_argument("--text", default=None, help="the case's clinical text (fused with weight 1 - w)")
    _reference_args(inf, k=5, w=0.8)
    hm = ti.add_parser("heatmap", help="a whole slide tiled at the model's patch size, each tile's similarity to a "
                                       "query drawn over the slide (tiles embedded through the cache)")
    _model_args(hm)
    hm.add_argument("slide", help="a (pyramidal) TIFF / OME-TIFF slide: H&E RGB or a multiplex stack")
    hm.add_argument("--text", action="append", default=[], help="a query text (repeatable)")
    hm.add_argument("--query", action="append", default=[], metavar="FILE", help="a query file, e.g. a patch")
    hm.add_argument("--weight", type=_finite, action="append", default=None,
                    help="weight of each query item, in order: files first, then texts")
    hm.add_argument("--patch", type=_positive_int, default=None,
                    help="tile size in px (default: the model's input size)")
    hm.add_argument("--png", default=None, help="write the heatmap over the slide's overview here")
    hm.add_argument("--scores", default=None, help="write the [rows, cols] tile scores here (.npy)")
    hm.add_argument("--opacity", type=_finite, default=0.5)
    hm.add_argument("--all-tiles", action="store_true", help="score glass (background) tiles too")
    hm.add_argument("--json", action="store_true")
    _cache_args(hm)
    mk = ti.add_parser("make-slide", help="write a synthetic whole slide (pyramidal OME-TIFF H&E and 6-channel mIF, "
                                          "with its region mask) from the tissue world")
    mk.add_argument("folder")
    mk.add_argument("--size", type=_positive_int, default=4096, help="width and height in px (default %(default)s)")
    mk.add_argument("--seed", type=int, default=0)
    mk.add_argument("--name", default="slide")
    ch = ti.add_parser("channels", help="how each stack's channels map to the model's (by name; case and common "
                                        "aliases such as PanCK / pan-cytokeratin aside)")
    _model_args(ch)
    ch.add_argument("stacks", nargs="+", help="OME-TIFF, TIFF or .npy stacks")
    ch.add_argument("--json", action="store_true")
    cfp = ti.add_parser("counterfactual", help="how a case's inferred marker profiles shift when only its "
                                                "clinical text is edited (hypotheses about the model)")
    _model_args(cfp)
    cfp.add_argument("--he", required=True, nargs="+", help="the case's H&E patches (files or a folder)")
    cfp.add_argument("--text", required=True, help="the case's clinical text")
    edit = cfp.add_mutually_exclusive_group(required=True)
    edit.add_argument("--to", default=None, metavar="TEXT", help="the edited text")
    edit.add_argument("--replace", nargs="+", default=None, metavar="OLD=NEW",
                      help="edit the text by replacing words, e.g. 'stage II=stage IV'")
    _reference_args(cfp, k=50, w=0.6)
    doc = sub.add_parser("doctor", help="versions, devices, Qt, cache folder, and what is missing (for bug reports)")
    doc.add_argument("--cache", default=None, help="the cache folder to measure (default: the user cache folder)")
    doc.add_argument("--json", action="store_true")
    return parser
