"""docs/slide.png: a synthetic whole slide (mIF, 4096 px) under the tissue demo model, the heatmap of a text
over it. Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG to write, argv[2] a scratch folder for the
slide."""

from __future__ import annotations

import sys

from shot_window import shoot

TEXT = "tumour necrosis present"


def main() -> None:
    import numpy as np

    from cl_core.actions import make_slide

    files = make_slide(sys.argv[2], size=4096, seed=5)

    def ask(window) -> None:  # type: ignore[no-untyped-def]
        panel = window.panels["slide"]
        panel.open_slide(files.mif)
        panel.query.setText(TEXT)
        panel.show_button.click()

    shoot(sys.argv[1], lambda w: w.session.index is not None, ask, lambda w: w.session.slide is not None,
          note=lambda w: f"{np.isfinite(w.session.slide.shown).sum()} tissue tiles")


if __name__ == "__main__":
    main()
