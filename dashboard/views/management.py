"""Days with predicted water temperature above 20 °C and 25 °C on each reach in a season and year: map, table, CSV.

The counts are :func:`msgl_core.days_above` of the current run's predictions: a day counts when the prediction is
strictly above the threshold, and days without a prediction are not counted (the table says how many were). For an
ensemble run the map shows the expected days above, :func:`msgl_core.expected_days_above` of its members'
exceedance probabilities (a day with P = 0.4 adds 0.4 day), and the table has both.
"""

from __future__ import annotations

import calendar
import io

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from dashboard.design import CHOICE_BUTTONS
from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.state import HEAT_THRESHOLDS
from dashboard.views import maps
from dashboard.views.tab_view import TabView
from msgl_core import (
    PARENT_SEGMENT,
    REACH,
    days_above,
    days_above_column,
    exceedance_variable,
    expected_days_above,
    expected_days_above_column,
)

WIDTH, MAX_HEIGHT = 560, 640
TABLE_WIDTH = 560
#: Sequential, colour-blind-safe colour map of day counts.
DAYS_CMAP = "viridis"
MONTH_OPTIONS = {calendar.month_abbr[m]: m for m in range(1, 13)}
#: Column headers of the table (the CSV keeps the core's column names).
LABELS = {**{days_above_column(t): f"days > {t:g} °C" for t in HEAT_THRESHOLDS},
          **{expected_days_above_column(t): f"expected days > {t:g} °C (members)" for t in HEAT_THRESHOLDS},
          "days_counted": "days counted"}


def season_label(months: list[int]) -> str:
    """``Jun–Aug`` for consecutive months, ``Jan, Mar`` otherwise, ``no months`` for none."""
    months = sorted(months)
    names = [calendar.month_abbr[m] for m in months]
    if len(months) > 2 and months == list(range(months[0], months[-1] + 1)):
        return f"{names[0]}–{names[-1]}"
    return ", ".join(names) or "no months"


class ManagementMap(TabView):
    """Per reach, the days above 20 °C and 25 °C of the chosen season and year, on a map and in a sortable table."""

    tab = "management"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._months = pn.widgets.CheckButtonGroup.from_param(self.state.param.season_months, options=MONTH_OPTIONS,
                                                              label="Season")
        self._year = pn.widgets.Select(label="Year", options={"all years": None}, value=None, width=130)
        self._threshold = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.heat_threshold, options={f"Map days above {t:g} °C": t for t in HEAT_THRESHOLDS},
            label="Threshold", **CHOICE_BUTTONS)
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._plot_box = maps.box(self._plot)
        self._summary = pn.pane.Markdown(sizing_mode="stretch_width")
        self._table = pn.widgets.Tabulator(pd.DataFrame(), height=560, width=TABLE_WIDTH, disabled=True, selectable=1,
                                           show_index=True, pagination=None, sizing_mode="fixed",
                                           widths={"reach": 95, PARENT_SEGMENT: 125, **dict.fromkeys(LABELS.values(), 105)},
                                           configuration={"columnDefaults": {"headerWordWrap": True}})
        self._csv = pn.widgets.FileDownload(callback=self._table_csv, filename="days_above.csv", label="Table (CSV)",
                                            width=200, embed=False, disabled=True)
        self._memo: dict = {}
        self._table.on_click(self._clicked_row)
        self._year.param.watch(lambda event: setattr(self.state, "season_year", event.new), "value")
        self.state.param.watch(self.refresh, ["results", "season_months", "season_year", "heat_threshold", "basemap"])
        self.refresh()

    def counts(self) -> pd.DataFrame:
        """The current run's :func:`msgl_core.days_above` table (both thresholds) for the chosen season and year,
        with each reach's ``parent_segment``; computed once per run, season and year.

        Raises ValueError (from :func:`msgl_core.days_above`) for an empty season or a year outside the record.
        """
        results = self.state.results
        assert results is not None
        months, year = sorted(self.state.season_months), self.state.season_year
        key = (id(results), tuple(months), year)
        if self._memo.get("key") != key:
            table = days_above(results.predictions["prediction"], HEAT_THRESHOLDS, months, year)
            if results.is_ensemble:  # the ensemble mean's counts, and the expected counts of the members
                probabilities = {t: results.predictions[exceedance_variable(t)] for t in HEAT_THRESHOLDS}
                expected = expected_days_above(probabilities, months, year).drop(columns="days_counted")
                table = table.join(expected)[[*(c for c in LABELS if c in table or c in expected), "season_days"]]
            table.insert(0, PARENT_SEGMENT, results.predictions[PARENT_SEGMENT].values)
            self._memo = {"key": key, "table": table}
        return self._memo["table"]

    def draw(self) -> None:
        """Redraw the map and table of the current run, season, year and threshold."""
        results = self.state.results
        if results is None:
            self._show("Load or train a run to count its days above 20 °C and 25 °C.")
            return
        years = {str(y): int(y) for y in np.unique(results.time.year)}
        year = self.state.season_year
        self._year.param.update(options={"all years": None, **years, **({str(year): year} if year is not None else {})},
                                value=year)
        try:
            table = self.counts()
        except ValueError as error:
            self._show(f"**{results.run.label()}**: {error}.")
            return
        threshold = self.state.heat_threshold
        ensemble = results.is_ensemble
        column = expected_days_above_column(threshold) if ensemble else days_above_column(threshold)
        season = f"{season_label(self.state.season_months)} {year if year is not None else '(all years)'}"
        r = self.state.resources
        bounds = Bounds.of(r.reaches.loc[results.reaches])
        frame_width = bounds.frame_size(WIDTH, MAX_HEIGHT)[0]
        what = f"{'Expected days' if ensemble else 'Days'} above {threshold:g} °C in {season}"
        title = maps.wrap_title(maps.run_title(results.run, what), frame_width)
        overlay = maps.basemap(r, self.state.basemap) * self._days_lines(table, column, threshold)
        overlay = overlay.opts(**maps.map_options(bounds, WIDTH, MAX_HEIGHT, title))
        hv.streams.Tap(source=overlay, x=None, y=None).add_subscriber(self._on_tap)
        self._plot.object = overlay
        days = int(table["season_days"].iloc[0])
        hot = int((table[column] > 0).sum())
        members = ("The map shows the **expected** days above, the sum of each day's probability that the members "
                   "exceed the threshold (a day with P = 0.4 adds 0.4 day); *days >* counts the days whose ensemble "
                   "mean does. Only days the ensemble sampled are counted. ") if ensemble else ""
        self._summary.object = (
            f"**{results.run.label()}**: days with predicted water temperature strictly above 20 °C and 25 °C, "
            f"{season}, {days:,} days. Days without a prediction are not counted (*days counted*). {members}"
            f"{hot:,} of {len(table):,} reaches have {'some expected' if ensemble else 'at least one'} day above "
            f"{threshold:g} °C. Click a reach or a row for its hydrograph; click a column header to sort.")
        shown = table.drop(columns="season_days").round(1).sort_values(column, ascending=False).rename(columns=LABELS)
        shown[PARENT_SEGMENT] = shown[PARENT_SEGMENT].astype(str)  # an id: no thousands separator
        shown.index.name = "reach"
        self._table.param.update(value=shown, visible=True, height=min(560, 60 + 26 * len(shown)),
                                 width=TABLE_WIDTH + (210 if ensemble else 0))  # two more columns
        months = "-".join(map(str, sorted(self.state.season_months)))
        self._csv.param.update(filename=f"{results.name}_days_above_months_{months}_{year or 'all_years'}.csv",
                               disabled=False)
        self._plot_box.visible = True

    def _days_lines(self, table: pd.DataFrame, column: str, threshold: float) -> hv.Overlay:
        """Domain reaches coloured by ``column`` (days above ``threshold``), grey where no day was counted."""
        r, results = self.state.resources, self.state.results
        assert results is not None
        pieces = r.reach_pieces[r.reach_pieces["reach"].isin(results.reaches)]
        rows = table.reindex(pieces["reach"])
        values = {c: rows[c].to_numpy() for c in (*LABELS, "season_days") if c in rows}
        shown = np.where(values["days_counted"] > 0, values[column], np.nan)
        lines = pieces[[*PIECE_COLUMNS, "reach"]].assign(**values, value=shown)
        top = float(max(np.nanmax(shown, initial=0.0), 1.0))
        above = {days_above_column(t): f"> {t:g} °C @{days_above_column(t)}" for t in HEAT_THRESHOLDS}
        hover = f"reach <b>@reach</b> · days {' · '.join(above.values())} · of @days_counted counted"
        label = f"days above {threshold:g} °C"
        if results.is_ensemble:
            label = f"expected {label} (members)"
            hover += " · expected " + " · ".join(f"> {t:g} °C @{expected_days_above_column(t)}{{0.0}}"
                                                   for t in HEAT_THRESHOLDS)
        return maps.grey_lines(pieces, 1.5) * maps.segments(lines, ["value", "reach", *values]).opts(
            color="value", cmap=DAYS_CMAP, clim=(0.0, top), line_width=3, colorbar=True,
            clabel=label, clipping_colors={"NaN": maps.NAN_COLOR}, tools=["hover"],
            hover_tooltips=maps.one_line(hover))

    def _show(self, message: str) -> None:
        self._summary.object = message
        self._plot_box.visible = self._table.visible = False
        self._csv.disabled = True

    def _table_csv(self) -> io.StringIO | None:
        """The table as CSV: reach, parent_segment, the day counts, days counted, season days, season and year."""
        if self.state.results is None:
            return None
        try:
            table = self.counts()
        except ValueError:
            return None
        year = self.state.season_year
        out = io.StringIO()
        table.assign(months=",".join(map(str, sorted(self.state.season_months))),
                     year="all" if year is None else year).rename_axis(REACH).to_csv(out)
        out.seek(0)
        return out

    def _on_tap(self, x: float | None, y: float | None) -> None:
        self.state.pick_reach(x, y)

    def _clicked_row(self, event: object) -> None:
        row = getattr(event, "row", None)
        if row is not None and 0 <= row < len(self._table.value):
            self.state.select_reach(str(self._table.value.index[row]))

    def __panel__(self) -> pn.viewable.Viewable:
        controls = pn.Row(pn.pane.Markdown("Season:", margin=(5, 5, 0, 10)), self._months, self._year,
                          self._threshold, sizing_mode="stretch_width")
        # A FlexBox: on a narrow screen the table wraps below the map instead of running off the page.
        return pn.Column(controls, self._summary, pn.FlexBox(self._plot_box, pn.Column(self._table, self._csv)),
                         sizing_mode="stretch_width")
