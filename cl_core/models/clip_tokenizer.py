"""CLIP's byte-level BPE tokenizer (OpenAI / open_clip), written here so no open_clip install is needed.

The vocabulary is the MIT-licensed bpe_simple_vocab_16e6 shipped in resources/vocab.
"""

from __future__ import annotations

import functools
import gzip
import heapq
import html
from pathlib import Path

import ftfy
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


CACHE_WORD_MAX = 100


def basic_clean(text: str) -> str:
    """open_clip's `basic_clean`: ftfy's repairs (mojibake, ligatures, full-width letters), HTML entities."""
    return html.unescape(html.unescape(ftfy.fix_text(text))).strip()


def clean_text(text: str) -> str:
    text = basic_clean(text)
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
        """Byte-pair merges of one word, lowest rank first, in O(L log L): a heap of adjacent pairs over a
        linked list of symbols. The reference loop (merge every occurrence of the best pair, rescan) is
        quadratic in the word's length: a 100k-character word took minutes. The order is the same: a pair
        made by a merge contains the merged token, so it was learned later than that merge and ranks after
        it; the heap never runs it before the remaining occurrences of the current pair."""
        if token in self._cache:
            return self._cache[token]
        symbols = [*token[:-1], token[-1] + "</w>"]
        n = len(symbols)
        nxt = [*range(1, n), -1]
        prev = list(range(-1, n - 1))
        ranks = self.ranks
        heap = [(r, i, symbols[i], symbols[i + 1]) for i in range(n - 1)
                if (r := ranks.get((symbols[i], symbols[i + 1]))) is not None]
        heapq.heapify(heap)
        while heap:
            _, i, a, b = heapq.heappop(heap)
            j = nxt[i]
            if j < 0 or symbols[i] != a or symbols[j] != b:
                continue  # stale: one side was merged since this pair was queued
            symbols[i] = a + b
            symbols[j] = ""
            nxt[i] = nxt[j]
            if nxt[j] >= 0:
                prev[nxt[j]] = i
            left, right = prev[i], nxt[i]
            if left >= 0 and (r := ranks.get((symbols[left], symbols[i]))) is not None:
                heapq.heappush(heap, (r, left, symbols[left], symbols[i]))
            if right >= 0 and (r := ranks.get((symbols[i], symbols[right]))) is not None:
                heapq.heappush(heap, (r, i, symbols[i], symbols[right]))
        out = " ".join(s for s in symbols if s)
        if len(token) <= CACHE_WORD_MAX:  # long words are rare and would fill the cache
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
