"""Plain-language help for the words the page uses (ρ, reach, reach-day, RMSE, NSE, ...), for classrooms."""

from __future__ import annotations

import panel as pn
from panel.viewable import Viewer

from msgl_core import MIN_GROUP_OBS

#: Term -> explanation, in the order a newcomer meets them.
TERMS = {
    "Segment": "one of the 456 river segments of the USGS National Hydrologic Model (NHM) in the Delaware River "
               "Basin: the coarse scale, where observations, weather drivers and a process model are plentiful.",
    "Reach": "a piece of a segment, about 1 km long (one per NHDPlusV2 flowline, COMID): the fine scale, 3,229 "
             "in the basin, almost all of them never measured. Reach ids read `segment_k`.",
    "Reach-day": "one day on one reach. An observed reach-day has a measured daily mean water temperature.",
    "Sparsity ρ": "the share of observed reach-days in the training and validation periods that the model may "
                  "learn from: ρ = 1 % keeps one in a hundred, chosen at random but the same for every model. "
                  "Test-period observations are never hidden: they are what the model is scored on.",
    "Hold-out segment": "a segment whose reaches and coarse observations are all withheld from training, to "
                        "test the model where it has never seen data (an ungauged river).",
    "RMSE": "root-mean-square error, °C: the typical size of a prediction error on test days. Lower is better; "
            "1 °C is good for daily stream temperature.",
    "Bias": "mean of predicted − observed, °C: positive means the model runs warm, negative cold.",
    "MAE": "mean absolute error, °C: the average size of an error, less sensitive to a few large misses than RMSE.",
    "NSE": "Nash–Sutcliffe efficiency: 1 is a perfect fit, 0 means no better than always predicting the average "
           "observed temperature, below 0 worse than that.",
    "Test score": f"scores are computed on the test periods only, for reaches with at least {MIN_GROUP_OBS} test "
                  "observations (grey on the maps: fewer).",
    "Fold, repeat": "spatial cross-validation splits the segments into K groups of neighbouring river (folds); "
                    "each run is tested on one fold it never saw and trained on the others. A repeat is another "
                    "random split into K folds.",
    "σ²_P, σ²_S": "how much the test RMSE changes with which reaches the model happened to see (data partition, "
                  "σ²_P) and with the random start of training (seed, σ²_S), in °C². If two models differ by "
                  "less than these, the difference may be luck.",
}


class Glossary(Viewer):
    """A collapsed card explaining the page's terms."""

    def __panel__(self) -> pn.viewable.Viewable:
        text = "\n".join(f"- **{term}**: {meaning}" for term, meaning in TERMS.items())
        return pn.Card(pn.pane.Markdown(text, styles={"font-size": "0.85em"}), title="What do these words mean?",
                       collapsed=True, sizing_mode="stretch_width")
