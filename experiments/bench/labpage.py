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

TIMEOUT_S = 30  # for anything the page must show: beyond it the step is recorded as not shown
SHOTS = "screenshots"  # their directory: photographs, not plots redrawn from data


def _state(front: Front, panel: dict) -> dict:
    with urllib.request.urlopen(f"{panel['base']}/state?token={front.token}", timeout=5) as r:
        return json.load(r)


def _flows(front: Front) -> dict[str, dict[str, int]]:
    return {p["design"]: dict(Counter(_state(front, p)["flows"].values()))
            for p in front.panels}


def _rounds(front: Front) -> dict[str, int]:
    return {p["design"]: _state(front, p)["round"] for p in front.panels}


def run(spec: str, archs: tuple[str, ...], results_dir) -> dict:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    import topologies

    graph = topologies.build(spec)
    out_dir = results_dir / SHOTS
    out_dir.mkdir(exist_ok=True)
    victim, region = subjects.choose(graph).victim, subjects.choose(graph).region
    figures: dict = {"designs": list(archs), "nodes": len(graph), "victim": victim,
                     "region": region, "steps": {}}
    with Front(spec, archs, {}) as front, chromium() as page:
        def acted_text() -> list[str]:
            return [e.text for e in page.find_elements(By.CSS_SELECTOR, ".panel .acted")]

        start = time.monotonic()
        page.get(front.url)
        drawn = wait_for(lambda: len(page.find_elements(By.CSS_SELECTOR, "circle.node"))
                         == len(archs) * len(graph), TIMEOUT_S)
        figures["drawn_s"] = round(time.monotonic() - start, 3) if drawn is not None else None
        wait_for(lambda: min(_rounds(front).values()) >= 2, TIMEOUT_S)
        print(f"{spec} under {', '.join(archs)}: the page drawn {figures['drawn_s']} s after "
              "it was asked for")

        def step(name: str, act, shown, undo) -> None:
            clicked = time.monotonic()
            act()
            took = wait_for(shown, TIMEOUT_S)
            before = _rounds(front)  # a round under way when the action was drawn is dropped
            measured = wait_for(lambda: all(r > before[d] + 1 for d, r in
                                            _rounds(front).items()), TIMEOUT_S)
            flows = _flows(front)
            page.save_screenshot(str(out_dir / f"{name}.png"))
            figures["steps"][name] = {
                "shown_s": round(took, 3) if took is not None else None,
                "measured_s": round(time.monotonic() - clicked, 3) if measured is not None
                else None, "flows": flows}
            print(f"{name}: on the page {took} s after the click; flows then: {flows}")
            if undo:
                undo()
                wait_for(lambda: all(name not in t for t in acted_text()), TIMEOUT_S)

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
            lambda: click("//div[@id='controls']/button[text()='undo']"))

        def shut_region() -> None:
            Select(page.find_element(By.ID, "action")).select_by_value("region")
            click("//button[@id='do']")
        step("region", shut_region, lambda: all("region" in t for t in acted_text()),
             lambda: click("//button[@id='undo']"))

        step("central", lambda: click("//button[text()='fail the central element']"),
             lambda: sum("is down" in t for t in acted_text()) == sum(
                 bool(_state(front, p)["central"]) for p in front.panels),
             lambda: click("//button[text()='bring it back']"))
    return figures
