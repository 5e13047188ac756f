"""CLIP's byte-level BPE tokenizer (OpenAI / open_clip), written here so no open_clip install is needed.

The vocabulary is the MIT-licensed bpe_simple_vocab_16e6 shipped in resources/vocab.
"""

from __future__ import annotations

import functools
import gzip
import html
from pathlib import Path

import regex
import torch

from cl_core.resources import CLIP_BPE_VOCAB


@functools.lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """Reversible byte -> printable unicode map used by GPT-2/CLIP BPE."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs), strict=True))


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in zip(word, word[1:], strict=False)}


def clean_text(text: str) -> str:
    text = html.unescape(html.unescape(text)).strip()
    return regex.sub(r"\s+", " ", text).strip().lower()


class ClipTokenizer:
    SOT = "<start_of_text>"
    EOT = "<end_of_text>"

    def __init__(self, bpe_path: Path = CLIP_BPE_VOCAB, context_length: int = 77) -> None:
        merges_text = gzip.open(bpe_path).read().decode("utf-8").split("\n")
        merges = [tuple(m.split()) for m in merges_text[1:49152 - 256 - 2 + 1]]
        byte_chars = list(bytes_to_unicode().values())
        vocab = byte_chars + [c + "</w>" for c in byte_chars] + ["".join(m) for m in merges] + [self.SOT, self.EOT]
        self.encoder = {tok: i for i, tok in enumerate(vocab)}
        self.merges = merges
        self.ranks = {m: i for i, m in enumerate(merges)}
        self.context_length = context_length
        self.sot_id = self.encoder[self.SOT]
        self.eot_id = self.encoder[self.EOT]
        self._cache: dict[str, str] = {}
        self._pat = regex.compile(
            r"""<start_of_text>|<end_of_text>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+""",
            regex.IGNORECASE)

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def _bpe(self, token: str) -> str:
        if token in self._cache:
            return self._cache[token]
        word: tuple[str, ...] = tuple(token[:-1]) + (token[-1] + "</w>",)
        pairs = _pairs(word)
        while pairs:
            best = min(pairs, key=lambda p: self.ranks.get(p, float("inf")))
            if best not in self.ranks:
                break
            first, second = best
            merged: list[str] = []
            i = 0
            while i < len(word):
                if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(word[i])
                    i += 1
            word = tuple(merged)
            if len(word) == 1:
                break
            pairs = _pairs(word)
        out = " ".join(word)
        self._cache[token] = out
        return out

    def encode(self, text: str) -> list[int]:
        byte_map = bytes_to_unicode()
        ids: list[int] = []
        for tok in self._pat.findall(clean_text(text)):
            mapped = "".join(byte_map[b] for b in tok.encode("utf-8"))
            ids.extend(self.encoder[t] for t in self._bpe(mapped).split(" "))
        return ids

    def __call__(self, texts: list[str]) -> torch.Tensor:
        """[N, context_length] token ids: SOT, tokens, EOT (kept last when truncating), zero padding."""
        out = torch.zeros(len(texts), self.context_length, dtype=torch.long)
        for i, text in enumerate(texts):
            ids = [self.sot_id, *self.encode(text), self.eot_id]
            if len(ids) > self.context_length:
                ids = ids[:self.context_length]
                ids[-1] = self.eot_id
            out[i, :len(ids)] = torch.tensor(ids)
        return out

    def hf_vocab_and_merges(self) -> tuple[dict[str, int], list[str]]:
        """The same vocabulary in Hugging Face CLIPTokenizer's files' form (for export and tests)."""
        vocab = {k: v for k, v in self.encoder.items() if k not in (self.SOT, self.EOT)}
        vocab["<|startoftext|>"] = self.sot_id
        vocab["<|endoftext|>"] = self.eot_id
        return vocab, [" ".join(m) for m in self.merges]


@functools.lru_cache(maxsize=4)
def get_clip_tokenizer(context_length: int = 77) -> ClipTokenizer:
    return ClipTokenizer(context_length=context_length)
