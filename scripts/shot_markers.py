"""docs/markers.png: the tissue demo gallery, one H&E patch selected, its markers inferred with a clinical text;
with argv[2] = what-if (docs/what-if.png), eight H&E patches selected and their text edited from stage II to IV.
Run by scripts/screenshot.sh under xvfb; argv[1] is the PNG to write."""

from __future__ import annotations

import sys

from shot_window import shoot

TEXT = "stage III breast carcinoma; Ki67 high, PD-L1 negative"
WHAT_IF = ("stage II lung adenocarcinoma; moderate CD8 T-cell infiltrate", "stage IV lung adenocarcinoma; moderate "
           "CD8 T-cell infiltrate")


def main() -> None:
    what_if = sys.argv[2:3] == ["what-if"]

    def ask(window) -> None:  # type: ignore[no-untyped-def]
        session, panel = window.session, window.panels["markers"]
        part = next(p for p in session.index.parts.values() if p.modality.value == "image")
        if what_if:
            session.select_gallery(range(part.start, part.start + 8))
            panel.text.setText(WHAT_IF[0])
            panel.edited.setText(WHAT_IF[1])
            panel.tabs.setCurrentIndex(1)
            panel.what_if_button.click()
        else:
            session.select_gallery([part.start + 5])
            panel.text.setText(TEXT)
            panel.run_button.click()

    shoot(sys.argv[1], lambda w: w.session.index is not None, ask,
          lambda w: (w.session.counterfactual if what_if else w.session.markers) is not None)


if __name__ == "__main__":
    main()
