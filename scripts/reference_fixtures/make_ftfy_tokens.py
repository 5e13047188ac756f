"""open_clip's CLIP tokenizer ids for text that needs ftfy's repairs (mojibake, HTML entities, odd spacing),
for tests/test_clip_tokenizer.py. Run in the throwaway environment of make_openclip_refs.py (open_clip
installs ftfy):

    /tmp/refvenv/bin/python scripts/reference_fixtures/make_ftfy_tokens.py tests/fixtures/ftfy_tokens.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TEXTS = ["The Mona Lisa doesnÃ¢â‚¬â„¢t have eyebrows.", "â€œquotedâ€\x9d text", "Ã©tÃ© &amp; cafÃ©",
         "ﬁne ligatures ＦＵＬＬＷＩＤＴＨ", "plain text stays as it was", "l'été au café"]


def main(out: Path) -> None:
    import ftfy
    import open_clip

    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    ids = tokenizer(TEXTS).tolist()
    out.write_text(json.dumps({"open_clip": open_clip.__version__, "ftfy": ftfy.__version__,
                               "texts": TEXTS, "ids": [[i for i in row if i] for row in ids]}, indent=1) + "\n")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
