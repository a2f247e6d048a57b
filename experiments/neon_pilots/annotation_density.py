"""How densely each NEON image is annotated: crowns per megapixel and their median side.

    python experiments/neon_pilots/annotation_density.py      # reads data/neon_trees (make install)

The larger Yellowstone crop has half the crowns per pixel of the smaller one (same site and flight):
many of its visible crowns carry no box. It was the first split's training image; it is now the test
image, and the densely boxed smaller crop is trained on.
"""

import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from lga.analysis.tables import markdown_table  # noqa: E402
from lga.data.neon import DEFAULT_SPLITS, NEON_IMAGES, read_source  # noqa: E402

ROOT = Path(__file__).resolve().parents[2] / "data" / "neon_trees"


def density() -> pd.DataFrame:
    rows = []
    split_of = {name: split for split, names in DEFAULT_SPLITS.items() for name in names}
    for name in NEON_IMAGES:
        source = read_source(ROOT, name, ["Tree"])
        height, width = source.pixels.shape[1:]
        sides = ((source.boxes[:, 2] - source.boxes[:, 0]) * (source.boxes[:, 3] - source.boxes[:, 1])).sqrt()
        rows.append({
            "image": name, "default split": split_of[name], "size": f"{width}x{height}", "crowns": len(source.boxes),
            "crowns per Mpx": round(len(source.boxes) / (width * height) * 1e6, 1),
            "median side (px)": round(float(sides.median()), 1),
        })  # fmt: skip
    return pd.DataFrame(rows)


if __name__ == "__main__":
    table = density()
    print(markdown_table(list(table.columns), table.astype(str).values.tolist()))
