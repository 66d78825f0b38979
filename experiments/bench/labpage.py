"""``splinterlab bench lab``: the lab's page in Debian's chromium, every design compared side
by side: how soon it is drawn, how soon each operator action shows on it, what each design's
flows did then, and a screenshot of each moment (the README's ten-minute lab shows them).

Every action is taken as a student takes it, by clicks on the page; every figure is read from
the page or from the panels' own state.
"""

from __future__ import annotations

import json
import time
import urllib.request
from collections import Counter

from experiments import subjects
from experiments.web.browser import chromium, wait_for
from experiments.web.front import Front
from topologies.errors import NetworkError

TIMEOUT_S = 30  # for anything the page must show: beyond it the step is recorded as not shown
SHOTS = "screenshots"  # their directory: photographs, not plots redrawn from data


def _state(front: Front, panel: dict, route: str = "/state") -> dict:
    with urllib.request.urlopen(f"{panel['base']}{route}?token={front.token}", timeout=5) as r:
        return json.load(r)


def _flows(front: Front) -> dict[str, dict[str, int]]:
    return {p["design"]: dict(Counter(_state(front, p)["flows"].values()))
            for p in front.panels}


def _rounds(front: Front) -> dict[str, int]:
    """Each panel's round counter alone: polled every 50 ms while waiting for rounds."""
    return {p["design"]: _state(front, p, "/round")["round"] for p in front.panels}


def since(t: float) -> float:
    return round(time.monotonic() - t, 3)


def run(spec: str, archs: tuple[str, ...], results_dir) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    import topologies

    graph = topologies.build(spec)
    out_dir = results_dir / SHOTS
    out_dir.mkdir(exist_ok=True)
    chosen = subjects.choose(graph)
    victim, region = chosen.victim, chosen.region
    figures: dict = {"designs": list(archs), "nodes": len(graph), "victim": victim,
                     "region": region, "steps": {}}
    with Front(spec, archs, {}) as front, chromium() as page:
        def acted_text() -> list[str]:
            return [e.text for e in page.find_elements(By.CSS_SELECTOR, ".panel .acted")]

        start = time.monotonic()
        page.get(front.url)
        drawn = wait_for(lambda: len(page.find_elements(By.CSS_SELECTOR, "circle.node"))
                         == len(archs) * len(graph), TIMEOUT_S)
        figures["drawn_s"] = since(start) if drawn is not None else None
        if wait_for(lambda: min(_rounds(front).values()) >= 2, TIMEOUT_S) is None:
            raise NetworkError(f"no round of flows measured in {TIMEOUT_S} s on every panel")
        print(f"{spec} under {', '.join(archs)}: the page drawn {figures['drawn_s']} s after "
              "it was asked for")

        def step(name: str, act, shown, undo, gone: str) -> None:
            """``act`` by clicks, until ``shown`` holds; then ``undo``, until no panel's
            'in force' line says ``gone``."""
            clicked = time.monotonic()  # every time from the first click
            act()
            shown_s = since(clicked) if wait_for(shown, TIMEOUT_S) is not None else None
            before = _rounds(front)  # a round under way when the action was drawn is dropped
            measured = wait_for(lambda: all(r > before[d] + 1 for d, r in
                                            _rounds(front).items()), TIMEOUT_S)
            flows = _flows(front) if measured is not None else None
            page.save_screenshot(str(out_dir / f"{name}.png"))
            figures["steps"][name] = {"shown_s": shown_s, "flows": flows,
                                      "measured_s": since(clicked) if flows else None}
            print(f"{name}: on the page {shown_s} s after the click; flows of a round begun "
                  f"after it: {flows}")
            undo()
            wait_for(lambda: all(gone not in t for t in acted_text()), TIMEOUT_S)

        def click(xpath: str) -> None:
            page.find_element(By.XPATH, xpath).click()

        page.save_screenshot(str(out_dir / "rest.png"))
        figures["rest"] = _flows(front)

        def cut_person() -> None:
            page.find_element(By.ID, f"{archs[0]}-node-{victim}").click()
            click("//button[@id='act-person']")
        step("person", cut_person, lambda: all(
            page.find_element(By.ID, f"{d}-node-{victim}").get_attribute("data-state")
            == "cut off" for d in archs),
            lambda: click("//div[@id='controls']/button[text()='undo']"), "person")

        def shut_region() -> None:
            Select(page.find_element(By.ID, "action")).select_by_value("region")
            click("//button[@id='do']")
        step("region", shut_region, lambda: all("region" in t for t in acted_text()),
             lambda: click("//button[@id='undo']"), "region")

        centrals = sum(bool(_state(front, p)["central"]) for p in front.panels)  # read once
        step("central", lambda: click("//button[text()='fail the central element']"),
             lambda: sum("is down" in t for t in acted_text()) == centrals,
             lambda: click("//button[text()='bring it back']"), "is down")
    return figures
