"""A real Dagster UI in headless Chromium: a tiny demo home, `dagster dev` on a free loopback port,
and a Playwright page that records console errors.

The browser is Debian's `chromium` at /usr/bin/chromium (`make setup` installs it), driven by
Playwright for Python; Playwright never downloads a browser. Without it the tests skip with the
reason locally, and fail in CI (`CI=true`), where a skipped browser test would hide a broken UI.
Screenshots land in `.kiwi/ui-screenshots/` (or `$KIWI_UI_SCREENSHOTS`), kept as CI artifacts.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path(os.environ.get("KIWI_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = Path(os.environ.get("KIWI_UI_SCREENSHOTS", ROOT / ".kiwi" / "ui-screenshots"))
BATCH = "tiny"
SERVER_START_S, RUN_TIMEOUT_S = 240, 300


def _unavailable(reason: str) -> None:
    """Skip locally; fail in CI, where the browser is part of the setup (`make setup`)."""
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(f"{reason} (CI=true: the browser test must run in CI; `make setup` installs chromium)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    """/usr/bin/chromium and the Playwright package, or skip (fail in CI) saying which is missing."""
    if not (CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"no Chromium at {CHROMIUM}: run `make setup` as root or `apt-get install -y chromium`")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is not installed: pip install -e '.[dev]'")
    return CHROMIUM


def ui_env(home: Path) -> dict[str, str]:
    """The environment of the `kiwi` and Dagster processes: this checkout's code, the test's home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KIWI_", "DAGSTER_"))}
    env.update(
        KIWI_HOME=str(home),
        DAGSTER_HOME=str(home / "dagster"),
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        DAGSTER_DISABLE_TELEMETRY="1",
        COLUMNS="200",
    )
    return env


@pytest.fixture(scope="module")
def ui_home(tmp_path_factory, demo_dir, chromium_path) -> Path:
    """A home where a tiny demo ran from the command line: three synthetic image pairs ingested as
    batch `tiny` by `kiwi ingest` (so the instance holds a CLI-started run); beside it, the folder
    `new-batch/` with a manifest no batch uses yet."""
    from kiwi_platform.synth.writer import generate

    base = tmp_path_factory.mktemp("ui")
    generate(base / "synth", 3, seed=3, frames=9, height=64, width=96, image_share=1.0, demo_dir=demo_dir)
    home = base / "kiwi-home"
    proc = subprocess.run(
        [sys.executable, "-m", "kiwi_platform", "ingest", str(base / "synth" / "manifest.csv"), "--batch", BATCH],
        env=ui_env(home),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    generate(base / "new-batch", 2, seed=5, frames=9, height=64, width=96, image_share=1.0, demo_dir=demo_dir)
    return home


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DagsterUI:
    """`dagster dev` (webserver, daemon, code server) as `kiwi ui` starts it, on a loopback port."""

    def __init__(self, home: Path, log: Path):
        self.home, self.port, self.log = home, _free_port(), log
        self.url = f"http://127.0.0.1:{self.port}"
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "dagster", "dev", "-m", "kiwi_platform.definitions"]
                + ["-h", "127.0.0.1", "-p", str(self.port)],
                env=ui_env(home),
                cwd=home,  # as `kiwi ui`: the checkout's dagster.yaml must not look like a second instance
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stopped together with its children
            )

    def graphql(self, query: str, variables: dict | None = None) -> dict:
        body = json.dumps({"query": query, "variables": variables or {}}).encode()
        request = urllib.request.Request(f"{self.url}/graphql", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answer = json.loads(response.read())
        assert not answer.get("errors"), answer["errors"]
        return answer["data"]

    def wait_until_loaded(self) -> None:
        """Until the webserver answers and the code location has loaded (or the deadline passes)."""
        deadline, query = (
            time.monotonic() + SERVER_START_S,
            "{ workspaceOrError { ... on Workspace { locationEntries { loadStatus locationOrLoadError { __typename } } } } }",
        )
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"dagster dev exited: {self.log.read_text()[-3000:]}"
            try:
                entries = self.graphql(query)["workspaceOrError"]["locationEntries"]
            except OSError:
                entries = []
            if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                [entry] = entries
                assert entry["locationOrLoadError"]["__typename"] == "RepositoryLocation", entry
                return
            time.sleep(1)
        raise AssertionError(f"the Dagster UI did not load in {SERVER_START_S} s: {self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


@pytest.fixture(scope="module")
def ui(ui_home: Path) -> DagsterUI:
    server = DagsterUI(ui_home, ui_home.parent / "dagster-dev.log")
    try:
        server.wait_until_loaded()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(chromium_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(chromium_path), args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, ui, request):
    """A fresh page on the UI; collects console errors and uncaught exceptions into `page.errors`,
    and leaves a screenshot named after the test (also when it fails)."""
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=ui.url)
    context.set_default_timeout(30_000)
    page = context.new_page()
    page.errors = []
    page.on("console", lambda msg: page.errors.append(f"console: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: page.errors.append(f"page error: {exc}"))
    yield page
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    finally:
        context.close()


@pytest.fixture
def shot(request):
    """`shot(page, name)`: a screenshot under SCREENSHOTS, named `<test>-<name>.png`."""

    def take(page, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}-{name}.png"))

    return take
