"""The two pages in a real browser: headless Chromium driven by Selenium (Debian's chromium and
chromium-driver packages, which .ci/run installs). Skipped, saying why, where either is missing.

Screenshots of both pages go to the test's output folder (tmp_path), and also to
$FASTKERN_SCREENSHOTS when it is set."""

import json
import os
import shutil
import urllib.request
from pathlib import Path

import pytest

from apps_data import HYMENOPTERA, build, copy_dataset
from fastkern.apps import clean, serve

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install selenium)")


@pytest.fixture(scope="module")
def browser():
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service

    binary = next((shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("no Chromium or chromedriver on PATH (Debian: apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1200,860"):
        options.add_argument(arg)  # --no-sandbox: CI runs as root, where Chromium's sandbox will not start
    try:
        b = webdriver.Chrome(options=options, service=Service(driver))
    except WebDriverException as e:
        pytest.skip(f"Chromium does not start here: {e.msg}")
    yield b
    b.quit()


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build(tmp_path_factory.mktemp("browser"))


def wait_for_state(browser, *states, timeout=30):
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser, timeout).until(
        lambda b: b.find_element("tag name", "body").get_attribute("data-state") in states
    )
    return browser.find_element("tag name", "body").get_attribute("data-state")


def screenshot(browser, folder, name):
    path = Path(folder) / name
    assert browser.save_screenshot(str(path)) and path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if os.environ.get("FASTKERN_SCREENSHOTS"):
        shutil.copy(path, Path(os.environ["FASTKERN_SCREENSHOTS"]) / name)
    return path


def test_serve_page_predicts_an_uploaded_photo(browser, built, tmp_path):
    photos = sorted((HYMENOPTERA / "val" / "bees").glob("*.jpg")) or sorted((built[0] / "val" / "bees").glob("*.jpg"))
    photo = photos[0]  # a full-size photo where the shared data is there
    with serve.make_server(built[1], port=0, quiet=True) as server:
        req = urllib.request.Request(server.url + "predict", data=photo.read_bytes(), method="POST")
        with urllib.request.urlopen(req, timeout=30) as r:
            expected = json.load(r)
        browser.get(server.url)
        wait_for_state(browser, "ready")
        browser.find_element("id", "file").send_keys(str(photo))
        assert wait_for_state(browser, "done", "error") == "done", browser.find_element("id", "error").text
        assert browser.find_element("id", "label").text == expected["class"]
        assert len(browser.find_elements("css selector", "#bars .bar")) == 2
        assert browser.execute_script("return document.getElementById('preview').naturalWidth") > 0
        screenshot(browser, tmp_path, "serve.png")
        junk = tmp_path / "notes.txt"
        junk.write_text("not a photo")
        browser.find_element("id", "file").send_keys(str(junk))
        assert wait_for_state(browser, "error") == "error"
        assert "not an image" in browser.find_element("id", "error").text


def test_clean_page_moves_a_marked_image(browser, built, tmp_path):
    from selenium.webdriver.support.ui import Select

    data = copy_dataset(built[0], tmp_path / "data")
    with clean.make_server(data, built[1], port=0, quiet=True) as server:
        browser.get(server.url)
        wait_for_state(browser, "ready")
        cards = browser.find_elements("css selector", ".card")
        assert len(cards) == 18
        victim = sorted((data / "train" / "ants").glob("*.jpg"))[0]
        rel = f"train/ants/{victim.name}"
        Select(browser.find_element("css selector", f'select[data-path="{rel}"]')).select_by_value("bees")
        browser.find_element("id", "plan").click()
        wait_for_state(browser, "review")
        assert rel in browser.find_element("id", "moves").text and victim.exists()  # reviewed, not yet moved
        browser.execute_script("window.scrollTo(0, 0)")
        screenshot(browser, tmp_path, "clean.png")
        browser.find_element("id", "apply").click()
        assert wait_for_state(browser, "applied", "error") == "applied", browser.find_element("id", "error").text
        assert not victim.exists() and (data / "train" / "bees" / victim.name).is_file()
        browser.find_element("id", "undo").click()
        assert wait_for_state(browser, "undone", "error") == "undone"
        assert victim.is_file() and not (data / "train" / "bees" / victim.name).exists()
