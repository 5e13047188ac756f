"""Write cl_core/models/timm_vits.py: the architecture arguments timm gives each of its plain
VisionTransformer names (what the weights cannot tell: heads, activation, norm eps, default pooling).

Run in the throwaway environment that has timm (see make_openclip_refs.py):

    /tmp/refvenv/bin/python scripts/reference_fixtures/timm_vit_table.py cl_core/models/timm_vits.py

Names whose blocks, norms or attention are not timm's plain ones (custom block_fn, RmsNorm, SiLU/SwiGLU
MLPs, differential attention, dynamic image size) are left out, so they are refused rather than mis-run.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

HEADER = '''"""Architecture arguments of timm's plain VisionTransformer models, by name (timm {version}'s own
model_args, read from its registry by scripts/reference_fixtures/timm_vit_table.py). Width, depth and patch size
are also read from the weights; what the weights cannot tell (heads, activation, norm eps, default pooling) comes
from here, so a name missing from this table is refused rather than guessed."""

from __future__ import annotations

from typing import Any

TIMM_VITS: dict[str, dict[str, Any]] = {{
'''


def table() -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    import timm.models.vision_transformer as vt
    from timm import list_models

    seen: dict[str, dict[str, Any]] = {}

    def capture(variant: str, pretrained: bool = False, **kw: Any) -> None:
        seen[variant] = kw

    vt._create_vision_transformer = capture  # record the arguments instead of building the model
    out: dict[str, dict[str, Any]] = {}
    skipped: dict[str, str] = {}
    for name in (n for n in list_models("vit_*") if hasattr(vt, n)):
        seen.clear()
        getattr(vt, name)(pretrained=False)
        if name not in seen:
            skipped[name] = "built by another class"
            continue
        kw = dict(seen[name])
        norm = kw.pop("norm_layer", None)
        if norm is not None:
            if not (isinstance(norm, functools.partial) and set(norm.keywords) == {"eps"}):
                skipped[name] = f"norm {norm}"
                continue
            kw["norm_eps"] = norm.keywords["eps"]
        if kw.get("act_layer") is not None and not isinstance(kw["act_layer"], str):
            skipped[name] = f"activation {kw['act_layer']}"
            continue
        if "attn_layer" in kw or kw.get("dynamic_img_size") or any(
                not isinstance(v, int | float | str | bool | type(None)) for v in kw.values()):
            skipped[name] = "attention, block or size options"
            continue
        kw.pop("img_size", None)  # the grid is read from the weights' position embedding
        out[name] = kw
    return out, skipped


def main(target: Path) -> None:
    import timm

    out, skipped = table()
    lines = [HEADER.format(version=timm.__version__)]
    lines += [f"    {name!r}: {dict(sorted(args.items()))!r},\n" for name, args in sorted(out.items())]
    lines.append("}\n")
    target.write_text("".join(lines))
    print(f"{len(out)} names written, {len(skipped)} left out: {', '.join(sorted(skipped))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
