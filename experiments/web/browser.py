"""Debian's chromium, headless, driven by selenium: how the lab's page is tested and
photographed (``tests/test_lab_page.py``, ``splinterlab bench lab``)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"  # Debian's packages
WINDOW = (1600, 900)


@contextlib.contextmanager
def chromium() -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                 "--window-size={},{}".format(*WINDOW)):
        options.add_argument(flag)  # --no-sandbox: chromium refuses root otherwise
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(predicate, timeout: float) -> float | None:
    """Seconds until ``predicate()`` held (None: it did not within ``timeout``)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if predicate():
            return time.monotonic() - start
        time.sleep(0.05)
    return None
