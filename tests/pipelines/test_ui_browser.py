"""The Dagster UI in a real browser: `dagster dev` on loopback, headless Chromium (Debian's, driven by
Playwright; nothing is downloaded): the asset lineage shows every group, an asset launched from the UI
materializes with its checks, and screenshots of both are kept (.state/screenshots, or $EARTHGPT_SCREENSHOTS).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
GROUPS = ("sample_corpus", "raw", "mmrs", "training", "evaluation")
DEFINITIONS = """
from pipelines.definitions import build_definitions
from pipelines.settings import load_settings

defs = build_definitions(load_settings("smoke", {{"storage.sample": "{root}/sample", "storage.raw": "{root}/sample",
                                                 "storage.mmrs": "{root}/mmrs", "storage.models": "{root}/models",
                                                 "storage.eval": "{root}/eval"}}))
"""

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def dagster_ui(tmp_path_factory):
    """(URL of a `dagster dev` webserver on loopback, its DAGSTER_HOME)."""
    root = tmp_path_factory.mktemp("ui")
    (root / "home").mkdir()
    shutil.copy(REPO / "deploy" / "dagster.yaml", root / "home" / "dagster.yaml")
    (root / "ui_definitions.py").write_text(DEFINITIONS.format(root=root))
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(root / "home"), "PYTHONPATH": f"{REPO}:{root}"}
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "dagster"), "dev", "-m", "ui_definitions", "-h", "127.0.0.1",
         "-p", str(port)], cwd=root, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):
            try:
                urllib.request.urlopen(f"{url}/server_info", timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("dagster dev did not answer on loopback")
        yield url, root / "home"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:  # its daemon or code server hung in shutdown on a loaded machine
            os.killpg(server.pid, signal.SIGKILL)
            server.wait(timeout=60)


@pytest.fixture(scope="module")
def page():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: `make setup-browser` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"])
        yield browser.new_page(viewport={"width": 1600, "height": 1000})
        browser.close()


def _open(page, url: str) -> None:
    """Go to `url` and close the community sign-up dialog a new Dagster instance shows once."""
    page.goto(url, wait_until="networkidle", timeout=120_000)
    skip = page.get_by_role("button", name="Skip", exact=True)
    try:
        skip.wait_for(timeout=5_000)
        skip.click()
    except Exception:  # noqa: BLE001 - the dialog is not shown again once skipped
        pass


def _screenshots() -> Path:
    folder = Path(os.environ.get("EARTHGPT_SCREENSHOTS", REPO / ".state" / "screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def test_the_lineage_shows_every_group(dagster_ui, page):
    url, _ = dagster_ui
    _open(page, f"{url}/asset-groups")
    for group in GROUPS:
        page.get_by_text(group, exact=True).first.wait_for(timeout=120_000)
    page.screenshot(path=str(_screenshots() / "lineage.png"), full_page=True)


def test_an_asset_launched_from_the_ui_materializes_with_its_checks(dagster_ui, page):
    from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus

    url, home = dagster_ui
    _open(page, f"{url}/assets/sample/nasc_tg2")
    try:
        page.locator("button", has_text="Materialize").first.click(timeout=120_000)
    finally:
        page.screenshot(path=str(_screenshots() / "asset_before_launch.png"), full_page=True)
    os.environ["DAGSTER_HOME"] = str(home)
    instance = DagsterInstance.get()
    deadline = time.time() + 300
    run = None
    while time.time() < deadline:
        runs = instance.get_runs(limit=1)
        run = runs[0] if runs else None
        if run is not None and run.is_finished:
            break
        time.sleep(1)
    assert run is not None and run.status == DagsterRunStatus.SUCCESS, run
    checks = instance.get_records_for_run(run.run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION).records
    assert {r.event_log_entry.dagster_event.event_specific_data.check_name for r in checks} == {
        "splits_complete", "annotated"}
    _open(page, f"{url}/assets/sample/nasc_tg2")
    page.get_by_text("thumbnails").first.wait_for(timeout=60_000)  # the materialization's metadata
    page.screenshot(path=str(_screenshots() / "materialized_asset.png"), full_page=True)
    _open(page, f"{url}/assets/sample/nasc_tg2?view=checks")
    for check in ("splits_complete", "annotated"):
        page.get_by_text(check).first.wait_for(timeout=60_000)
    page.screenshot(path=str(_screenshots() / "materialized_asset_checks.png"), full_page=True)
