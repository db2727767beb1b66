"""The /chat demo in headless chromium (Debian's /usr/bin/chromium, driven
by npm playwright-core from web/node_modules): a message typed in one page
appears in another, and a page that was offline resumes without gap or
duplicate. Skipped when node, playwright-core or chromium is missing."""
import os
import shutil
import subprocess

import pytest

from conftest import SLOW

HERE = os.path.dirname(os.path.abspath(__file__))
MODULES = os.environ.get("SPATE_WEB_MODULES",
                         os.path.join(HERE, "..", "..", "web", "node_modules"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_chat_in_two_browser_pages(spate_factory):
    if not shutil.which("node"):
        pytest.skip("node is not installed")
    if not os.path.isdir(os.path.join(MODULES, "playwright-core")):
        pytest.skip("playwright-core is not in web/node_modules (scripts/install-deps.sh)")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip("chromium is not installed")
    srv = spate_factory("demo.chat_topic=chat")
    r = subprocess.run(["node", os.path.join(HERE, "chat_browser.js"), str(srv.port), MODULES],
                       capture_output=True, text=True, timeout=120 * SLOW)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "ok:" in r.stdout
