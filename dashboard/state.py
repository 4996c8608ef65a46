"""Per-session state: the run settings being edited and everything the views show.

:class:`RunSettings` holds the choices that define a run and turns them into a
:class:`msgl_core.RunConfig`; :class:`AppState` holds the session (current run, day, reach,
training job, messages) and implements every user action. Views only read these parameters and
call these methods, so all logic here is tested without a browser. One :class:`AppState` is
created per browser session; nothing here is shared between sessions except the read-only
:class:`~dashboard.resources.Resources` and cached run results.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import param

from dashboard.jobs import FINISHED, Progress, TrainingJob, running_job, start_or_follow
from dashboard.resources import Resources
from dashboard.results import RunResults, open_results, read_run
from msgl_core import (
    DEVICES,
    PARENT_SEGMENT,
    THRESHOLDS,
    WHOLE_BASIN,
    ObservationCounts,
    Run,
    RunConfig,
    comparisons_root,
    is_complete,
    list_runs,
    observation_counts,
    run_path,
    runs_root,
    variant_names,
)

log = logging.getLogger(__name__)

#: Domain choice meaning "everything upstream of :attr:`RunSettings.outlet`".
UPSTREAM = "upstream"
#: Sparsity values offered by the slider (kept fraction ρ).
SPARSITY_STEPS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
#: Epochs used when the base config asks for more: a demo trains in minutes on a CPU.
DEMO_EPOCHS = 10
VIEWS = ("network", "day", "errors", "calibration", "compare", "cv", "management", "downloads")
#: Water temperatures (°C) whose exceedance days the Management tab counts and whose probabilities an
#: ensemble run stores (msgl_core's THRESHOLDS).
HEAT_THRESHOLDS = THRESHOLDS
#: The colour scales that need an ensemble run (the members' probability of exceeding 20 or 25 °C).
EXCEEDANCE_SCALES = {f"exceed{t:g}": t for t in HEAT_THRESHOLDS}
#: Colour scales of the day map (:attr:`AppState.color_scale`).
COLOR_SCALES = ("day", "season", "record", "anomaly", *EXCEEDANCE_SCALES)
ALERT_LEVELS = ("info", "success", "warning", "danger")


def cuda_available() -> bool:
    """True when torch sees a CUDA GPU."""
    import torch

    return bool(torch.cuda.is_available())


class RunSettings(param.Parameterized):
    """The user's choices for the next run; :meth:`to_config` validates them through :class:`RunConfig`."""

    variant = param.Selector(default="msgl", objects=variant_names(),
                             doc="Model variant from the msgl_core registry (`msgl variants` lists them).")
    domain = param.Selector(default=WHOLE_BASIN, objects=[WHOLE_BASIN, UPSTREAM],
                            doc="Spatial domain: 'drb' (whole basin), a preset sub-basin, or 'upstream' of `outlet`.")
    outlet = param.Integer(default=None, allow_None=True,
                           doc="seg_id_nat of the outlet segment when `domain` is 'upstream' (click the network map).")
    sparsity = param.Number(default=1.0, bounds=(0.0, 1.0), inclusive_bounds=(False, True),
                            doc="Kept fraction ρ of observed fine reach-days in the training and validation periods.")
    seed = param.Integer(default=1, bounds=(0, 2**31 - 1), doc="Model seed (weights, dropout).")
    epochs = param.Integer(default=DEMO_EPOCHS, bounds=(1, 1000), doc="Number of training epochs.")
    reservoir_features = param.Boolean(default=False, doc=(
        "Give the model the nearest upstream dam (GRanD) as inputs: how close along the channel, its storage "
        "and its degree of regulation. Helps reaches below reservoirs, whose cold releases no weather explains."))
    device = param.Selector(default="auto", objects=list(DEVICES),
                            doc="Training device: auto (GPU when present), cpu or cuda.")
    threads = param.Integer(default=1, bounds=(1, max(os.cpu_count() or 1, 1)),
                            doc="torch CPU threads for training (1 keeps the page responsive on small CPUs).")
    base = param.ClassSelector(class_=RunConfig, default=RunConfig(), instantiate=False,
                               doc="Config that the choices override (periods, window, learning rate, ...).")

    def __init__(self, presets: Sequence[str] = (), **params: object) -> None:
        super().__init__(**params)
        self.param.domain.objects = [WHOLE_BASIN, *presets, UPSTREAM]
        if self.domain not in self.param.domain.objects:
            self.domain = WHOLE_BASIN

    @classmethod
    def from_config(cls, cfg: RunConfig, presets: Sequence[str] = ()) -> RunSettings:
        """Settings initialised from ``cfg`` (which becomes :attr:`base`); more than :data:`DEMO_EPOCHS` epochs are capped."""
        settings = cls(presets, base=cfg)
        settings.apply_config(cfg)
        settings.epochs = min(cfg.epochs, DEMO_EPOCHS)
        return settings

    @property
    def basin(self) -> str:
        """The ``basin`` of the config: "drb", a preset name, or the outlet ``seg_id_nat`` as text.

        Raises ValueError when the domain is 'upstream' and no outlet was chosen.
        """
        if self.domain == UPSTREAM:
            if self.outlet is None:
                raise ValueError("choose the outlet segment: click a segment on the Network map")
            return str(self.outlet)
        return self.domain

    def to_config(self) -> RunConfig:
        """The run config of these choices. Raises ValueError with a readable message when invalid."""
        return self.base.with_overrides(variant=self.variant, basin=self.basin, sparsity=float(self.sparsity),
                                        seed=int(self.seed), epochs=int(self.epochs), device=self.device,
                                        threads=int(self.threads), reservoir_features=bool(self.reservoir_features))

    def apply_config(self, cfg: RunConfig) -> None:
        """Show ``cfg``'s choices (variant, domain, sparsity, seed, epochs, reservoir inputs); device and threads are
        kept. The rest of ``cfg`` (periods, learning rate, hold-out, ensemble settings, ...) becomes :attr:`base`, so
        that the settings describe ``cfg``'s run, not a run of the defaults with the same choices."""
        domain, outlet = cfg.basin.lower(), self.outlet
        if domain not in self.param.domain.objects:
            try:
                outlet, domain = int(cfg.basin), UPSTREAM
            except ValueError:
                domain = WHOLE_BASIN
        values = {"domain": domain, "outlet": outlet, "sparsity": cfg.sparsity, "seed": cfg.seed,
                  "epochs": min(cfg.epochs, self.param.epochs.bounds[1]), "reservoir_features": cfg.reservoir_features,
                  "base": cfg}
        if cfg.variant in self.param.variant.objects:
            values["variant"] = cfg.variant
        self.param.update(**values)


@dataclass(frozen=True)
class SettingsCheck:
    """What the current settings would do.

    Attributes:
        config: the run config (None when the settings are invalid).
        error: why the settings cannot be used ("" when they can).
        existing: folder of the cached run with this config, if any (it loads instead of training).
        n_segments, n_reaches: size of the domain.
        counts: the domain's observed fine reach-days on fit days, after the hold-out and the
            sparsity mask, exactly as training uses them (:func:`msgl_core.observation_counts`);
            None when the settings are invalid.
        training: the server's running training of this config, if any (Train then follows it).
    """

    config: RunConfig | None
    error: str = ""
    existing: Path | None = None
    n_segments: int = 0
    n_reaches: int = 0
    counts: ObservationCounts | None = None
    training: TrainingJob | None = None

    @property
    def ok(self) -> bool:
        """True when the settings can be trained or loaded."""
        return not self.error and self.config is not None


class AppState(param.Parameterized):
    """Everything one browser session shows and does; views read it, user actions are its methods.

    Temperatures are °C throughout. Map coordinates are Web Mercator metres.
    """

    resources = param.ClassSelector(class_=Resources, instantiate=False,
                                    doc="Read-only dataset and map geometry shared by all sessions.")
    settings = param.ClassSelector(class_=RunSettings, instantiate=False, doc="Choices for the next run.")
    runs_dir = param.ClassSelector(class_=Path, default=None, allow_None=True,
                                   doc="Run cache folder (None: $MSGL_RUNS_DIR, else ./runs).")
    comparisons_dir = param.ClassSelector(class_=Path, default=None, allow_None=True,
                                          doc="Folder of `msgl compare` outputs, one subfolder per basin "
                                              "(None: $MSGL_COMPARISONS_DIR, else ./comparisons).")
    check = param.ClassSelector(class_=SettingsCheck, instantiate=False,
                                doc="Validation of `settings`: config, error, existing run, reach-day counts.")
    results = param.ClassSelector(class_=RunResults, default=None, allow_None=True, instantiate=False,
                                  doc="The current run with its predictions (None before a run is loaded).")
    run_name = param.String(default=None, allow_None=True,
                            doc="Folder name of the current run in the run cache (None before a run is loaded).")
    date = param.Date(default=None, allow_None=True, doc="Day shown on the day maps.")
    reach = param.String(default=None, allow_None=True, doc="Selected reach id ('{seg_id_nat}_{k}') for the reach panel.")
    clicked_segment = param.Integer(default=None, allow_None=True,
                                    doc="seg_id_nat last clicked on the network map (outlet of the 'upstream' domain).")
    basemap = param.Boolean(default=False, doc="Draw a tile basemap (turned on once the browser shows it can load tiles).")
    tiles_online = param.Boolean(default=None, allow_None=True,
                                 doc="Whether the browser can load basemap tiles (None until it has tried).")
    show_reaches = param.Boolean(default=True, doc="Draw the ~3,200 fine reaches on the network map.")
    show_sites = param.Boolean(default=True, doc="Draw observation sites, reservoirs and dams on the network map.")
    error_metric = param.Selector(default="rmse", objects=["rmse", "bias", "mae"],
                                  doc="Per-reach test metric of the error maps (°C).")
    color_scale = param.Selector(
        default="day", objects=list(COLOR_SCALES),
        doc="Colour scale of the day map: 'day' (the day's 2nd–98th percentile of predictions), 'season' (the "
            "calendar month's over the record), 'record' (the whole record's), 'anomaly' (predicted minus the "
            "reach's day-of-year climatology of the run's predictions, diverging), or, for an ensemble run, "
            "'exceed20'/'exceed25' (the probability that the day's temperature exceeds 20/25 °C, 0–1).")
    season_months = param.ListSelector(default=[6, 7, 8], objects=list(range(1, 13)),
                                       doc="Calendar months (1–12) of the season counted on the Management tab.")
    season_year = param.Integer(default=None, allow_None=True,
                                doc="Calendar year counted on the Management tab (None: every year of the record).")
    heat_threshold = param.Selector(default=HEAT_THRESHOLDS[0], objects=list(HEAT_THRESHOLDS),
                                    doc="Water temperature (°C) whose days above colour the Management map.")
    cached_runs = param.List(default=[], item_type=Run, doc="Complete runs in the run cache, newest first.")
    skipped_runs = param.List(default=[], item_type=str, doc="Run folders that could not be read (with the reason).")
    job = param.ClassSelector(class_=TrainingJob, default=None, allow_None=True, instantiate=False,
                              doc="The running training job of this session (None when idle).")
    progress = param.ClassSelector(class_=Progress, default=None, allow_None=True, instantiate=False,
                                   doc="Latest snapshot of the training job (kept after it ends).")
    alert = param.String(default="", doc="Message shown at the top of the page ('' hides it).")
    alert_level = param.Selector(default="info", objects=list(ALERT_LEVELS), doc="Colour of the message.")
    view = param.Selector(default="network", objects=list(VIEWS), doc="Main tab shown.")

    def __init__(self, resources: Resources, base: RunConfig | None = None, runs_dir: str | Path | None = None,
                 **params: object) -> None:
        base = base or RunConfig()
        settings = RunSettings.from_config(base, resources.presets)
        super().__init__(resources=resources, settings=settings, runs_dir=None if runs_dir is None else Path(runs_dir),
                         check=SettingsCheck(None), **params)
        if not cuda_available() and settings.device == "cuda":
            settings.device = "auto"
        settings.param.watch(self._recheck, ["variant", "domain", "outlet", "sparsity", "seed", "epochs", "device",
                                             "threads", "reservoir_features", "base"])
        self.refresh_runs()
        self._recheck()

    # -- messages --------------------------------------------------------------------------------

    def say(self, text: str, level: str = "info") -> None:
        """Show ``text`` at the top of the page (level: info, success, warning, danger)."""
        self.param.update(alert=text, alert_level=level)

    def dismiss(self) -> None:
        """Hide the message."""
        self.alert = ""

    def tiles_checked(self, online: bool | None) -> None:
        """Record whether the browser can load tiles; the first positive answer turns the basemap on."""
        if online is None or online == self.tiles_online:
            return
        self.param.update(tiles_online=bool(online), basemap=bool(online))

    # -- settings --------------------------------------------------------------------------------

    @property
    def runs_folder(self) -> Path:
        """The run cache folder actually used."""
        return runs_root(self.runs_dir)

    def comparisons_folder(self) -> Path | None:
        """The folder of ``msgl compare`` and ``msgl cv`` outputs actually used (None when it is a file)."""
        try:
            return comparisons_root(self.comparisons_dir)
        except ValueError:
            return None

    def _recheck(self, *events: object) -> None:
        self.check = self.check_settings()
        if self.job is None and self.check.training is not None:  # e.g. this page was reloaded while it trains
            self.follow(self.check.training)

    def check_settings(self) -> SettingsCheck:
        """Validate :attr:`settings` and count the domain's reaches and reach-days (never raises).

        The domain, its hold-out and the reach-day counts are msgl_core's (:func:`msgl_core.observation_counts`).
        """
        s = self.settings
        try:
            cfg = s.to_config()
            counts = observation_counts(self.resources.data, cfg)
            segments = self.resources.domain_segments(cfg.basin)
        except ValueError as error:
            return SettingsCheck(None, str(error))
        existing = run_path(cfg, self.resources.data.path.name, self.runs_dir)
        found = {"existing": existing if is_complete(existing) else None, "n_segments": len(segments),
                 "n_reaches": int(self.resources.reaches[PARENT_SEGMENT].isin(segments).sum()), "counts": counts,
                 "training": running_job(existing)}
        if cfg.device == "cuda" and not cuda_available():
            return SettingsCheck(cfg, "no CUDA GPU is available on this server; choose auto or CPU", **found)
        if found["existing"] is None and found["training"] is None and counts.train_eligible == 0:
            held = " outside the hold-out" if cfg.holdout_segments else ""
            return SettingsCheck(cfg, f"domain {cfg.basin!r} has no fine observations{held} in the training periods; "
                                      "choose a larger domain", **found)
        return SettingsCheck(cfg, "", **found)

    def set_number(self, name: str, value: float | None) -> str:
        """Set the whole-number setting ``name`` (``seed``, ``epochs`` or ``threads``) to a typed ``value``.

        Returns "" when set, else why it was refused (not a whole number, or outside the setting's
        bounds); a refused value leaves the setting as it was.
        """
        setting = self.settings.param[name]
        low, high = setting.bounds
        if value is None or not math.isfinite(value) or not float(value).is_integer() or not low <= value <= high:
            typed = "nothing" if value is None else f"{value:g}"
            return (f"{setting.label} must be a whole number from {low:,} to {high:,} (typed {typed}); "
                    f"kept {getattr(self.settings, name):,}.")
        setattr(self.settings, name, int(value))
        return ""

    # -- run cache -------------------------------------------------------------------------------

    def refresh_runs(self) -> None:
        """Re-read the run cache (complete runs, newest first); unreadable folders go to :attr:`skipped_runs`."""
        listing = list_runs(self.runs_folder, load=read_run)
        self.param.update(cached_runs=listing.runs, skipped_runs=listing.unreadable)

    # -- loading and training --------------------------------------------------------------------

    def load(self, path: str | Path) -> bool:
        """Make the run in ``path`` current; on failure show why and keep the current run. Returns success."""
        try:
            results = open_results(path)
        except (OSError, ValueError, KeyError, TypeError) as error:
            self.say(f"Could not load run {Path(path).name}: {error}", "danger")
            return False
        unknown = results.reaches.difference(self.resources.reaches.index)
        if len(unknown):
            self.say(f"Run {results.name} was made on other data ({len(unknown)} of its reaches, e.g. "
                     f"{unknown[0]}, are not in this dataset); it cannot be shown.", "danger")
            return False
        self.settings.apply_config(results.run.config)
        self.param.update(results=results, run_name=results.name, date=results.default_date(), reach=None, view="day")
        note = ""
        if results.run.data_fingerprint != self.resources.data.path.name:
            note = f" (made with data {results.run.data_fingerprint}; this server uses {self.resources.data.path.name})"
        verdict = self.resources.reliability(results.run)
        if not verdict.ok:  # never shown in green (msgl_core's rule)
            note += f". Unreliable: {'; '.join(verdict.reasons)}"
        self.say(f"Loaded {results.run.label()}{note}. Click a reach on a map to see its hydrograph.",
                 "success" if not note else "warning")
        return True

    def shown_run_note(self) -> str:
        """Which run the maps show, and whether the settings now describe another one ("" before a run is loaded)."""
        if self.results is None:
            return ""
        note = f"**Maps show:** {self.results.run.label()}"
        cfg = self.check.config
        if cfg is not None and run_path(cfg, self.resources.data.path.name, self.runs_dir).name != self.results.name:
            action = "Load" if self.check.existing is not None else "Train"
            note += (f" · the settings now describe {cfg.variant} on {cfg.basin} (ρ {cfg.sparsity * 100:g} %, seed "
                     f"{cfg.seed}): press {action} to show that run.")
        return note

    def load_named(self, name: str) -> bool:
        """Load the run folder ``name`` of the run cache (a plain folder name, as in a shared URL). Returns success."""
        if not name or Path(name).name != name or name in (".", ".."):
            self.say(f"Run {name!r} is not a run folder name.", "danger")
            return False
        if not is_complete(self.runs_folder / name):
            self.say(f"Run {name} is not in this server's run cache; train it, or load another run.", "warning")
            return False
        return self.load(self.runs_folder / name)

    def train(self) -> None:
        """Train the current settings in the background, load the cached run with the same config, or
        follow the server's running training of it."""
        if self.job is not None:
            self.say("A training is already running in this session; cancel it first.", "warning")
            return
        check = self.check_settings()
        self.check = check
        if check.existing is not None:
            self.load(check.existing)
            return
        if not check.ok or check.config is None:
            self.say(f"Cannot train: {check.error}", "danger")
            return
        path = run_path(check.config, self.resources.data.path.name, self.runs_dir)
        job, started = start_or_follow(check.config, self.resources.data, path, self.runs_dir)
        if started:
            self.param.update(job=job, progress=job.progress())
            self.say(f"Training {check.config.variant} on {check.config.basin} for {check.config.epochs} epochs "
                     "in the background; the page stays usable.", "info")
        else:
            self._show_job(job)

    def follow(self, job: TrainingJob) -> None:
        """Show the progress of the server's running training ``job`` in this session (it loads when done)."""
        if self.job is job:
            return
        job.follow()
        self._show_job(job)

    def _show_job(self, job: TrainingJob) -> None:
        self.param.update(job=job, progress=job.progress())
        others = job.followers - 1
        self.say(f"A training of {job.cfg.variant} on {job.cfg.basin} with these settings is already running on "
                 f"this server{f' (shown in {others} other page(s))' if others else ''}; showing its progress.",
                 "info")

    def cancel(self) -> None:
        """Cancel the running training: it stops within one training step (for every page that shows it)."""
        job = self.job
        if job is None:
            return
        job.cancel()
        others = job.followers - 1
        self.say("Cancelling: the training stops after its current step"
                 + (f" (also for {others} other page(s) showing it)." if others > 0 else "."), "warning")

    def leave(self) -> None:
        """The page is closed or reloaded: stop showing the training, which goes on and is cached."""
        if self.job is not None:
            self.job.leave()

    def poll(self) -> bool:
        """Copy the job's progress into :attr:`progress`; on completion load or report. Returns True while it runs."""
        job = self.job
        if job is None:
            return False
        progress = job.progress()
        self.progress = progress
        if progress.status not in FINISHED:
            return True
        self.job = None
        if progress.status == "done" and progress.run is not None:
            self.refresh_runs()
            if self.load(progress.run.path):
                done = (f"Trained in {progress.seconds:.0f} s" if progress.epoch else "Loaded") + (
                    f" ({progress.message})" if progress.message else "")
                self.say(f"{done}. {self.alert}", "success")
        elif progress.status == "cancelled":
            self.say(f"Training cancelled: {progress.message}", "warning")
        else:
            self.say(f"Training failed: {progress.message}", "danger")
        self._recheck()
        return False

    # -- picking on maps -------------------------------------------------------------------------

    def pick_reach(self, x: float | None, y: float | None, max_distance: float | None = None) -> str | None:
        """Select the current run's reach nearest to the map point (x, y) (Web Mercator, m); returns its id.

        ``max_distance`` defaults to 3 % of the domain's extent (at least 300 m).
        """
        if self.results is None or x is None or y is None:
            return None
        reaches = self.resources.reaches.loc[self.results.reaches]
        if max_distance is None:
            left, bottom, right, top = reaches.total_bounds
            max_distance = max(300.0, 0.03 * math.hypot(right - left, top - bottom))
        reach = self.resources.nearest_reach(x, y, self.results.reaches, max_distance)
        if reach is not None:
            self.reach = reach
        return reach

    def pick_segment(self, x: float | None, y: float | None, max_distance: float = 3000.0) -> int | None:
        """Make everything upstream of the segment nearest to the map point (x, y) (Web Mercator, m) the domain.

        Returns the segment's seg_id_nat, or None (and nothing changes) when no segment is within ``max_distance`` m.
        """
        if x is None or y is None:
            return None
        segment = self.resources.nearest_segment(x, y, max_distance)
        if segment is None:
            return None
        self.clicked_segment = segment
        self.settings.param.update(outlet=segment, domain=UPSTREAM)
        return segment

    def select_reach(self, reach: str | None) -> None:
        """Select ``reach`` by id (ignored unless it is in the current run's domain)."""
        if reach and self.results is not None and reach in self.results.reaches:
            self.reach = reach
