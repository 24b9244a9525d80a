"""``clara-hydra dashboard`` for real: a demo sweep's SQLite study served by optuna-dashboard, read
in a real headless browser (Debian's Chromium, driven by Selenium through Debian's chromedriver),
as a user opens it: the study, its metric's name, its trials, their params by the names a user
reads, and their intermediate values."""

from __future__ import annotations

import os
import re
import select
import shutil
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, clara_cli, one_error

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chromium():
    """(chromium, chromedriver): Debian's packages, installed when missing."""
    if shutil.which("chromedriver") is None or shutil.which("chromium") is None:
        if shutil.which("apt-get") is None or os.geteuid() != 0:
            pytest.skip("Chromium is not installed and cannot be installed here")
        from conftest import apt_install
        apt_install("chromium", "chromium-driver")
    return shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """A 2-trial demo sweep's study (intermediate values: one per epoch), in a SQLite file."""
    work = tmp_path_factory.mktemp("sweep")
    storage = f"sqlite:///{work / 'study.db'}"
    proc = subprocess.run([sys.executable, str(ROOT / "train.py"), "-m", "hydra.sweeper.n_trials=2", "epochs=2",
                           "hydra.sweeper.pruner=none", "hydra.sweeper.study_name=demo",
                           f"hydra.sweeper.storage={storage}", f"hydra.sweep.dir={work / 'sweep'}"],
                          cwd=work, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return work, storage, proc.stdout + proc.stderr


def _serve(storage: str, cwd, *args: str) -> tuple[subprocess.Popen, str]:
    """The dashboard on a free port, and the address it printed first."""
    proc = subprocess.Popen(clara_cli() + ["dashboard", "--storage", storage, "--port", "0", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    ready, _, _ = select.select([proc.stdout], [], [], 120)
    line = proc.stdout.readline().strip() if ready else ""
    if not line.startswith("http://"):
        proc.kill()
        _, err = proc.communicate(timeout=30)
        pytest.fail(f"no address from the dashboard: {line!r} {err[-2000:]}")
    return proc, line


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _browser(chromium, profile):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    binary, driver = chromium
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={profile}"):
        options.add_argument(arg)
    options.binary_location = binary
    return webdriver.Chrome(options=options, service=Service(driver))


def _page(browser, url: str, *wanted: str) -> str:
    """The page's text once every one of ``wanted`` shows (the dashboard renders in the browser)."""
    from selenium.webdriver.support.ui import WebDriverWait
    browser.get(url)
    WebDriverWait(browser, 120).until(lambda b: all(w in b.find_element("tag name", "body").text for w in wanted))
    return browser.find_element("tag name", "body").text


def test_the_dashboard_shows_the_study_its_trials_and_their_curves(tmp_path, chromium, study):
    import optuna
    work, storage, said = study
    assert "clara-hydra dashboard demo --storage " in said  # the sweep's end says how to open it
    stored = optuna.load_study(study_name="demo", storage=storage)
    trials = stored.get_trials(deepcopy=False)
    server, url = _serve(storage, tmp_path)
    try:
        assert re.fullmatch(r"http://127\.0\.0\.1:\d+/dashboard/studies/\d+", url), url
        browser = _browser(chromium, tmp_path / "profile")
        try:
            text = _page(browser, url, "demo", "Intermediate values", "trial #1")
            assert "mean_dice" in text  # the metric's own name, not "Objective Value" on its history
            text = _page(browser, url + "/trials", "2 Trials", "Intermediate Values")
            assert "Trial 0" in text and "Trial 1" in text and text.count("Complete") >= 2
            assert "SegResnet_init_filters" in text and "train.model.args" not in text  # names a user reads
            shown = re.search(r"Intermediate Values\n((?:\d+ \S+\n)+)", text)
            assert shown, text
            steps = {int(s): float(v) for s, v in (ln.split() for ln in shown.group(1).strip().splitlines())}
            assert steps == pytest.approx(trials[0].intermediate_values)  # trial 0's, one per epoch
            assert sorted(steps) == [1, 2]
        finally:
            browser.quit()
    finally:
        _stop(server)


def test_the_dashboard_ends_on_ctrl_c_and_refuses_what_it_cannot_open_in_one_line(tmp_path, study):
    work, storage, _ = study
    server, url = _serve(storage, tmp_path, "demo")
    try:
        os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C sends
        deadline = time.monotonic() + 60
        while server.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.returncode == 0 and "Traceback" not in server.stderr.read()
    finally:
        _stop(server)
    line = one_error(subprocess.run(clara_cli() + ["dashboard", "nope", "--storage", storage, "--port", "0"],
                                    cwd=tmp_path, capture_output=True, text=True, timeout=120))
    assert "no study 'nope'" in line and "demo" in line
    line = one_error(subprocess.run(clara_cli() + ["dashboard", "--storage", f"sqlite:///{tmp_path / 'none.db'}"],
                                    cwd=tmp_path, capture_output=True, text=True, timeout=120))
    assert "no such storage file" in line and not (tmp_path / "none.db").exists()
