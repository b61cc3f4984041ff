"""Real-browser fixtures: a uvicorn server on the pytest test database and Debian's Chromium.

The server is a subprocess (the real ASGI stack: HTTP, WebSockets, channels-redis or the
in-memory layer) started once for this folder, pointed at the test database pytest-django
created (PostgreSQL, or the SQLite file on the embedded default); tests use
``transactional_db`` so what they write is committed and visible to it, and flushed after.
Celery runs eagerly inside the server, so a customer's message is analysed and escalated there.
No browser is downloaded: Playwright drives the system Chromium (tests/conftest.py).
"""

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from django.db import connection

from tests.conftest import chromium_path
from tests.template_syntax import TEMPLATE_SYNTAX, template_syntax_in

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
# Installed in every page before its own scripts: records any template syntax that reaches the
# document at any moment (first render, htmx swaps, live refreshes), so a leak that a later
# swap hides is still caught. Script and style contents are code, not what a person sees.
WATCH_TEMPLATE_SYNTAX = """
(() => {
  const pattern = new RegExp(TEMPLATE_SYNTAX);
  // Kept in sessionStorage so what one page of the tab showed survives its navigation.
  const key = "__leTemplateLeaks";
  const record = (leak) => {
    try {
      const leaks = JSON.parse(sessionStorage.getItem(key) || "[]");
      leaks.push(leak);
      sessionStorage.setItem(key, JSON.stringify(leaks));
    } catch (error) {
      (window[key] = window[key] || []).push(leak);  // no storage here (about:blank)
    }
  };
  const code = (node) => node.parentElement && node.parentElement.closest("script, style");
  const inspect = (node) => {
    if (node.nodeType === Node.TEXT_NODE) {
      if (pattern.test(node.data) && !code(node)) record(node.data.trim().slice(0, 200));
    } else if (node.nodeType === Node.ELEMENT_NODE) {
      for (const attribute of node.attributes) {
        if (pattern.test(attribute.value)) {
          record(`<${node.localName} ${attribute.name}="${attribute.value.slice(0, 200)}">`);
        }
      }
    }
  };
  const scan = (root) => {
    inspect(root);
    if (root.nodeType !== Node.ELEMENT_NODE || root.matches("script, style")) return;
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_ELEMENT | NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) inspect(walker.currentNode);
  };
  new MutationObserver((records) => {
    for (const record of records) {
      if (record.type === "childList") record.addedNodes.forEach(scan);
      else inspect(record.target);
    }
  }).observe(document, { childList: true, subtree: true, attributes: true, characterData: true });
})();
""".replace("TEMPLATE_SYNTAX", json.dumps(TEMPLATE_SYNTAX.pattern))
SERVER_START_TIMEOUT = 60
WAIT_MS = 15_000  # the longest any single step may take


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _database_url(settings_dict) -> str:
    user = settings_dict.get("USER") or ""
    password = settings_dict.get("PASSWORD") or ""
    auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
    host = settings_dict.get("HOST") or "127.0.0.1"
    port = settings_dict.get("PORT") or "5432"
    return f"postgres://{auth}{host}:{port}/{settings_dict['NAME']}"


@pytest.fixture(scope="package")
def live_server_url(django_db_setup, django_db_blocker):
    """Base URL of a uvicorn process serving the test database: PostgreSQL (and Redis when
    REDIS_URL is set), or, on the embedded default, the test's SQLite file (WAL lets the
    server and the test write to it at once) with the in-memory channel layer."""
    ARTIFACTS.mkdir(exist_ok=True)
    port = _free_port()
    env = {
        **os.environ,
        "CELERY_TASK_ALWAYS_EAGER": "1",
        "DB_CONN_MAX_AGE": "0",
        "DEBUG": "0",
        "HTTPS_ONLY": "0",
        "SECRET_KEY": os.environ.get("SECRET_KEY") or "e2e-secret-key-not-for-production",
        "PYTHONUNBUFFERED": "1",
    }
    if connection.vendor == "postgresql":
        env["DATABASE_URL"] = _database_url(connection.settings_dict)
    else:
        env.pop("DATABASE_URL", None)
        env["SQLITE_PATH"] = str(connection.settings_dict["NAME"])
    log = open(ARTIFACTS / "uvicorn.log", "w")  # noqa: SIM115 - closed below
    uvicorn = Path(sys.executable).with_name("uvicorn")
    command = [str(uvicorn)] if uvicorn.exists() else [sys.executable, "-m", "uvicorn"]
    server = subprocess.Popen(
        [
            *command,
            "config.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            os.environ.get("E2E_SERVER_LOG_LEVEL", "warning"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while True:
        if server.poll() is not None:
            log.close()
            pytest.fail("uvicorn exited: " + (ARTIFACTS / "uvicorn.log").read_text()[-3000:])
        try:
            with urllib.request.urlopen(url + "/accounts/login/", timeout=2) as response:
                if response.status == 200:
                    break
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        if time.monotonic() > deadline:
            server.kill()
            log.close()
            pytest.fail(f"uvicorn did not answer within {SERVER_START_TIMEOUT}s")
        time.sleep(0.2)
    yield url
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
    log.close()


@pytest.fixture(scope="package")
def browser():
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    if not path:
        pytest.skip("needs Chromium")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=path, args=CHROMIUM_ARGS, headless=True, timeout=WAIT_MS * 2
        )
        yield chromium
        chromium.close()


@pytest.fixture(autouse=True)
def _orm_next_to_playwright(monkeypatch):
    # Playwright's sync API keeps an event loop in this thread; the ORM calls the tests make
    # between browser steps are ordinary blocking calls, so Django's async guard is lifted
    # for these tests only.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


@pytest.fixture
def open_page(request, browser, live_server_url, transactional_db):
    """``open_page(name)`` → a page in its own browser context (its own cookies; ``locale``:
    the browser's language, en-US by default); every page is screenshotted into
    test-artifacts/ when the test fails."""
    contexts = []

    def make(name: str, locale: str = "en-US"):
        context = browser.new_context(
            base_url=live_server_url, viewport={"width": 1280, "height": 900}, locale=locale
        )
        context.set_default_timeout(WAIT_MS)
        context.add_init_script(WATCH_TEMPLATE_SYNTAX)
        context.le_base_url = live_server_url
        page = context.new_page()
        page.le_name = name
        page.le_console = []
        page.on("console", lambda message: page.le_console.append(message.text))
        page.on("pageerror", lambda error: page.le_console.append(f"pageerror: {error}"))
        contexts.append((context, page))
        return page

    yield make
    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    leaks = {}
    for context, page in contexts:
        problem = "" if failed or page.is_closed() else _page_problem(page)
        if problem:
            leaks[page.le_name] = problem
        if failed:
            ARTIFACTS.mkdir(exist_ok=True)
            stem = re.sub(r"[^\w.-]+", "_", f"{request.node.name}-{page.le_name}")
            try:
                page.screenshot(path=str(ARTIFACTS / f"{stem}.png"), full_page=True)
                (ARTIFACTS / f"{stem}.console.txt").write_text("\n".join(page.le_console))
            except Exception:  # a crashed page: nothing to capture
                pass
        context.close()
    assert not leaks, f"after the test's last step: {leaks}"


def _page_problem(page) -> str:
    """What a person must not see on ``page`` now or at any moment since it opened: template
    syntax (recorded by WATCH_TEMPLATE_SYNTAX, and in the current document), a script error, or
    anything the Content-Security-Policy refused."""
    recorded = page.evaluate(
        "(() => { try { return JSON.parse(sessionStorage.getItem('__leTemplateLeaks') || '[]'); }"
        " catch (error) { return window.__leTemplateLeaks || []; } })()"
    )
    visible = template_syntax_in(page.evaluate("document.documentElement.innerText || ''"))
    html = page.evaluate(
        "(() => { const d = document.documentElement.cloneNode(true);"
        " d.querySelectorAll('script, style').forEach(n => n.remove()); return d.outerHTML; })()"
    )
    problems = []
    leaks = list(dict.fromkeys([*recorded, *visible, *template_syntax_in(html)]))
    if leaks:
        problems.append(f"template syntax: {leaks[:5]}")
    errors = [line for line in page.le_console if line.startswith("pageerror")]
    if errors:
        problems.append(f"script errors: {errors}")
    # Chromium logs what the Content-Security-Policy refused (an inline style or script, eval)
    refused = [line for line in page.le_console if "Content Security Policy" in line]
    if refused:
        problems.append(f"refused by the CSP: {refused[:3]}")
    return "; ".join(problems)


def assert_page_clean(page) -> None:
    """Call after any step: no template syntax reached ``page`` since it opened (its first
    render, every swap and live refresh), and no script error. open_page also checks every page
    after the test's last step."""
    problem = _page_problem(page)
    assert not problem, f"{page.le_name} at {page.url}: {problem}"


_REAL_HASH = {}


def real_password(user, password: str = "pw"):
    """Give ``user`` a hash the server (default PASSWORD_HASHERS) checks, computed once."""
    from django.contrib.auth.hashers import PBKDF2PasswordHasher

    if password not in _REAL_HASH:
        _REAL_HASH[password] = PBKDF2PasswordHasher().encode(password, "e2esalt" * 3)
    user.password = _REAL_HASH[password]
    user.save(update_fields=["password"])
    return user


def sign_in(page, user, next_url: str = "/crm/live-escalation/"):
    """Skip the login form: a session made like the test client's force_login, as a cookie."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    page.context.add_cookies(
        [
            {
                "name": "sessionid",
                "value": client.cookies["sessionid"].value,
                "url": page.context.le_base_url,
            }
        ]
    )
    page.goto(next_url)


def log_in(page, username: str, password: str = "pw", next_url: str = "/crm/live-escalation/"):
    page.goto(f"/accounts/login/?next={next_url}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{next_url}")


def wait_for_js(page, expression: str, arg=None, timeout: float = 15.0):
    """``page.wait_for_function`` for pages under our Content-Security-Policy: Playwright's own
    polling compiles the predicate inside the page, which the policy (no eval) refuses; here
    each check is a DevTools evaluation, which the policy does not govern."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(expression, arg):
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout:.0f} s: {expression}")
        page.wait_for_timeout(100)


def wait_live(page):
    """The agent socket is connected (the header says Live)."""
    page.wait_for_selector('#live-state[data-state="live"]')


@pytest.fixture
def escalate(transactional_db):
    """``escalate(conversation, text=..., reason=..., priority=..., detail=...)`` → the
    escalation: the customer's ``text`` stored, then the conversation escalated as detection
    does, off the browser's thread (the services publish through the channel layer)."""
    from crm import services as crm_services
    from escalation import services as escalation_services
    from escalation.models import Escalation, Priority

    def run(conversation, *, text: str, reason="request", priority=Priority.NORMAL, detail=""):
        def work():
            crm_services.receive_customer_message(conversation=conversation, text=text)
            return escalation_services.escalate_conversation(
                conversation=conversation,
                reason=reason,
                priority=priority,
                triggered_by=Escalation.Trigger.DETECTION,
                detail=detail,
            )[0]

        return off_the_browser_thread(work)

    return run


def off_the_browser_thread(function, *args, **kwargs):
    """Run ``function`` in a fresh thread and return its result: Playwright's loop lives in
    this thread, so a service publishing to the channel layer (async_to_sync) must run apart."""
    import threading

    from django.db import connections

    outcome = {}

    def run():
        try:
            outcome["value"] = function(*args, **kwargs)
        except BaseException as error:  # re-raised in the test's thread
            outcome["error"] = error
        finally:
            connections.close_all()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=60)
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")
