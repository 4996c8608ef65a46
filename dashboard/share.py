"""The shareable URL: which choices of a session its query string holds, written as text and read back.

A teacher opens a prepared view from a link such as
``/?variant=msgl&domain=rancocas&rho=0.01&run=msgl_rancocas_...&tab=day&day=2011-07-12&reach=1781_1``;
a reload or a theme change (which reloads the page with ``theme=dark``) restores the same view.
:func:`url_query` turns the session into query values, :func:`restore` applies a query to a new
session in a fixed order (settings, then the run, which sets its own defaults, then tab, day, reach
and the view options), and :func:`query_text` merges them into the page's query string, keeping
keys that are not ours (``theme``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlencode

import pandas as pd
import param

from dashboard.state import AppState

#: Query key -> (owner, parameter): "settings" for :class:`~dashboard.state.RunSettings`, "state" for
#: :class:`~dashboard.state.AppState`. Restored in this order; ``run`` loads the run folder of that name.
KEYS: dict[str, tuple[str, str]] = {
    "variant": ("settings", "variant"),
    "domain": ("settings", "domain"),
    "outlet": ("settings", "outlet"),
    "rho": ("settings", "sparsity"),
    "seed": ("settings", "seed"),
    "epochs": ("settings", "epochs"),
    "run": ("state", "run_name"),
    "tab": ("state", "view"),
    "day": ("state", "date"),
    "reach": ("state", "reach"),
    "metric": ("state", "error_metric"),
    "colors": ("state", "color_scale"),
    "months": ("state", "season_months"),
    "year": ("state", "season_year"),
    "threshold": ("state", "heat_threshold"),
}


def _owner(state: AppState, owner: str) -> param.Parameterized:
    return state.settings if owner == "settings" else state


def watched(state: AppState) -> list[tuple[param.Parameterized, list[str]]]:
    """The objects and parameters whose changes change the URL."""
    names: dict[str, list[str]] = {"settings": [], "state": []}
    for owner, name in KEYS.values():
        if name in _owner(state, owner).param:
            names[owner].append(name)
    return [(state.settings, names["settings"]), (state, names["state"])]


def _text(value: object) -> str | None:
    """A parameter value as query text (None: left out of the URL)."""
    if value is None:
        return None
    if isinstance(value, (dt.date, dt.datetime, pd.Timestamp)):
        return f"{pd.Timestamp(value):%Y-%m-%d}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def _value(parameter: param.Parameter, text: str) -> object:
    """Query text as a value of ``parameter``. Raises ValueError when it cannot be one."""
    if isinstance(parameter, param.Date):
        return pd.Timestamp(text).to_pydatetime()
    if isinstance(parameter, param.ListSelector):
        return [int(v) for v in text.split(",") if v]
    if isinstance(parameter, param.Integer):
        return int(text)
    if isinstance(parameter, param.Number):
        return float(text)
    if isinstance(parameter, param.Selector):  # objects may be numbers (thresholds)
        matches = [o for o in parameter.objects if _text(o) == text]
        return matches[0] if matches else text
    return text


def url_query(state: AppState) -> dict[str, str]:
    """The session's shareable choices as query values (keys of :data:`KEYS`; unset ones left out)."""
    out = {}
    for key, (owner, name) in KEYS.items():
        target = _owner(state, owner)
        if name in target.param and (text := _text(getattr(target, name))) is not None:
            out[key] = text
    return out


def restore(state: AppState, query: Mapping[str, str]) -> list[str]:
    """Apply a shared URL's ``query`` (raw text values) to ``state``; returns one message per value that
    could not be applied (each is skipped; the others still apply). Unknown keys are ignored.

    The run settings are applied together (one validation of the settings), then the run, then the rest.
    """
    problems: list[str] = []
    values: dict[str, dict[str, object]] = {"settings": {}, "state": {}}
    for key, (owner, name) in KEYS.items():
        target = _owner(state, owner)
        if key in query and name in target.param:
            try:
                values[owner][name] = _value(target.param[name], query[key])
            except (ValueError, TypeError) as error:
                problems.append(f"{key}={query[key]!r}: {error}")
    _apply(state.settings, values["settings"], problems)
    rest = values["state"]
    run = rest.pop("run_name", None)
    if run is not None and not state.load_named(str(run)):
        problems.append(f"run={run!r}: {state.alert}")
    if "reach" in rest and (state.results is None or rest["reach"] not in state.results.reaches):
        problems.append(f"reach={rest.pop('reach')!r}: not a reach of the loaded run")
    _apply(state, rest, problems)
    return problems


def _apply(target: param.Parameterized, values: dict[str, object], problems: list[str]) -> None:
    """Set ``values`` on ``target`` at once; when that fails, one by one, naming each refused value."""
    try:
        target.param.update(**values)
    except (ValueError, TypeError):
        for name, value in values.items():
            try:
                target.param.update(**{name: value})
            except (ValueError, TypeError) as error:
                key = next(k for k, (_, n) in KEYS.items() if n == name)
                problems.append(f"{key}={_text(value)!r}: {str(error).splitlines()[0]}")


def query_text(search: str, query: Mapping[str, str]) -> str:
    """The page's query string ``search`` ("?a=1&…") with our keys replaced by ``query`` (ours that it lacks
    are dropped; other keys, e.g. ``theme``, stay)."""
    kept = [(k, v) for k, v in parse_qsl(search.lstrip("?")) if k not in KEYS]
    pairs = kept + list(query.items())
    return "?" + urlencode(pairs) if pairs else ""


def raw_query(search: str) -> dict[str, str]:
    """Query values as text, exactly as written (Panel's own parser turns "101_1" into the number 1011)."""
    return dict(parse_qsl(search.lstrip("?")))
