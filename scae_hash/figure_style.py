"""One look for every thesis figure: colour-blind-safe colours (Okabe & Ito; Tol's muted set
for the ten classes) and fonts that stay legible at page width."""

from __future__ import annotations

import matplotlib

# Okabe & Ito, "Color Universal Design" (2008): told apart with every common colour deficiency.
OKABE_ITO = {"orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73", "yellow": "#F0E442",
             "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7", "black": "#000000"}
TOL_WINE = "#882255"  # Tol's muted wine: the one more colour the methods need, dark enough on white
METHOD_COLOURS = {"scae": OKABE_ITO["vermillion"], "scae-features": OKABE_ITO["purple"], "itq": OKABE_ITO["blue"],
                  "lsh": OKABE_ITO["orange"], "pcah": OKABE_ITO["green"], "sh": OKABE_ITO["sky_blue"],
                  "imh": OKABE_ITO["black"], "imh-features": OKABE_ITO["black"],
                  "scae-manifold": TOL_WINE, "scae-manifold-features": TOL_WINE,
                  # The deep hashing vs deep metric comparison (scae_hash/comparison): the model family
                  # by colour (SCAE-hash's, the dual model's, the supervised Siamese network's), the
                  # ranking by marker. Sky blue and green are SH's and PCAH's, which it never shows.
                  "scae-two-stage-100": OKABE_ITO["vermillion"], "scae-two-stage-1000": OKABE_ITO["vermillion"],
                  "scae-dual-two-stage-100": OKABE_ITO["sky_blue"], "scae-dual-two-stage-1000": OKABE_ITO["sky_blue"],
                  "siamese-supervised": OKABE_ITO["green"], "siamese-supervised-features": OKABE_ITO["green"],
                  "scae+siamese-supervised-two-stage-1000": OKABE_ITO["green"]}
METHOD_MARKERS = {"scae": "D", "scae-features": "X", "itq": "o", "lsh": "s", "pcah": "^", "sh": "v",
                  "imh": "P", "imh-features": "*", "scae-manifold": "h", "scae-manifold-features": "H",
                  "scae-two-stage-100": "^", "scae-two-stage-1000": "v", "scae-dual-two-stage-100": "^",
                  "scae-dual-two-stage-1000": "v", "siamese-supervised": "D", "siamese-supervised-features": "X",
                  "scae+siamese-supervised-two-stage-1000": "v"}
OTHER_COLOURS = [OKABE_ITO[name] for name in ("black", "orange", "green", "sky_blue", "purple", "blue")]
# Tol's "muted" scheme (nine colours) plus black: ten classes on the 2-D maps.
CLASS_COLOURS = ["#332288", "#88CCEE", "#44AA99", "#117733", "#999933", "#DDCC77", "#CC6677", "#882255",
                 "#AA4499", "#000000"]
WRONG_COLOUR = OKABE_ITO["vermillion"]  # frame of a wrong-class retrieval result

STYLE = {
    "font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8, "ytick.labelsize": 8,
    "legend.fontsize": 8, "figure.titlesize": 11, "axes.spines.top": False, "axes.spines.right": False,
    "axes.grid": False, "grid.alpha": 0.3, "savefig.dpi": 150,
}


def apply_style() -> None:
    matplotlib.rcParams.update(STYLE)


def method_colour(method: str) -> str:
    """One colour per method in every panel and figure."""
    if method in METHOD_COLOURS:
        return METHOD_COLOURS[method]
    return OTHER_COLOURS[sum(map(ord, method)) % len(OTHER_COLOURS)]


def method_style(method: str) -> dict:
    """Colour, marker and line style of a method: told apart without colour too."""
    return {"color": method_colour(method), "marker": METHOD_MARKERS.get(method, "o"),
            "linestyle": "--" if method.endswith("-features") else "-"}
