"""Hand-built tiny river graphs shared by the graph and model tests."""

from __future__ import annotations

import numpy as np

INF = np.inf
#: A 5-reach Y-shaped river, 0 → 2, 1 → 2, 2 → 3 → 4 (outlet); river-dl convention, metres:
#: updown[i, j] = +d if j is downstream of i, -d if upstream, inf if not flow-connected.
Y_UPDOWN = np.array(
    [
        [0.0, INF, 1000.0, 3000.0, 4500.0],
        [INF, 0.0, 3000.0, 5000.0, 6500.0],
        [-1000.0, -3000.0, 0.0, 2000.0, 3500.0],
        [-3000.0, -5000.0, -2000.0, 0.0, 1500.0],
        [-4500.0, -6500.0, -3500.0, -1500.0, 0.0],
    ]
)
