"""The lab's page as a person uses it: Debian's chromium, headless, driven by selenium against
``splinterlab lab``'s server over a real network (isp, registered access)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from experiments.lab import Lab
from experiments.web.server import LabServer

pytestmark = pytest.mark.needs_root


@pytest.fixture(scope="module")
def served():
    with Lab("isp", "registered") as lab, LabServer(lab) as server:
        yield lab, server


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,800"):
        options.add_argument(flag)  # --no-sandbox: chromium refuses root otherwise
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    yield driver
    driver.quit()


def status(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def wait_for(predicate, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held (None: it did not within ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    return None


def test_only_the_token_opens_the_lab(served):
    _, server = served
    base = f"http://127.0.0.1:{server.server_port}"
    assert status(server.url) == 200
    assert status(f"{base}/state") == 403 and status(f"{base}/state?token=guess") == 403
    refused = urllib.request.Request(f"{base}/do", data=json.dumps(
        {"call": "act", "args": ["person", "h9"]}).encode(), method="POST")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(refused, timeout=5)
    assert e.value.code == 403 and not served[0].acted  # nothing done


def test_a_student_cuts_a_person_off_and_cuts_a_link(served, browser):
    lab, server = served
    from selenium.webdriver.common.by import By

    def circles():
        return browser.find_elements(By.CSS_SELECTOR, "circle.node")

    start = time.monotonic()
    browser.get(server.url)
    drawn = wait_for(lambda: len(circles()) == len(lab.graph), 10)
    print(f"\npage drawn {time.monotonic() - start:.2f} s after it was asked for")
    assert drawn is not None and time.monotonic() - start < 2.0

    def outcome(node: str) -> str:
        return browser.find_element(By.ID, f"node-{node}").get_attribute("data-outcome")

    assert wait_for(lambda: outcome("h9") == "admitted", 5) is not None
    browser.find_element(By.ID, "node-h9").click()
    browser.find_element(By.ID, "act-person").click()
    clicked = time.monotonic()
    state = browser.find_element(By.ID, "node-h9").get_attribute
    shown = wait_for(lambda: state("data-state") == "cut off", 5)
    denied = wait_for(lambda: outcome("h9") == "denied", 5)
    print(f"h9 drawn cut off {shown:.3f} s, its flows denied {time.monotonic() - clicked:.3f} s "
          "after the click")
    assert shown is not None and shown < 1.0  # the action, on the page within a second
    assert denied is not None and time.monotonic() - clicked < 2.0  # and a round measured
    assert outcome("h3") == "partly"  # h3 still reaches everyone but h9
    assert "person" in browser.find_element(By.ID, "acted").text
    lab.undo("person")
    assert wait_for(lambda: outcome("h9") == "admitted", 5) is not None
    assert time.monotonic() - clicked < 10

    def counters() -> tuple[int, str]:
        text = browser.find_element(By.ID, "counters").text
        return int(text.split()[1].rstrip(":")), text

    link = browser.find_element(By.CSS_SELECTOR, 'line[data-link="c1 c2"]')
    link.click()
    browser.find_element(By.XPATH, "//button[text()='cut']").click()
    assert wait_for(lambda: "down" in browser.find_element(
        By.CSS_SELECTOR, 'line[data-link="c1 c2"]').get_attribute("class"), 2) is not None
    cut_at = counters()[0]  # rounds from here on began after the cut

    def healed() -> bool:
        at, text = counters()
        return at > cut_at + 1 and " 0 denied" in text
    took = wait_for(healed, 10)  # the core is redundant: routing heals around the cut
    print(f"every flow admitted again {took} s after the cut was drawn: {counters()[1]}")
    assert took is not None
    lab.restore("c1", "c2")
