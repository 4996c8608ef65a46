"""Download the current run's predictions (NetCDF, CSV) and per-reach metrics (GeoPackage, CSV)."""

from __future__ import annotations

import io
from collections.abc import Callable

import panel as pn
import param
from panel.viewable import Viewer

from dashboard.design import CHOICE_BUTTONS
from dashboard.state import AppState

#: Rows above which the whole-record CSV is refused in favour of the test-period CSV or NetCDF.
MAX_CSV_ROWS = 5_000_000


class Downloads(Viewer):
    """Four download buttons; files are generated when clicked, from the current run."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._period = pn.widgets.RadioButtonGroup(options={"whole record": False, "test periods only": True},
                                                   value=False, **CHOICE_BUTTONS)
        self._netcdf = self._button("Predictions (NetCDF)", self._predictions_netcdf)
        self._csv = self._button("Predictions (CSV)", self._predictions_csv)
        self._gpkg = self._button("Per-reach metrics (GeoPackage)", self._metrics_gpkg)
        self._metrics_csv = self._button("Per-reach metrics (CSV)", self._metrics_table)
        self._info = pn.pane.Markdown()
        self.state.param.watch(self._update, "results")
        self._period.param.watch(self._update, "value")
        self._update()

    @staticmethod
    def _button(label: str, callback: Callable[[], io.IOBase | None]) -> pn.widgets.FileDownload:
        return pn.widgets.FileDownload(callback=callback, filename="", label=label, width=300, embed=False)

    def _update(self, *events: object) -> None:
        results = self.state.results
        buttons = (self._netcdf, self._csv, self._gpkg, self._metrics_csv)
        if results is None:
            for button in buttons:
                button.disabled = True
            self._info.object = "Load or train a run to download its results."
            return
        name = results.name
        days = int((results.split == "test").sum()) if self._period.value else len(results.time)
        rows = days * len(results.reaches)
        suffix = "_test" if self._period.value else ""
        for button, filename in zip(buttons, (f"{name}_predictions.nc", f"{name}_predictions{suffix}.csv",
                                              f"{name}_per_reach_metrics.gpkg", f"{name}_per_reach_metrics.csv"),
                                    strict=True):
            button.param.update(filename=filename, disabled=False)
        self._csv.disabled = rows > MAX_CSV_ROWS
        self._info.object = (
            f"Run **{name}**: {len(results.reaches):,} reaches × {len(results.time):,} days. "
            "NetCDF: `prediction`, `water_temp_obs` (°C) and `obs_used` (1 = observation used for training/validation). "
            f"CSV: one row per reach-day ({rows:,} rows; °C)"
            + (", too many for CSV: choose the test periods or NetCDF." if rows > MAX_CSV_ROWS else ".")
            + " Metrics: test-period RMSE, MAE, bias (°C), NSE, KGE and observation count per reach, with geometry "
              "(EPSG:4326) in the GeoPackage.")

    def _guard(self, make: Callable[[], io.IOBase]) -> io.IOBase | None:
        if self.state.results is None:
            return None
        try:
            return make()
        except (OSError, ValueError) as error:
            self.state.say(f"Download failed: {error}", "danger")
            return None

    def _predictions_netcdf(self) -> io.IOBase | None:
        return self._guard(lambda: self.state.results.predictions_netcdf())

    def _predictions_csv(self) -> io.IOBase | None:
        return self._guard(lambda: self.state.results.predictions_csv(test_only=bool(self._period.value)))

    def _metrics_gpkg(self) -> io.IOBase | None:
        return self._guard(lambda: self.state.results.metrics_geopackage(self.state.resources.reaches))

    def _metrics_table(self) -> io.IOBase | None:
        return self._guard(lambda: self.state.results.metrics_csv(self.state.resources.reaches))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._info, pn.Row(pn.pane.Markdown("CSV covers:"), self._period), self._netcdf, self._csv,
                         self._gpkg, self._metrics_csv)
