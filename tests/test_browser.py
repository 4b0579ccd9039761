"""The studio page in headless Chromium (Debian's chromium + chromium-driver, driven by Selenium): upload a
presenter video and a voice, watch the progress, the result plays (its video element reports a duration),
the sync chart is drawn, the UI language follows the browser and switches. Skipped with the reason where
Chromium is not installed (`make test-browser` installs it). Screenshots of each state go to a temp folder,
or to docs/ when SYNCLIP_SCREENSHOTS=docs (as `make test-browser` runs it); SYNCLIP_STUDIO_CHECKPOINT names a
trained generator to dub with instead of the tiny untrained one."""

from __future__ import annotations

import importlib.util
import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from synclip import media
from synclip.server import BackgroundServer
from synclip.studio import StudioSettings

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _driver(lang: str):
    if not (CHROMIUM and CHROMEDRIVER):
        pytest.skip("Chromium is not installed (needs Debian's chromium and chromium-driver: `make test-browser`)")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (`make test-browser`)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1100,1500", f"--lang={lang}", "--autoplay-policy=no-user-gesture-required"):
        opts.add_argument(arg)
    opts.add_experimental_option("prefs", {"intl.accept_languages": lang})
    return webdriver.Chrome(options=opts, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))


def _until(predicate, timeout: float, what: str, poll: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


@pytest.fixture
def shots(tmp_path) -> Path:
    return DOCS if os.environ.get("SYNCLIP_SCREENSHOTS") == "docs" else tmp_path


def test_page_uploads_shows_progress_plays_result_draws_chart_and_switches_language(
        tmp_path, tiny_generator, clips, synth_dir, shots):
    video = synth_dir / "videos" / "synth_0000.mp4"
    voice = tmp_path / "voice.wav"  # 6 s, so the progress is there to be seen
    media.write_wav(voice, np.tile(media.read_audio(synth_dir / "audios" / "synth_0001.wav"), 3))
    # SYNCLIP_STUDIO_CHECKPOINT: a trained generator (the demo's) for screenshots worth looking at
    model = Path(os.environ.get("SYNCLIP_STUDIO_CHECKPOINT") or tiny_generator)
    settings = StudioSettings(data_dir=tmp_path / "studio", generator_checkpoint=model, score_checkpoint=str(model),
                              device="cpu")
    driver = _driver("en-US")
    try:
        with BackgroundServer(settings) as url:
            driver.get(url + "/")
            js = driver.execute_script
            assert js("return document.documentElement.lang") == "en"
            assert driver.find_element("css selector", "#submit").text == "Start"
            driver.save_screenshot(str(shots / "studio_1_start.png"))

            driver.find_element("css selector", "#face-file").send_keys(str(video))
            driver.find_element("css selector", "#audio-file").send_keys(str(voice))
            assert driver.find_element("css selector", "#face-chosen").text == video.name
            driver.find_element("css selector", "#submit").click()
            _until(lambda: js("return document.getElementById('progress-panel').dataset.status") == "running"
                   and js("return parseFloat(document.getElementById('bar-fill').style.width) > 0"), 60,
                   "the progress bar of a running job")
            driver.save_screenshot(str(shots / "studio_2_progress.png"))

            _until(lambda: js("return document.getElementById('progress-panel').dataset.status") == "done", 120,
                   "the job to finish")
            duration = _until(lambda: js("const v = document.getElementById('result-video');"
                                         "return v.readyState >= 1 && v.duration > 0 ? v.duration : 0"), 30,
                              "the result video's metadata")
            assert abs(duration - 6.0) < 0.3  # the result lasts as long as the voice
            assert js("return document.getElementById('source-media').tagName") == "VIDEO"
            drawn = _until(lambda: js("return document.getElementById('chart').dataset.drawn"), 30, "the chart")
            assert int(drawn) == 31 + 6  # 31 offsets of the search curve, 6 seconds of scores
            inked = js("""const c = document.getElementById('chart'), d = c.getContext('2d')
                            .getImageData(0, 0, c.width, c.height).data; let n = 0;
                          for (let i = 0; i < d.length; i += 4) if (d[i] < 200 || d[i + 1] < 200) n++; return n;""")
            assert inked > 2000  # axes, curve and bars, not a blank canvas
            assert "Sync score" in driver.find_element("css selector", "#summary").text
            driver.execute_script("document.getElementById('result-panel').scrollIntoView()")
            driver.save_screenshot(str(shots / "studio_3_result.png"))

            driver.find_element("css selector", "#lang-switch").click()
            assert js("return document.documentElement.lang") == "zh-CN"
            assert driver.find_element("css selector", "#submit").text == "开始"
            assert "同步得分" in driver.find_element("css selector", "#summary").text
            assert driver.find_element("css selector", "#lang-switch").text == "English"
            driver.save_screenshot(str(shots / "studio_4_chinese.png"))
    finally:
        driver.quit()


def test_page_language_follows_the_browser(tmp_path, tiny_generator):
    settings = StudioSettings(data_dir=tmp_path / "studio", generator_checkpoint=tiny_generator, device="cpu")
    driver = _driver("zh-CN")
    try:
        with BackgroundServer(settings) as url:
            driver.get(url + "/")
            assert driver.execute_script("return document.documentElement.lang") == "zh-CN"
            assert "数字人" in driver.find_element("css selector", "h1").text
            if importlib.util.find_spec("synclip.tts"):  # the Chinese voices are offered for a Chinese script
                _until(lambda: driver.execute_script("return document.getElementById('voice').options.length") > 1,
                       30, "the voice list")
                ids = driver.execute_script("return [...document.getElementById('voice').options].map(o => o.value)")
                assert ids[0] == "" and all(i.startswith(("espeak:cmn", "piper:zh")) for i in ids[1:]), ids
    finally:
        driver.quit()
