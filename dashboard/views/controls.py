"""Run settings: domain, variant, sparsity (with the reach-days it keeps), seed, epochs, reservoir inputs, device;
Train."""

from __future__ import annotations

import panel as pn
import param
from panel.viewable import Viewer

from dashboard.state import SPARSITY_STEPS, UPSTREAM, AppState, cuda_available
from msgl_core import PARENT_SEGMENT, WHOLE_BASIN, get_variant, variants_by_family

#: Inputs of whole-number settings: (setting, label, width px); typed values are checked by AppState.set_number.
NUMBERS = (("seed", "Seed", 100), ("epochs", "Epochs", 100), ("threads", "CPU threads", 100))


def sparsity_label(value: float) -> str:
    """Percent label of a kept fraction, e.g. 0.001 -> '0.1 %'."""
    return f"{value * 100:g} %"


def variant_groups() -> dict[str, dict[str, str]]:
    """The registry's variants for a grouped select: family → {"friendly title (registry key)": key}."""
    return {family: {f"{v.title} ({v.name})": v.name for v in members}
            for family, members in variants_by_family().items()}


def device_options(gpu: bool) -> dict[str, str]:
    """Devices a user can choose: CUDA only when this server has a GPU (never an option that cannot work)."""
    options = {"auto (GPU if present)": "auto", "CPU": "cpu"}
    if gpu:
        options["GPU (CUDA)"] = "cuda"
    return options


class RunControls(Viewer):
    """Widgets for :class:`~dashboard.state.RunSettings`, the validation message and the Train button."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        s, r = self.state.settings, self.state.resources
        options = {f"Whole DRB ({len(r.reaches):,} reaches)": WHOLE_BASIN}
        for name in r.presets:
            n = int(r.reaches[PARENT_SEGMENT].isin(r.domain_segments(name)).sum())
            options[f"{name.title()} ({n:,} reaches)"] = name
        options["Upstream of a clicked segment"] = UPSTREAM
        self._domain = pn.widgets.Select.from_param(s.param.domain, label="Domain", options=options,
                                                    description="Whole basin, a preset sub-basin, or everything "
                                                                "upstream of the segment you click on the Network map.")
        self._variant = pn.widgets.Select(label="Model variant", groups=variant_groups(), value=s.variant,
                                          description="Multi-scale models, fine-only graph baselines and "
                                                      "downscaling baselines; the registry key "
                                                      "(`msgl train --variant KEY`) is in parentheses.")
        self._variant.param.watch(lambda event: setattr(s, "variant", event.new), "value")
        s.param.watch(lambda event: setattr(self._variant, "value", event.new), "variant")
        self._variant_info = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        self._sparsity = pn.widgets.DiscreteSlider(label="Fine-data sparsity ρ (kept share of observations)",
                                                   options=self._sparsity_options(s.sparsity), value=s.sparsity)
        self._counts = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        # Plain number inputs (no widget bounds, which would silently clamp or revert a typed value): the
        # state checks each value and says why one is refused.
        self._numbers = {name: pn.widgets.FloatInput(label=label, value=float(getattr(s, name)), step=1, width=width,
                                                     description=s.param[name].doc)
                         for name, label, width in NUMBERS}
        self._number_problem = pn.pane.Alert(alert_type="danger", visible=False, margin=(5, 10))
        for name, widget in self._numbers.items():
            widget.param.watch(lambda event, name=name: self._number_typed(name, event.new), "value")
            s.param.watch(lambda event, name=name: setattr(self._numbers[name], "value", float(event.new)), name)
        self._reservoirs = pn.widgets.Checkbox.from_param(s.param.reservoir_features,
                                                          name="Reservoir inputs (dams upstream)")
        self._reservoirs_help = pn.widgets.TooltipIcon(value=s.param.reservoir_features.doc)
        gpu = cuda_available()
        self._device = pn.widgets.Select.from_param(s.param.device, label="Device", options=device_options(gpu))
        self._device_note = pn.pane.Markdown("" if gpu else "No CUDA GPU on this server: training runs on the CPU.",
                                             styles={"font-size": "0.85em"}, margin=(0, 10), visible=not gpu)
        self._problem = pn.pane.Alert(alert_type="warning", visible=False, margin=(5, 10))
        self._train = pn.widgets.Button(label="Train", color="primary", sizing_mode="stretch_width",
                                        description="Train in the background, or load the cached run with these settings.")
        self._train.on_click(lambda event: self.state.train())
        self._sparsity.param.watch(self._sparsity_chosen, "value")
        s.param.watch(self._sparsity_changed, "sparsity")
        s.param.watch(self._describe_variant, "variant")
        self.state.param.watch(self._checked, ["check", "job"])
        self._describe_variant()
        self._checked()

    @staticmethod
    def _sparsity_options(current: float) -> dict[str, float]:
        values = sorted({*SPARSITY_STEPS, float(current)})
        return {sparsity_label(v): v for v in values}

    def _number_typed(self, name: str, value: float | None) -> None:
        if value is not None and value == getattr(self.state.settings, name):
            return  # the setting's own value shown back (after a refusal, or from a loaded run)
        problem = self.state.set_number(name, value)
        self._number_problem.param.update(object=problem, visible=bool(problem))
        if problem:  # show the value that is kept
            self._numbers[name].value = float(getattr(self.state.settings, name))

    def _sparsity_chosen(self, event: param.parameterized.Event) -> None:
        self.state.settings.sparsity = float(event.new)

    def _sparsity_changed(self, event: param.parameterized.Event) -> None:
        if event.new not in self._sparsity.values:
            self._sparsity.options = self._sparsity_options(event.new)
        self._sparsity.value = event.new

    def _describe_variant(self, *events: object) -> None:
        variant = get_variant(self.state.settings.variant)
        uses = [name for name, flag in (("fine observations", variant.uses_fine_obs),
                                        ("coarse observations", variant.uses_coarse_obs),
                                        ("process-model simulation", variant.uses_simulation)) if flag]
        note = "" if variant.uses_fine_obs else " Sparsity does not change what it learns from."
        if len(variant.stages) > 1:
            note += (f" Trains in {len(variant.stages)} stages ({' → '.join(s.name for s in variant.stages)}),"
                     " each for the chosen number of epochs.")
        self._variant_info.object = f"{variant.description}. Trains on {', '.join(uses) or 'nothing'}.{note}  \n*{variant.citation}*"

    def _checked(self, *events: object) -> None:
        check, busy = self.state.check, self.state.job is not None
        if check.config is not None and check.counts is not None:
            counts = check.counts
            held = (f" ({counts.holdout:,} more on the hold-out segments are withheld)" if counts.holdout else "")
            self._counts.object = (f"ρ = {sparsity_label(check.config.sparsity)}: **{counts.kept:,}** of "
                                   f"{counts.eligible:,} observed reach-days kept for training and validation "
                                   f"on {check.n_reaches:,} reaches{held}")
        else:
            self._counts.object = ""
        self._problem.param.update(object=check.error, visible=bool(check.error))
        self._train.label = "Load cached run" if check.existing is not None else "Train"
        self._train.disabled = busy or not check.ok

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            self._domain, self._variant, self._variant_info, self._sparsity, self._counts,
            pn.Row(*self._numbers.values()), self._number_problem,
            pn.Row(self._reservoirs, self._reservoirs_help), self._device, self._device_note, self._problem,
            self._train,
            sizing_mode="stretch_width")
