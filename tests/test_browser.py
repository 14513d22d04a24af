"""The start notebook in a real browser: JupyterLab + headless Chromium driven by Playwright.

Starts ``jupyter lab`` on 127.0.0.1 (a free port, a random token, a temporary root holding a
copy of ``notebooks/00_start_here.ipynb`` and temporary settings), opens the notebook in
Debian's Chromium (``/usr/bin/chromium``; Playwright never downloads a browser), runs all cells
from the Run menu, then walks the first FrameExplorer through every node with its Next button.

Assertions are on the widgets' DOM inside the output areas (``.jp-OutputArea-output``), never on
text that the notebook's own source also contains:

- no cell error (an stderr output holding a traceback), no "Error displaying widget", no
  browser console error or uncaught page error (known harmless noise: :data:`HARMLESS`);
- the explorer's graph has one ``.wb-node`` button per node, exactly one of them active;
- after each Next click the stage label shows the next node's label, the active button moves,
  the body holds that node's view (``.wb-view-<kind>``) and every picture in it is a loaded
  ``<img>`` (non-empty ``src``, ``naturalWidth > 0``); the explorer's status line stays empty;
- inside views, the NMS stepper and the op stepper answer their buttons; a graph node button
  jumps to its node.

Screenshots go to ``test-output/browser/``. Chromium and Playwright come from ``make browser``
(``apt-get install chromium``, ``pip install playwright``); without them the test is skipped,
or fails when ``CI`` is set. ``WB_BROWSER_NOTEBOOK`` runs another notebook (development).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from conftest import REPO

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
NOTEBOOK = Path(os.environ.get("WB_BROWSER_NOTEBOOK", REPO / "notebooks" / "00_start_here.ipynb"))
OUT = REPO / "test-output" / "browser"
#: console messages that are not the notebook's fault (none needed so far; add with a reason)
HARMLESS: tuple[re.Pattern[str], ...] = ()

SERVER_START_S = 90
RUN_ALL_S = int(os.environ.get("WB_BROWSER_RUN_ALL_S", 150))
STEP_S = 30

pytestmark = [pytest.mark.slow, pytest.mark.timeout(240)]


def _require_browser():
    """Playwright's sync API, or skip (fail under CI: ``make browser`` installs everything)."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(f"{CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing.append("the playwright package (pip install playwright)")
        sync_playwright = None
    if missing:
        msg = "browser test needs " + " and ".join(missing) + "; run `make browser`"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return sync_playwright


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_lab(root: Path, port: int, token: str, log) -> subprocess.Popen:
    settings = root / ".lab" / "settings"
    (settings / "@jupyterlab" / "notebook-extension").mkdir(parents=True)
    # every cell in the DOM (JupyterLab 4 detaches off-screen cells by default)
    (settings / "@jupyterlab" / "notebook-extension" / "tracker.jupyterlab-settings").write_text(
        json.dumps({"windowingMode": "none"}))
    (settings / "@jupyterlab" / "apputils-extension").mkdir(parents=True)
    (settings / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "MPLBACKEND", "IPYTHONDIR"))}
    env.update(JUPYTER_CONFIG_DIR=str(root / ".lab" / "config"), JUPYTER_RUNTIME_DIR=str(root / ".lab" / "runtime"),
               IPYTHONDIR=str(root / ".lab" / "ipython"))
    cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--IdentityProvider.token={token}",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
           f"--ServerApp.root_dir={root}", f"--LabApp.user_settings_dir={settings}",
           f"--LabApp.workspaces_dir={root / '.lab' / 'workspaces'}",
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.extension_manager=readonly"]
    if os.geteuid() == 0:  # CI machines run the tests as root
        cmd.append("--ServerApp.allow_root=True")
    return subprocess.Popen(cmd, cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_ready(proc: subprocess.Popen, port: int, token: str, log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_S
    url = f"http://127.0.0.1:{port}/api/status?token={token}"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"jupyter lab exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"jupyter lab did not answer within {SERVER_START_S} s:\n{log_path.read_text()[-3000:]}")


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels (the process group this test started)."""
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
    try:  # kernels started by the server share its process group; leave none behind
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _cell_errors(page) -> list[str]:
    errs = page.eval_on_selector_all(
        ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
        "els => els.map(e => e.innerText).filter(t => t.includes('Traceback') || /\\w+Error:/.test(t))")
    widget = page.eval_on_selector_all(".jp-OutputArea-output", "els => els.map(e => e.innerText)"
                                       ".filter(t => t.includes('Error displaying widget'))")
    return errs + widget


def test_start_notebook_in_jupyterlab(tmp_path):
    sync_playwright = _require_browser()
    assert NOTEBOOK.is_file(), f"missing {NOTEBOOK}"
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir(parents=True)
    root = tmp_path / "lab"
    root.mkdir()
    shutil.copy(NOTEBOOK, root / NOTEBOOK.name)
    port, token = _free_port(), secrets.token_hex(16)
    log_path = OUT / "jupyterlab.log"
    console: list[str] = []
    t0 = time.monotonic()
    with open(log_path, "w") as log:
        proc = _start_lab(root, port, token, log)
        try:
            _wait_ready(proc, port, token, log_path)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS, headless=True)
                try:
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.on("console", lambda m: m.type == "error" and console.append(f"console: {m.text}"))
                    page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
                    try:
                        _drive(page, port, token)
                    except BaseException:
                        page.screenshot(path=str(OUT / "failure.png"), full_page=True)
                        raise
                    finally:
                        (OUT / "console.txt").write_text("\n".join(console))
                finally:
                    browser.close()
        finally:
            _stop(proc)
    real = [m for m in console if not any(p.search(m) for p in HARMLESS)]
    assert not real, "browser console errors:\n" + "\n".join(real)
    assert time.monotonic() - t0 < 230


def _drive(page, port: int, token: str) -> None:
    page.set_default_timeout(STEP_S * 1000)
    page.goto(f"http://127.0.0.1:{port}/lab/workspaces/browser-test/tree/{NOTEBOOK.name}?reset&token={token}",
              wait_until="domcontentloaded", timeout=SERVER_START_S * 1000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook .jp-Cell", timeout=SERVER_START_S * 1000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=SERVER_START_S * 1000)
    n_code = sum(c["cell_type"] == "code" for c in json.loads(NOTEBOOK.read_text())["cells"])
    page.wait_for_function("n => document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell').length === n",
                           arg=n_code, timeout=SERVER_START_S * 1000)
    page.screenshot(path=str(OUT / "00-opened.png"))

    _run_all(page)
    # done: every cell has run, or a cell failed (Run All stops there) and nothing runs any more
    page.wait_for_function(
        """n => { const p = [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
                            .map(e => e.innerText);
                  const done = p.length === n && p.every(t => /\\[\\d+\\]/.test(t));
                  const failed = [...document.querySelectorAll(
                      ".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']")]
                      .some(e => e.innerText.includes('Traceback'));
                  return done || (failed && !p.some(t => t.includes('*'))); }""",
        arg=n_code, timeout=RUN_ALL_S * 1000)
    page.wait_for_selector(".jp-NotebookPanel .jp-Notebook-ExecutionIndicator[data-status='idle']")
    page.screenshot(path=str(OUT / "01-ran-all.png"), full_page=True)
    errors = _cell_errors(page)
    assert not errors, "cell errors:\n" + "\n---\n".join(errors)

    ex = page.locator(".jp-OutputArea-output .wb-frame-explorer").first
    ex.wait_for(state="visible")
    nodes = ex.locator(".wb-graph .wb-node")
    labels = [t.strip() for t in nodes.all_inner_texts()]
    assert len(labels) >= 5 and labels[0] == "frame" and labels[-1] == "attribution", labels
    kinds = [next(c[len("wb-node-"):] for c in cls.split() if c.startswith("wb-node-") and c != "wb-node-active")
             for cls in nodes.evaluate_all("els => els.map(e => e.className)")]
    ex.scroll_into_view_if_needed()
    nodes.nth(0).click()  # the notebook's own cells moved the explorer: start from the first node
    for i, (label, kind) in enumerate(zip(labels, kinds, strict=True)):
        if i:
            ex.locator(".wb-next").first.click()
        _expect_node(page, ex, i, label, kind)
        ex.screenshot(path=str(OUT / f"step-{i:02d}-{kind}.png"))
        if kind == "decoder":
            before = ex.locator(".wb-step-text").inner_text()
            ex.locator(".wb-prev-step").first.click()
            page.wait_for_function("([el, t]) => el.innerText !== t",
                                   arg=[ex.locator(".wb-step-text").element_handle(), before])
            _expect_images(ex)
            ex.screenshot(path=str(OUT / f"step-{i:02d}-{kind}-nms-back.png"))
        if kind == "layers":
            before = _image_srcs(ex)
            ex.locator(".wb-next-op").first.click()
            page.wait_for_function("([root, s]) => [...root.querySelectorAll('.wb-view img')].map(e => e.src)"
                                   ".join(' ') !== s", arg=[ex.element_handle(), " ".join(before)])
            _expect_images(ex)
    assert ex.locator(".wb-next").first.is_disabled()
    # graph nodes are buttons: jump back to the first decoder from the last node
    target = kinds.index("decoder")
    nodes.nth(target).click()
    _expect_node(page, ex, target, labels[target], "decoder")
    assert ex.locator(".wb-status .wb-error").count() == 0
    page.screenshot(path=str(OUT / "99-end.png"), full_page=True)
    errors = _cell_errors(page)
    assert not errors, "errors after clicking:\n" + "\n---\n".join(errors)


def _run_all(page) -> None:
    """Run > Run All Cells, clicked again if no cell started (a click while the freshly opened
    page is still settling can be lost)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _ in range(3):
        page.locator(".lm-MenuBar-itemLabel", has_text=re.compile(r"^Run$")).click()
        page.locator(".lm-Menu-itemLabel", has_text=re.compile(r"^Run All Cells$")).click()
        try:
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-NotebookPanel .jp-CodeCell .jp-InputPrompt')]
                           .some(e => /\\[(\\d+|\\*)\\]/.test(e.innerText))""", timeout=20_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
    pytest.fail("Run > Run All Cells started no cell (three tries)")


def _expect_node(page, ex, i: int, label: str, kind: str) -> None:
    """The explorer shows node ``i``: label, active button, view, loaded pictures, no error."""
    page.wait_for_function(
        """([root, label, kind]) => {
             const l = root.querySelector('.wb-stage-label');
             return l && l.innerText.trim() === label && root.querySelector('.wb-body .wb-view-' + kind); }""",
        arg=[ex.element_handle(), label, kind])
    active = ex.locator(".wb-graph .wb-node.wb-node-active")
    assert active.count() == 1 and active.inner_text().strip() == label
    assert ex.locator(".wb-counter").inner_text().startswith(f"{i + 1} /")
    assert ex.locator(".wb-status .wb-error").count() == 0, ex.locator(".wb-status").inner_text()
    if kind in ("frame", "preprocess", "layers", "decoder", "meta"):
        _expect_images(ex)
    if kind == "attribution":  # a map (the notebook runs wb.explain) or the "no attributions yet" message
        if ex.locator(".wb-body .wb-view img").evaluate_all("els => els.filter(e => e.offsetParent).length"):
            _expect_images(ex)
        else:
            assert "no attributions yet" in ex.locator(".wb-attribution-message").inner_text()


def _image_srcs(ex) -> list[str]:
    return ex.locator(".wb-body .wb-view img").evaluate_all("els => els.map(e => e.src)")


def _expect_images(ex) -> None:
    """Every visible picture of the current view is loaded (an <img> with a src and pixels)."""
    ex.page.wait_for_function(
        """root => { const imgs = [...root.querySelectorAll('.wb-body .wb-view img')]
                       .filter(e => e.offsetParent !== null);
                     return imgs.length > 0 && imgs.every(e => e.src && e.complete && e.naturalWidth > 0); }""",
        arg=ex.element_handle())
