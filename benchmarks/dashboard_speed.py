"""Dashboard speed in headless Chromium against a served app (`msgl serve` in a subprocess).

Measures, on the real DRB data:
  first_render  page request -> network map drawn with every fine-reach piece (the first session after the
                server is up is "cold"; later sessions "warm")
  load_run      click Load -> day map of the cached run drawn (the first load in the server is "cold":
                it reads the run's NetCDF; later sessions reuse the server's cache)
  date_change   click the next-day button -> day map redrawn with the new day's data
and checks that concurrent sessions (default 10, at most --concurrency opening at once) each load a run
and step to their own day without cross-talk.
  reach_click   click a gauged reach on the day map -> its title and hydrograph data shown
  clients       --clients sessions (default 20) opened at once on shared URLs of the run and one other, each on
                its own day (a class opening the lesson's links): every client requests the page and pulls its document
                over the websocket as a browser does, but draws nothing, so the figure is the server's share
                (in a classroom each pupil's machine draws its own page; here the browsers would share the
                server's 2 cores). Each document must show its own run and day (no cross-talk).
Targets (issue: the dashboard for its three audiences): first render <= 2 s; date change <= 150 ms;
click a reach -> hydrograph <= 500 ms; loading a cached run <= 1 s; 20 sessions at once <= 10 s with the
server under 4 GB (its peak resident memory, from /proc).
Usage:
    python benchmarks/dashboard_speed.py [--runs-dir /tmp/msglruns] [--run NAME] [--repeats 3] [--steps 10]
        [--sessions 10] [--concurrency 5] [--clients 20] [--screenshots DIR]
        [--out benchmarks/out/dashboard_speed.json]
Needs Debian's chromium (/usr/bin/chromium) and the playwright package (no browser download).
``--smoke`` serves the tiny test bundle (written in code) with one run trained on it, once each, so CI keeps
the script working; its timings mean nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from support.json_report import write_report

from dashboard import browser as chromium
from dashboard.resources import load_resources
from dashboard.results import open_results
from dashboard.views.maps import run_title
from msgl_core import PARENT_SEGMENT, Run, list_runs, runs_root

TARGETS = {"first_render_s": 2.0, "date_change_s": 0.15, "load_run_s": 1.0, "reach_click_s": 0.5, "clients_s": 10.0,
           "server_peak_rss_mb": 4096.0}
#: Seconds between two timed clicks on a map (longer than Bokeh's double-tap interval).
TAP_GAP_S = 0.5
#: Data columns that identify the day map's predicted-temperature lines in the page.
DAY_MAP = ["prediction", PARENT_SEGMENT]


def start_server(port: int, runs_dir: Path, data: list[str]) -> tuple[subprocess.Popen, float]:
    """Start `msgl serve` (``data``: extra ``--data-dir``/``--cache-dir`` options) and return it with the
    seconds until its port accepts connections."""
    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "msgl_core", "serve", "--port", str(port), "--runs-dir",
                               str(runs_dir), *data], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    while time.perf_counter() - start < 180:
        if server.poll() is not None:
            raise RuntimeError(f"msgl serve exited: {server.stderr.read() if server.stderr else ''}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return server, time.perf_counter() - start
        time.sleep(0.05)
    server.kill()
    raise TimeoutError("msgl serve did not start within 180 s")


def wait_rows(page: Any, columns: list[str], rows: int, timeout_s: float = 60) -> None:
    """Wait until drawn plots hold at least ``rows`` rows in sources having all ``columns``."""
    page.wait_for_function(f"([c, n]) => {{ const d = ({chromium.JS_DIGEST})(c); return d !== null && d[0] >= n; }}",
                           arg=[columns, rows], timeout=timeout_s * 1000, polling=10)


def first_render(browser: Any, url: str, reach_pieces: int) -> float:
    page = chromium.new_page(browser)
    start = time.perf_counter()
    page.goto(url, wait_until="commit")
    wait_rows(page, ["reach", "length_km"], reach_pieces)
    seconds = time.perf_counter() - start
    page.context.close()
    return seconds


def open_and_load(browser: Any, url: str, run: Run, domain_pieces: int) -> tuple[Any, float]:
    page = chromium.new_page(browser)
    page.goto(url)
    wait_rows(page, ["reach", "length_km"], 1)
    page.get_by_label("Cached runs").select_option(value=run.path.name)
    start = time.perf_counter()
    page.get_by_role("button", name="Load", exact=True).click()
    wait_rows(page, DAY_MAP, domain_pieces)
    return page, time.perf_counter() - start


def date_changes(page: Any, steps: int) -> list[float]:
    times = []
    forward = page.get_by_role("button", name="▶")
    for _ in range(steps):
        before = chromium.digest(page, DAY_MAP)
        start = time.perf_counter()
        forward.click()
        page.wait_for_function(
            f"([c, old]) => {{ const d = ({chromium.JS_DIGEST})(c); return d !== null && d[0] === old[0] && d[1] !== old[1]; }}",
            arg=[DAY_MAP, list(before)], timeout=10_000, polling=5)
        times.append(time.perf_counter() - start)
    return times


def date_changes_while_training(browser: Any, url: str, run: Run, domain_pieces: int, epochs: int) -> dict:
    """Date changes in one session while another session trains rgcn_fine on the run's domain (a new seed)."""
    trainer = chromium.new_page(browser)
    trainer.goto(url)
    wait_rows(trainer, ["reach", "length_km"], 1)
    seed = 1000 + os.getpid() % 1000
    trainer.get_by_label("Model variant").select_option("rgcn_fine")
    for label, value in (("Seed", seed), ("Epochs", epochs)):
        box = trainer.get_by_label(label)
        box.fill(str(value))
        box.press("Enter")
    trainer.get_by_role("button", name="Train", exact=True).click()
    trainer.get_by_text("Training rgcn_fine").wait_for(timeout=30_000)
    viewer, _ = open_and_load(browser, url, run, domain_pieces)
    start, times = time.perf_counter(), []
    while trainer.get_by_text("Trained in").count() == 0 and time.perf_counter() - start < 600:
        times += date_changes(viewer, 1)
        time.sleep(0.2)
    seconds = time.perf_counter() - start
    trainer.context.close()
    viewer.context.close()
    return {"epochs": epochs, "seed": seed, "training_s": round(seconds, 1), "date_change_s": _stats(times or [float("nan")])}


def screenshots(browser: Any, url: str, run: Run, domain_pieces: int, reach_pieces: int, folder: Path) -> list[str]:
    """Network map, day map, error map and a reach's hydrograph of ``run``, as PNG files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    page = chromium.new_page(browser)
    page.goto(url)
    wait_rows(page, ["reach", "length_km"], reach_pieces)
    paths = [folder / f"{name}.png" for name in ("1_network_fine_reaches", "2_day_map", "3_error_map", "4_reach_hydrograph")]
    page.screenshot(path=str(paths[0]))
    page.get_by_label("Cached runs").select_option(value=run.path.name)
    page.get_by_role("button", name="Load", exact=True).click()
    wait_rows(page, DAY_MAP, domain_pieces)
    page.mouse.move(5, 5)
    page.screenshot(path=str(paths[1]))
    results = open_results(run.path)
    reach = str(results.per_reach["rmse"].idxmax())
    x, y = load_resources().reaches.loc[reach, ["x", "y"]]
    page.get_by_text("Errors", exact=True).click()
    page.wait_for_function(f"() => ({chromium.JS_SOURCE_ROWS})('rmse') > 0")
    page.mouse.move(5, 5)
    page.screenshot(path=str(paths[2]))
    page.mouse.click(*chromium.screen_point(page, "rmse", x, y))
    page.get_by_text(f"Reach {reach}").wait_for()
    page.wait_for_function(f"() => ({chromium.JS_SOURCE_ROWS})('date') > 100")
    page.mouse.move(5, 5)
    page.get_by_text(f"Reach {reach}").evaluate("element => element.scrollIntoView({block: 'start'})")
    page.screenshot(path=str(paths[3]))
    page.context.close()
    return [str(p) for p in paths]


async def sessions_without_crosstalk(url: str, runs: list[Run], domain_pieces: dict[str, int], n: int,
                                     concurrency: int) -> dict:
    """``n`` sessions at once (at most ``concurrency`` loading at a time): each loads run i % len(runs),
    steps i days forward, and must then show its own run and day."""
    from playwright.async_api import async_playwright

    bound = asyncio.Semaphore(concurrency)
    expected_days = {str(r.path): open_results(r.path).default_date() for r in runs}
    js_rows = f"([c, n]) => {{ const d = ({chromium.JS_DIGEST})(c); return d !== null && d[0] >= n; }}"

    async def session(browser: Any, k: int) -> dict:
        run = runs[k % len(runs)]
        async with bound:
            context = await browser.new_context(viewport=chromium.VIEWPORT)
            await context.route("**/*", _route_local)
            page = await context.new_page()
            start = time.perf_counter()
            await page.goto(url, timeout=120_000)
            await page.wait_for_function(js_rows, arg=[["reach", "length_km"], 1], timeout=120_000)
            await page.get_by_label("Cached runs").select_option(value=run.path.name)
            await page.get_by_role("button", name="Load", exact=True).click()
            await page.wait_for_function(js_rows, arg=[DAY_MAP, domain_pieces[str(run.path)]],
                                         timeout=120_000)
            for _ in range(k):
                await page.get_by_role("button", name="▶").click()
        day = expected_days[str(run.path)] + pd.Timedelta(days=k)
        text = f"{day:%a %d %b %Y}"
        try:
            await page.get_by_text(text).wait_for(timeout=60_000)
            own_day = True
        except Exception:  # noqa: BLE001 - reported as cross-talk below
            own_day = False
        alert = await page.get_by_text("Loaded ").first.inner_text()
        seconds = time.perf_counter() - start
        await context.close()
        return {"session": k, "run": run.path.name, "expected_day": str(day.date()), "own_day": own_day,
                "own_run": run.label() in alert, "seconds": round(seconds, 2)}

    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium.CHROMIUM, args=chromium.CHROMIUM_ARGS)
        start = time.perf_counter()
        rows = await asyncio.gather(*[session(browser, k) for k in range(n)])
        total = time.perf_counter() - start
        await browser.close()
    ok = all(r["own_day"] and r["own_run"] for r in rows)
    return {"sessions": n, "concurrency": concurrency, "runs": len(runs), "all_isolated": ok,
            "total_s": round(total, 1), "per_session": rows}


async def clients_at_once(url: str, runs: list[Run], n: int) -> dict:
    """``n`` protocol-level clients at once, client k on the shared URL of run k % len(runs) and its default day
    + k days (Day map tab): seconds until each has its page and its document, and whether the document shows that
    run's title and that day."""
    from tornado.httpclient import AsyncHTTPClient

    AsyncHTTPClient.configure(None, max_clients=n)
    days = {str(r.path): open_results(r.path).default_date() for r in runs}

    async def client(k: int) -> dict:
        run = runs[k % len(runs)]
        day = days[str(run.path)] + pd.Timedelta(days=k)
        page, seconds, document = await pull_document(url, f"run={run.path.name}&tab=day&day={day.date()}")
        texts = " ".join(text.replace("\n", " · ") for text in _strings(json.loads(document)))
        return {"client": k, "run": run.path.name, "day": str(day.date()), "page_s": round(page, 2),
                "seconds": round(seconds, 2), "own_run_and_day": run_title(run, "Predicted − observed", day) in texts}

    start = time.perf_counter()
    rows = await asyncio.gather(*[client(k) for k in range(n)])
    total = time.perf_counter() - start
    return {"clients": n, "runs": len(runs), "all_isolated": all(r["own_run_and_day"] for r in rows),
            "total_s": round(total, 2), "per_client": rows}


def _strings(value: object) -> list[str]:
    """Every string inside a JSON value."""
    if isinstance(value, str):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, list) else []
    return [text for item in items for text in _strings(item)]


async def pull_document(url: str, query: str) -> tuple[float, float, str]:
    """Open ``url?query`` as a browser would, without drawing: request the page (the server builds the session),
    then pull the session's document over the websocket (Bokeh's PULL-DOC). Returns the seconds until the page
    arrived, the seconds until the document arrived, and the document's JSON text."""
    from tornado.httpclient import AsyncHTTPClient, HTTPRequest
    from tornado.websocket import websocket_connect

    start = time.perf_counter()
    response = await AsyncHTTPClient().fetch(f"{url}?{query}", request_timeout=600)
    page = time.perf_counter() - start
    match = re.search(r'"token":"([^"]+)"', response.body.decode())
    if match is None:
        raise RuntimeError(f"no session token in the page of {url}?{query}")
    host = url.split("//", 1)[1].rstrip("/")
    socket = await websocket_connect(HTTPRequest(f"ws://{host}/ws", headers={"Origin": f"http://{host}"},
                                                 request_timeout=600), subprotocols=["bokeh", match.group(1)])

    async def message() -> tuple[dict, str]:
        header = json.loads(await socket.read_message())
        await socket.read_message()  # metadata
        content = await socket.read_message()
        for _ in range(2 * header.get("num_buffers", 0)):  # a buffer's id, then its bytes
            await socket.read_message()
        return header, content

    while (await message())[0]["msgtype"] != "ACK":  # the server is ready for requests once it has said ACK
        pass
    for frame in ('{"msgid": "1", "msgtype": "PULL-DOC-REQ"}', "{}", "{}"):
        await socket.write_message(frame)
    while True:  # patches of the session may come first
        header, content = await message()
        if header["msgtype"] == "PULL-DOC-REPLY":
            break
    seconds = time.perf_counter() - start
    socket.close()
    return page, seconds, content


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory of process ``pid`` (MB), from /proc (Linux); NaN elsewhere."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return float("nan")
    kb = next((int(line.split()[1]) for line in text.splitlines() if line.startswith("VmHWM:")), None)
    return float("nan") if kb is None else kb / 1024


async def _route_local(route: Any) -> None:
    if route.request.url.startswith(chromium.LOCAL):
        await route.continue_()
    else:
        await route.abort()


def reach_clicks(page: Any, resources: Any, reaches: list[str]) -> list[float]:
    """Seconds from a click on each reach of the day map until its title and a changed hydrograph are shown.

    Clicks are at least :data:`TAP_GAP_S` apart (not timed): Bokeh takes a second click on a plot within its
    double-tap interval for a double tap, and a pupil does not pick two reaches that fast.
    """
    times: list[float] = []
    last = 0.0
    for reach in reaches:
        x, y = resources.reaches.loc[reach, ["x", "y"]]
        before = chromium.digest(page, ["date"])
        point = chromium.screen_point(page, "prediction", float(x), float(y))
        time.sleep(max(0.0, last + TAP_GAP_S - time.perf_counter()))
        start = last = time.perf_counter()
        page.mouse.click(*point)
        # The panel's heading (a hover tooltip also names the reach).
        page.get_by_role("heading", name=f"Reach {reach} ").wait_for(timeout=10_000)
        page.wait_for_function(
            f"([c, old]) => {{ const d = ({chromium.JS_DIGEST})(c); return d !== null && (old === null || d[1] !== old[1]); }}",
            arg=[["date"], None if before is None else list(before)], timeout=10_000, polling=5)
        times.append(time.perf_counter() - start)
        page.mouse.move(5, 5)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs-dir", type=Path, default=None, help="run cache (else $MSGL_RUNS_DIR, runs/)")
    parser.add_argument("--run", default=None, help="folder name of the run to load (default: smallest domain)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10, help="date changes to time")
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=5)
    parser.add_argument("--clients", type=int, default=20,
                        help="protocol-level clients opened at once on shared URLs (the server's share; 0: skip)")
    parser.add_argument("--screenshots", type=Path, default=None)
    parser.add_argument("--train-epochs", type=int, default=0,
                        help="also time date changes while another session trains this many epochs (adds a run)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/dashboard_speed.json"))
    parser.add_argument("--smoke", action="store_true", help="the tiny test bundle, one repeat (CI)")
    args = parser.parse_args()
    problem = chromium.chromium_problem()
    if problem:
        sys.exit(f"cannot run: {problem}")
    data: list[str] = []
    if args.smoke:
        data = smoke_fixture(Path(tempfile.mkdtemp(prefix="msgl-dashboard-smoke-")))
        args.runs_dir = Path(data[-1]).parent / "runs"
        args.repeats, args.steps, args.sessions, args.concurrency, args.clients = 1, 2, 2, 2, 2
    runs_dir = runs_root(args.runs_dir)
    runs = list_runs(runs_dir).runs
    if not runs:
        sys.exit(f"no cached runs in {runs_dir}: run `msgl train` first")
    resources = load_resources(*(data[1::2] if data else ()))
    sizes = {str(r.path): int(resources.reach_pieces["reach"].isin(open_results(r.path).reaches).sum()) for r in runs}
    run = next((r for r in runs if r.path.name == args.run), None) if args.run else min(runs, key=lambda r: sizes[str(r.path)])
    if run is None:
        sys.exit(f"no run {args.run!r} in {runs_dir}")
    port = chromium.free_port()
    url = f"http://127.0.0.1:{port}/"
    server, startup = start_server(port, runs_dir, data)
    report: dict = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_average": os.getloadavg(),
                    "run": run.path.name, "domain_pieces": sizes[str(run.path)],
                    "reach_pieces": len(resources.reach_pieces), "server_start_s": round(startup, 2)}
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = chromium.launch(playwright)
            renders = [first_render(browser, url, len(resources.reach_pieces)) for _ in range(args.repeats)]
            loads, steps, clicks = [], [], []
            for _ in range(args.repeats):
                page, seconds = open_and_load(browser, url, run, sizes[str(run.path)])
                loads.append(seconds)
                if not steps:
                    steps = date_changes(page, args.steps)
                    gauged = open_results(run.path).per_reach.dropna(subset=["rmse"]).index[:max(args.steps // 2, 2)]
                    clicks = reach_clicks(page, resources, list(gauged))
                page.context.close()
            if args.train_epochs:
                report["while_training"] = date_changes_while_training(browser, url, run, sizes[str(run.path)],
                                                                       args.train_epochs)
            if args.screenshots:
                report["screenshots"] = screenshots(browser, url, run, sizes[str(run.path)],
                                                    len(resources.reach_pieces), args.screenshots)
            browser.close()
        report.update({
            "first_render_cold_s": round(renders[0], 3), "first_render_warm_s": _stats(renders[1:] or renders),
            "load_run_cold_s": round(loads[0], 3), "load_run_warm_s": _stats(loads[1:] or loads),
            "date_change_s": _stats(steps), "reach_click_s": _stats(clicks), "reach_click_first_s": round(clicks[0], 3)})
        if args.sessions:
            report["concurrent_sessions"] = asyncio.run(sessions_without_crosstalk(
                url, runs, sizes, args.sessions, args.concurrency))
        if args.clients:
            lesson = [run, *[r for r in runs if r is not run][:1]]  # two prepared runs, as a class would open them
            report["clients_at_once"] = asyncio.run(clients_at_once(url, lesson, args.clients))
        report["server_peak_rss_mb"] = round(peak_rss_mb(server.pid), 1)
    finally:
        server.terminate()
        server.wait(30)
    checks = {"first_render_s": report["first_render_warm_s"]["median"],
              "date_change_s": report["date_change_s"]["median"], "load_run_s": report["load_run_warm_s"]["median"],
              "reach_click_s": report["reach_click_s"]["median"], "server_peak_rss_mb": report["server_peak_rss_mb"]}
    if "clients_at_once" in report:
        checks["clients_s"] = report["clients_at_once"]["total_s"]
    report["targets"] = {k: {"target": TARGETS[k], "measured": v, "ok": v <= TARGETS[k]} for k, v in checks.items()}
    write_report(report, args.out, default=str)
    print(f"run {run.path.name} ({report['domain_pieces']} reach pieces; network {report['reach_pieces']}); "
          f"server up in {startup:.1f} s; load average {report['load_average'][0]:.1f}")
    print(f"{'measure':<26}{'value':>12}{'target':>10}  ok")
    rows = [("first render, cold (s)", report["first_render_cold_s"], TARGETS["first_render_s"]),
            ("first render, warm (s)", report["first_render_warm_s"]["median"], TARGETS["first_render_s"]),
            ("load cached run, cold (s)", report["load_run_cold_s"], TARGETS["load_run_s"]),
            ("load cached run, warm (s)", report["load_run_warm_s"]["median"], TARGETS["load_run_s"]),
            ("date change, median (s)", report["date_change_s"]["median"], TARGETS["date_change_s"]),
            ("date change, max (s)", report["date_change_s"]["max"], TARGETS["date_change_s"]),
            ("reach click, first (s)", report["reach_click_first_s"], TARGETS["reach_click_s"]),
            ("reach click, median (s)", report["reach_click_s"]["median"], TARGETS["reach_click_s"]),
            ("server peak memory (MB)", report["server_peak_rss_mb"], TARGETS["server_peak_rss_mb"])]
    if "clients_at_once" in report:
        rows.append((f"{args.clients} clients at once (s)", report["clients_at_once"]["total_s"], TARGETS["clients_s"]))
    for name, value, target in rows:
        print(f"{name:<26}{value:>12.3f}{target:>10.2f}  {'yes' if value <= target else 'NO'}")
    if "while_training" in report:
        w = report["while_training"]
        print(f"date change while another session trains ({w['epochs']} epochs, {w['training_s']} s): median "
              f"{w['date_change_s']['median']:.3f} s, max {w['date_change_s']['max']:.3f} s, n={w['date_change_s']['n']}")
    if "concurrent_sessions" in report:
        s = report["concurrent_sessions"]
        print(f"{s['sessions']} concurrent sessions ({s['concurrency']} at a time, {s['runs']} run(s)): "
              f"{'each kept its own run and day' if s['all_isolated'] else 'CROSS-TALK or failure'} "
              f"in {s['total_s']} s")
    if "clients_at_once" in report:
        c = report["clients_at_once"]
        print(f"{c['clients']} clients opened shared URLs at once ({c['runs']} run(s)): "
              f"{'each document showed its own run and day' if c['all_isolated'] else 'CROSS-TALK or failure'}")
    print(f"wrote {args.out}")


def smoke_fixture(root: Path) -> list[str]:
    """Write the tiny test bundle under ``root``, train one run on it into ``root/runs``; return the
    ``--data-dir``/``--cache-dir`` options that serve it."""
    atexit.register(shutil.rmtree, root, True)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from msgl_core import RunConfig, load_dataset, train_or_load
    from tests.tiny_bundle import PERIODS, write_tiny_bundle

    bundle, cache = write_tiny_bundle(root / "bundle"), root / "cache"
    cfg = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "variant": "rgcn_fine", "device": "cpu",
                               **PERIODS})
    train_or_load(cfg, load_dataset(bundle, cache), runs_dir=root / "runs", progress=False)
    return ["--data-dir", str(bundle), "--cache-dir", str(cache)]


def _stats(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 3), "max": round(max(values), 3),
            "min": round(min(values), 3), "n": len(values)}


if __name__ == "__main__":
    main()
