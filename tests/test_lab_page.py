"""The lab's page as a person uses it: Debian's chromium, headless, driven by selenium against
``splinterlab lab``'s front and its panels over real networks (isp; permissionless IP and
registered access side by side, each in its own process)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from experiments.web.browser import chromium, wait_for
from experiments.web.front import Front

pytestmark = pytest.mark.needs_root

DESIGNS = ("permissionless", "registered")


@pytest.fixture(scope="module")
def front():
    with Front("isp", DESIGNS, {}) as served:
        yield served


@pytest.fixture
def browser():
    with chromium() as driver:
        yield driver


def status(url: str, data: bytes | None = None) -> int:
    try:
        return urllib.request.urlopen(urllib.request.Request(url, data=data), timeout=5).status
    except urllib.error.HTTPError as e:
        return e.code


def panel(front: Front, design: str) -> str:
    return next(p["base"] for p in front.panels if p["design"] == design)


def state(front: Front, design: str) -> dict:
    with urllib.request.urlopen(f"{panel(front, design)}/state?token={front.token}") as r:
        return json.load(r)


def test_only_the_token_opens_the_lab(front):
    base = f"http://127.0.0.1:{front.server_port}"
    assert status(front.url) == 200
    assert status(f"{base}/panels") == 403 and status(f"{base}/panels?token=guess") == 403
    act = json.dumps({"call": "act", "args": ["person", "h9"]}).encode()
    for design in DESIGNS:
        assert status(f"{panel(front, design)}/state") == 403
        assert status(f"{panel(front, design)}/do?token=guess", act) == 403
        assert state(front, design)["acted"] == []  # nothing done


def test_a_student_cuts_a_person_off_and_cuts_a_link(front, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    nodes = len(state(front, "registered")["nodes"])
    start = time.monotonic()
    browser.get(front.url)
    drawn = wait_for(lambda: len(browser.find_elements(By.CSS_SELECTOR, "circle.node"))
                     == len(DESIGNS) * nodes, 10)
    print(f"\nboth designs drawn {time.monotonic() - start:.2f} s after the page was asked for")
    assert drawn is not None and time.monotonic() - start < 2.0

    def node(design: str, name: str, what: str) -> str:
        return browser.find_element(By.ID, f"{design}-node-{name}").get_attribute(f"data-{what}")

    def click(xpath: str) -> None:
        browser.find_element(By.XPATH, xpath).click()

    assert wait_for(lambda: node("registered", "h9", "outcome") == "admitted"
                    and node("permissionless", "h9", "outcome") == "passing", 5) is not None
    browser.find_element(By.ID, "registered-node-h9").click()
    click("//button[@id='act-person']")
    clicked = time.monotonic()
    shown = wait_for(lambda: all(node(d, "h9", "state") == "cut off" for d in DESIGNS), 5)
    denied = wait_for(lambda: node("registered", "h9", "outcome") == "denied", 5)
    print(f"h9 drawn cut off in both {shown:.3f} s, its flows denied under registered access "
          f"{time.monotonic() - clicked:.3f} s after the click; permissionless h9: "
          f"{node('permissionless', 'h9', 'outcome')}")
    assert shown is not None and shown < 1.0  # the action, on the page within a second
    assert denied is not None and time.monotonic() - clicked < 2.0  # and a round measured
    assert node("registered", "h3", "outcome") == "partly"  # h3 reaches everyone but h9
    # the difference one click shows: a border censor cuts h9 off abroad only
    assert node("permissionless", "h9", "outcome") in ("partly", "passing")
    answer = browser.find_element(By.ID, "answer").text
    print(answer)
    assert all(f"{d}: " in answer for d in DESIGNS), answer
    click("//div[@id='controls']/button[text()='undo']")
    assert wait_for(lambda: node("registered", "h9", "outcome") == "admitted", 5) is not None

    def answers(asked: str) -> dict[str, dict]:
        """Each design's answer to ``asked`` (the page's answer box), once all are in."""
        box = browser.find_element(By.ID, "answer")
        assert wait_for(lambda: box.text.startswith(asked) and box.text.count("\n") ==
                        len(DESIGNS), 20) is not None, box.text
        return {line.split(": ", 1)[0]: json.loads(line.split(": ", 1)[1])
                for line in box.text.splitlines()[1:]}

    # the operator blocks a site abroad; h3 probes it directly, then through a tunnel
    Select(browser.find_element(By.ID, "action")).select_by_value("destination")
    click("//button[@id='do']")
    assert wait_for(lambda: all("destination" in e.text for e in browser.find_elements(
        By.CSS_SELECTOR, ".panel .acted")), 5) is not None
    browser.find_element(By.ID, "registered-node-h3").click()
    Select(browser.find_element(By.ID, "site")).select_by_value("news.abroad.example")
    probed = {}
    for method in ("direct", "tunnel"):
        Select(browser.find_element(By.ID, "method")).select_by_value(method)
        click("//button[@id='probe']")
        probed[method] = answers(f"probe h3 news.abroad.example {method}")
    print("probes of the blocked site:", {m: {d: a["label"] for d, a in got.items()}
                                          for m, got in probed.items()})
    assert all(a["label"] is not None for a in probed["direct"].values())  # blocked in both
    assert probed["tunnel"]["permissionless"]["label"] is None  # the border censor evaded
    click("//button[@id='undo']")

    logged = wait_for(lambda: " tie 0 pairs" not in browser.find_element(
        By.CSS_SELECTOR, "#panel-registered .log").text, 5)
    assert logged is not None, "the authority's records never reached the page"

    def counters(design: str) -> tuple[int, str]:
        text = browser.find_element(By.CSS_SELECTOR, f"#panel-{design} .counters").text
        return int(text.split()[1].rstrip(":")), text

    browser.find_element(By.CSS_SELECTOR, '#panel-registered line[data-link="c1 c2"]').click()
    click("//div[@id='controls']/button[text()='cut']")
    assert wait_for(lambda: all("down" in browser.find_element(
        By.CSS_SELECTOR, f'#panel-{d} line[data-link="c1 c2"]').get_attribute("class")
        for d in DESIGNS), 2) is not None
    cut_at = {d: counters(d)[0] for d in DESIGNS}  # rounds from here on began after the cut

    def healed(design: str) -> bool:
        at, text = counters(design)
        return at > cut_at[design] + 1 and (" 0 denied" in text or " 0 lost" in text)
    took = wait_for(lambda: all(healed(d) for d in DESIGNS), 10)  # the core is redundant
    print(f"every flow through again {took} s after the cut was drawn: "
          + "; ".join(counters(d)[1] for d in DESIGNS))
    assert took is not None
    click("//div[@id='controls']/button[text()='repair']")
    assert wait_for(lambda: not any("down" in browser.find_element(
        By.CSS_SELECTOR, f'#panel-{d} line[data-link="c1 c2"]').get_attribute("class")
        for d in DESIGNS), 2) is not None
