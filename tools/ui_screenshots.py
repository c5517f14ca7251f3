"""Screenshots of a finished run in the MLflow UI and in kedro-viz, for docs/mlflow.md and
docs/viz.md: serves both UIs on free ports on 127.0.0.1, drives headless Chromium with
Playwright, and writes the pictures to data/08_reporting/screenshots/.

    .venv/bin/python tools/ui_screenshots.py [--project .] [--chromium /usr/bin/chromium]

It also prints what the pages show (the runs compared and the metric rows of MLflow's
Compare page, the registered versions and aliases), read from the pages themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import mlflow

BIN = Path(sys.executable).parent
OUT = Path("data/08_reporting/screenshots")
MODEL_TRAINING = "workflowType=machine_learning"
#: kedro-viz views worth reading: (file name, pipeline, query, layer bands drawn). kedro-viz
#: 12.5 orders a single pipeline's bands by that pipeline's own edges only, which misplaces
#: them there: those views are taken with the bands off.
VIZ_VIEWS = (
    ("viz_default.png", "__default__", "", True),
    ("viz_fine_tuning.png", "fine_tuning", "expandAllPipelines=true", False),
    ("viz_inference.png", "inference", "expandAllPipelines=true", False),
    ("viz_evaluation.png", "evaluation", "", False),
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(url: str, process: subprocess.Popen, seconds: float = 180) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server for {url} stopped (exit {process.returncode})")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"{url} did not answer in {seconds:g} s")


@contextmanager
def serve(command: list[str], url: str, cwd: Path, log: Path):
    """A server in its own process group, stopped with its children at the end."""
    process = subprocess.Popen(
        command, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        wait_for(url, process)
        yield url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def compare_url(ui: str, experiment_id: str, run_ids: list[str]) -> str:
    query = urllib.parse.urlencode(
        {"runs": json.dumps(run_ids), "experiments": json.dumps([experiment_id])}
    )
    return f"{ui}/#/compare-runs?{query}"


def close_assistant(page) -> None:
    """MLflow 3.17 opens its assistant panel beside every page: close it for the pictures."""
    panel = page.get_by_text("MLflow Assistant", exact=False)
    if panel.count():
        box = panel.first.bounding_box()
        buttons = page.locator("button").all()
        for button in reversed(buttons):
            place = button.bounding_box()
            if box and place and abs(place["y"] - box["y"]) < 20 and place["x"] > box["x"]:
                button.click()  # the last button on the panel's title row: close
                page.wait_for_timeout(500)
                return


def scroll_to(page, text: str) -> None:
    found = page.get_by_text(text, exact=True)
    if found.count():
        found.first.scroll_into_view_if_needed()
        found.first.evaluate("element => element.scrollIntoView({block: 'start'})")
        page.wait_for_timeout(800)


def mlflow_pages(page, ui: str, store: str, out: Path) -> dict:
    """The experiment's runs, the parent with its link, every system in Compare, the
    registered advisor with its alias."""
    client = mlflow.MlflowClient(store)
    experiment = client.get_experiment_by_name("anchormix_kedro")
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.start_time DESC"])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    systems = [
        r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
        and "anchormix.system" in r.data.tags
    ]
    seen: dict = {}
    experiment_url = f"{ui}/#/experiments/{experiment.experiment_id}"
    page.goto(f"{experiment_url}/runs?{MODEL_TRAINING}")
    page.wait_for_timeout(6000)
    close_assistant(page)
    name = page.get_by_role("link", name=parent.info.run_name)
    if name.count():  # the "+" left of the parent's name shows its systems' runs
        box = name.first.bounding_box()
        page.mouse.click(box["x"] - 30, box["y"] + box["height"] / 2)
        page.wait_for_timeout(2500)
    page.screenshot(path=str(out / "mlflow_runs.png"))
    page.goto(f"{experiment_url}/runs/{parent.info.run_id}?{MODEL_TRAINING}")
    page.wait_for_timeout(5000)
    close_assistant(page)
    page.screenshot(path=str(out / "mlflow_parent.png"))
    page.goto(compare_url(ui, experiment.experiment_id, [r.info.run_id for r in systems]))
    page.wait_for_timeout(8000)
    close_assistant(page)
    text = page.inner_text("body")  # the metric table draws the rows near the view only
    scroll_to(page, "Metrics")
    page.screenshot(path=str(out / "mlflow_compare.png"))
    seen["compared"] = sorted(r.info.run_name for r in systems)
    seen["metric rows"] = sorted(
        {
            line.split("\t")[0].strip()
            for line in text.splitlines()
            if line.split("\t")[0].strip().startswith(("as_mixed/", "gain_staged/", "anchor_"))
        }
    )
    page.goto(f"{ui}/#/models/anchormix-advisor")
    page.wait_for_timeout(5000)
    close_assistant(page)
    page.screenshot(path=str(out / "mlflow_registry.png"))
    seen["registry page"] = " ".join(page.inner_text("main").split())[:400]
    return seen


def click_if_there(page, text: str) -> None:
    found = page.get_by_text(text, exact=True)
    if found.count():
        found.first.click()
        page.wait_for_timeout(500)


def viz_pages(page, ui: str, out: Path) -> None:
    current = "__default__"
    for name, pipeline, query, bands in VIZ_VIEWS:
        page.goto(f"{ui}/?{query}" if query else ui)
        page.wait_for_timeout(8000)
        click_if_there(page, "Dismiss")  # the version banner: no package index offline
        tour = page.get_by_text("1 of 6", exact=True)
        if tour.count() and tour.first.is_visible():  # the first visit's tour: its close cross
            box = tour.first.bounding_box()
            page.mouse.click(box["x"] + 293, box["y"] + box["height"] / 2)
            page.wait_for_timeout(500)
        if pipeline != current:  # the pipeline menu at the top left
            page.locator(f"text='{current}' >> visible=true").first.click()
            page.wait_for_timeout(800)
            page.locator(f"text='{pipeline}' >> visible=true").last.click()
            page.wait_for_timeout(6000)
            current = pipeline
        switch = page.locator("[aria-label^='Turn data layers']")
        if switch.count() and (switch.first.get_attribute("aria-label").endswith("on")) == bands:
            switch.first.click()  # "Turn data layers on" is shown while they are off
            page.wait_for_timeout(3000)
        page.screenshot(path=str(out / name))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--project", type=Path, default=Path("."))
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--skip-viz", action="store_true", help="only the MLflow pages")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    project = args.project.resolve()
    out = project / OUT
    out.mkdir(parents=True, exist_ok=True)
    store = f"sqlite:///{project / 'mlflow.db'}"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    os.environ.update(env)
    mlflow_port, viz_port = (
        free_port(),
        4141 + free_port() % 1000,
    )  # kedro-viz wants a low port free
    mlflow_ui = [str(BIN / "mlflow"), "ui", "--backend-store-uri", store]
    mlflow_ui += ["--host", "127.0.0.1", "--port", str(mlflow_port), "--workers", "1"]
    viz = [str(BIN / "kedro"), "viz", "run", "--host", "127.0.0.1", "--port", str(viz_port)]
    viz += ["--no-browser"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=args.chromium, args=["--no-sandbox", "--disable-gpu"]
        )
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        with serve(mlflow_ui, f"http://127.0.0.1:{mlflow_port}", project, out / "mlflow.log"):
            seen = mlflow_pages(page, f"http://127.0.0.1:{mlflow_port}", store, out)
        if not args.skip_viz:
            with serve(viz, f"http://127.0.0.1:{viz_port}/api/main", project, out / "viz.log"):
                viz_pages(page, f"http://127.0.0.1:{viz_port}", out)
        browser.close()
    report = [f"{key}: {value}" for key, value in seen.items()] + [f"screenshots in {out}"]
    sys.stdout.write("\n".join(report) + "\n")


if __name__ == "__main__":
    main()
