"""The CLIP BPE tokenizer: ids equal to the reference merge loop (and to transformers' CLIPTokenizer), in time
linear in a word's length."""

from __future__ import annotations

import numpy as np

from cl_core.models.clip_tokenizer import get_clip_tokenizer


def reference_bpe(ranks: dict, token: str) -> str:
    """OpenAI's loop: merge every occurrence of the lowest-ranked pair, rescan (quadratic)."""
    word = tuple(token[:-1]) + (token[-1] + "</w>",)
    while len(word) > 1:
        pairs = {(a, b) for a, b in zip(word, word[1:], strict=False)}
        best = min(pairs, key=lambda p: ranks.get(p, float("inf")))
        if best not in ranks:
            break
        merged, i = [], 0
        while i < len(word):
            if i < len(word) - 1 and (word[i], word[i + 1]) == best:
                merged.append(word[i] + word[i + 1])
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
    return " ".join(word)


def test_heap_merges_equal_the_reference_loop():
    tok = get_clip_tokenizer()
    rng = np.random.default_rng(0)
    alphabet = list("abcdefghijklmnopqrstuvwxyzeeaaiioo")
    words = ["aaaaaaaaaaa", "abababababab", "mississippi", "lowerlowestnewer", "pneumonoultramicroscopic",
             "ỹếủ", "日本語のテキスト", "x", "zz"]
    words += ["".join(rng.choice(alphabet, size=int(rng.integers(1, 40)))) for _ in range(3000)]
    byte_map = __import__("cl_core.models.clip_tokenizer", fromlist=["bytes_to_unicode"]).bytes_to_unicode()
    for w in words:
        mapped = "".join(byte_map[b] for b in w.encode("utf-8"))
        tok._cache.clear()
        assert tok._bpe(mapped) == reference_bpe(tok.ranks, mapped), w


def test_ids_equal_transformers_clip_tokenizer(tmp_path):
    import json

    from transformers import CLIPTokenizer

    tok = get_clip_tokenizer()
    vocab, merges = tok.hf_vocab_and_merges()
    (tmp_path / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    hf = CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    for text in ("a photo of a cat", "A striped CRIMSON disc, huge, on the right!", "tumour necrosis present",
                 "naïve café déjà-vu 12345", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"):
        assert tok.encode(text) == hf(text, add_special_tokens=False)["input_ids"], text


def test_a_100k_character_word_is_tokenized():
    tok = get_clip_tokenizer()
    ids = tok.encode("ab" * 50_000)
    assert len(ids) > 1000 and tok([("ab" * 50_000)]).shape == (1, 77)


def test_text_is_repaired_by_ftfy_as_open_clip_does():
    """ids equal open_clip's for mis-decoded text, entities, ligatures and full-width letters (made by
    scripts/reference_fixtures/make_ftfy_tokens.py with open_clip's own tokenizer)."""
    import json
    from pathlib import Path

    ref = json.loads((Path(__file__).parent / "fixtures" / "ftfy_tokens.json").read_text(encoding="utf-8"))
    tok = get_clip_tokenizer()
    for text, ids in zip(ref["texts"], ref["ids"], strict=True):
        got = tok([text])[0].tolist()
        assert [i for i in got if i] == ids, text
