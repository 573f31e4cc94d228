#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The console in headless chromium (run by tests/browser/console.sh, which
makes the org, users and activity and passes them in BROWSER_* variables).
Prints one "ok - " / "not ok - " line per check; exits 1 when one failed.
Screenshots go to BROWSER_ART."""
import json
import os
import ssl
import subprocess
import sys
import urllib.error
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

URL = os.environ["BROWSER_URL"]
KEY = os.environ["BROWSER_KEY"]
OWNER = os.environ["BROWSER_OWNER"]
MEMBER = os.environ["BROWSER_MEMBER"]
PW = os.environ["BROWSER_PW"]
ART = os.environ["BROWSER_ART"]
TMP = os.environ["BROWSER_TMP"]
ADMIN = os.environ["BROWSER_ADMIN"]
INVITE = os.environ["BROWSER_INVITE"]
COOKIE = "__Host-bw_session"
WAIT_S = 15

failed = 0


def ok(name):
    print("ok - " + name, flush=True)


def fail(name, why):
    global failed
    failed += 1
    print("not ok - %s: %s" % (name, str(why).replace("\n", " ")[:400]),
          flush=True)


def check(name, want, got):
    if want == got:
        ok(name)
    else:
        fail(name, "expected %r, got %r" % (want, got))


def http(method, path, headers=None, body=None):
    """(status, parsed body or None) of one request, certificate unchecked
    (the stack's is self-signed)."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(URL + path, method=method,
                                 headers=headers or {}, data=body)
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=20) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    try:
        return status, json.loads(text) if text else None
    except ValueError:
        return status, None


def driver():
    o = Options()
    o.binary_location = "/usr/bin/chromium"
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
              "--disable-gpu", "--no-first-run", "--disable-extensions",
              "--window-size=1280,1600",
              "--user-data-dir=" + os.path.join(TMP, "profile")):
        o.add_argument(a)
    o.accept_insecure_certs = True
    o.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    svc = Service("/usr/bin/chromedriver",
                  log_path=os.path.join(TMP, "chromedriver.log"))
    return webdriver.Chrome(service=svc, options=o)


def shot(d, name):
    path = os.path.join(ART, name + ".png")
    d.save_screenshot(path)
    return path


def visible(d, el_id):
    def f(_):
        e = d.find_element(By.ID, el_id)
        return e if e.is_displayed() else False
    return WebDriverWait(d, WAIT_S).until(f)


def login(d, email, pw):
    d.get(URL + "/console/")
    visible(d, "login-view")
    e = d.find_element(By.ID, "email")
    e.clear()
    e.send_keys(email)
    p = d.find_element(By.ID, "password")
    p.clear()
    p.send_keys(pw)
    d.find_element(By.ID, "login-submit").click()


def text(d, el_id):
    return d.find_element(By.ID, el_id).text


def value(d, el_id):
    return d.find_element(By.ID, el_id).get_attribute("data-value")


def logout(d):
    d.find_element(By.ID, "logout").click()
    visible(d, "login-view")


def page_errors(d):
    """SEVERE browser log lines: JS errors, CSP refusals, failed loads
    (the expected 401 of /auth/session before login is not one: it is
    filtered out)."""
    out = []
    for e in d.get_log("browser"):
        if e.get("level") != "SEVERE":
            continue
        m = e.get("message", "")
        if "/api/v1/auth/session" in m or "/api/v1/auth/login" in m \
                or "/api/v1/admin/overview" in m \
                or "/api/v1/auth/invite/accept" in m:
            continue  # answers the page expects (401, 403)
        out.append(m)
    return out


def cases(d):
    # -- a wrong password ---------------------------------------------------
    login(d, OWNER, PW + "x")
    try:
        e = visible(d, "login-error")
        check("wrong password: the page says so", "Wrong e-mail or password.",
              e.text)
    except TimeoutException:
        fail("wrong password: the page says so", "no #login-error shown")
    check("wrong password: no overview shown", False,
          d.find_element(By.ID, "overview-view").is_displayed())
    shot(d, "wrong-password")

    # -- the owner ------------------------------------------------------------
    login(d, OWNER, PW)
    try:
        visible(d, "overview-view")
        WebDriverWait(d, WAIT_S).until(
            lambda _: value(d, "v-chat-turns") not in (None, ""))
        ok("owner: the overview is shown after login")
    except TimeoutException:
        fail("owner: the overview is shown after login",
             "login-error=%r refused=%r" % (text(d, "login-error"),
                                            text(d, "refused-msg")))
        shot(d, "owner-failed")
        return
    st, api = http("GET", "/api/v1/admin/overview",
                   {"Authorization": "Bearer " + KEY})
    check("the API answers the owner key (200)", 200, st)
    api = api or {}
    u, b = api.get("usage_today", {}), api.get("budget", {})
    want = {
        "v-chat-turns": u.get("chat_turns"),
        "v-tokens": u.get("tokens"),
        "v-credits-granted": u.get("credits", {}).get("granted"),
        "v-credits-spent": u.get("credits", {}).get("spent"),
        "v-spent": b.get("spent_micros"),
        "v-budget": b.get("daily_micros"),
        "v-stuck": api.get("stuck_campaigns", {}).get("count"),
        "v-error-groups": len(api.get("errors", {}).get("groups", [])),
    }
    got = {k: value(d, k) for k in want}
    check("owner: the page shows the API's numbers (chat turns, tokens, "
          "credits, spend, stuck campaigns)",
          {k: str(v) for k, v in want.items()}, got)
    check("owner: they are the activity made (1 turn, 40 granted, 3 spent, "
          "budget 2000, 1 error group)",
          ("1", "40", "3", "2000", "1"),
          (got["v-chat-turns"], got["v-credits-granted"],
           got["v-credits-spent"], got["v-budget"], got["v-error-groups"]))
    oldest = value(d, "v-oldest-job")
    if oldest and float(oldest) >= 90:
        ok("owner: the oldest runnable job's age is shown (%s s: %s)" %
           (oldest, text(d, "v-oldest-job")))
    else:
        fail("owner: the oldest runnable job's age is shown", oldest)
    check("owner: the visible text is the number",
          "{:,}".format(int(got["v-tokens"] or 0)), text(d, "v-tokens"))
    n = {c: len(d.find_elements(By.CSS_SELECTOR, "#%s svg" % c))
         for c in ("chart-budget", "chart-queues", "chart-errors")}
    check("owner: the three charts are inline SVG",
          {"chart-budget": 1, "chart-queues": 1, "chart-errors": 1}, n)
    bars = d.find_elements(By.CSS_SELECTOR, "#chart-budget svg rect")
    if len(bars) >= 2:
        ok("owner: the spend chart has its bars (%d)" % len(bars))
    else:
        fail("owner: the spend chart has its bars", len(bars))
    q = d.find_elements(By.CSS_SELECTOR, "#chart-queues svg rect.bar-queued")
    check("owner: the queue chart has the queued job's bar", 1, len(q))
    e = [r for r in d.find_elements(By.CSS_SELECTOR,
                                    "#chart-errors svg rect.bar-errors")
         if float(r.get_attribute("height") or 0) > 0]
    check("owner: the error chart has one hour with errors", 1, len(e))
    check("owner: the charts have a text alternative", True, all(
        (e.get_attribute("aria-label") or "") != "" for e in
        d.find_elements(By.CSS_SELECTOR, ".chart svg")))
    check("owner: the page shows who is logged in",
          OWNER + " (owner)", text(d, "who"))
    print("# screenshot " + shot(d, "overview"), flush=True)

    cookies = {c["name"]: c for c in d.get_cookies()}
    c = cookies.get(COOKIE)
    if c is None:
        fail("the session cookie is set", sorted(cookies))
        return
    check("the session cookie: HttpOnly, Secure, SameSite=Strict, Path=/",
          (True, True, "Strict", "/"),
          (c.get("httpOnly"), c.get("secure"), c.get("sameSite"),
           c.get("path")))
    check("the page's script cannot read it (document.cookie)", "",
          d.execute_script("return document.cookie"))
    cookie = "%s=%s" % (COOKIE, c["value"])

    # A cookie POST without X-CSRF-Token: refused, and the session stays.
    st, body = http("POST", "/api/v1/auth/logout", {"Cookie": cookie})
    check("a cookie POST without X-CSRF-Token is 403",
          (403, "FORBIDDEN"),
          (st, ((body or {}).get("error") or {}).get("error_code")))
    st, _ = http("GET", "/api/v1/auth/session", {"Cookie": cookie})
    check("the session still works after the refused POST (200)", 200, st)

    # The page refreshes itself: wait for a second "updated" time.
    first = text(d, "updated")
    try:
        WebDriverWait(d, 14).until(lambda _: text(d, "updated") != first)
        ok("the overview refreshes itself (updated %s -> %s)" %
           (first, text(d, "updated")))
    except TimeoutException:
        fail("the overview refreshes itself", "still %r" % first)

    errs = page_errors(d)
    check("no JS error or CSP refusal in the browser log", [], errs)

    logout(d)
    check("logout returns to the login form", True,
          d.find_element(By.ID, "login-view").is_displayed())
    shot(d, "logged-out")
    for path in ("/api/v1/auth/session", "/api/v1/admin/overview"):
        r = subprocess.run(
            ["curl", "-sk", "--max-time", "20", "-o", os.devnull, "-w",
             "%{http_code}", "-H", "Cookie: " + cookie, URL + path],
            capture_output=True, text=True)
        check("the old cookie replayed with curl after logout: %s is 401"
              % path, "401", r.stdout)

    # -- a member -------------------------------------------------------------
    login(d, MEMBER, PW)
    try:
        e = visible(d, "refused-view")
        msg = text(d, "refused-msg")
        if "403" in msg and "FORBIDDEN" in msg:
            ok("member: the server's 403 is shown (%s)" % msg)
        else:
            fail("member: the server's 403 is shown", msg)
    except TimeoutException:
        fail("member: the server's 403 is shown", "no #refused-view")
    check("member: no overview shown", False,
          d.find_element(By.ID, "overview-view").is_displayed())
    check("member: no figure reached the page", "",
          value(d, "v-chat-turns") or "")
    shot(d, "member-refused")
    logout(d)

    # -- an invite link -------------------------------------------------------
    new_pw = PW + "-inv"
    d.get(URL + "/console/#invite=" + INVITE)
    try:
        visible(d, "invite-view")
        ok("invite link: the set-password form is shown")
    except TimeoutException:
        fail("invite link: the set-password form is shown", "not shown")
        return
    check("invite link: the token left the address bar", False,
          INVITE in d.current_url)
    d.find_element(By.ID, "invite-password").send_keys(new_pw)
    d.find_element(By.ID, "invite-submit").click()
    try:
        e = visible(d, "login-error")
        check("invite link: the password is set, back to login",
              "Your password is set. Log in with it.", e.text)
    except TimeoutException:
        fail("invite link: the password is set, back to login",
             text(d, "invite-error"))
    login(d, ADMIN, new_pw)
    try:
        visible(d, "refused-view")
        ok("invite link: the invited admin logs in (and is refused the "
           "overview: %s)" % text(d, "refused-msg"))
        logout(d)
    except TimeoutException:
        fail("invite link: the invited admin logs in", text(d, "login-error"))
    d.get(URL + "/console/#invite=" + INVITE)
    visible(d, "invite-view")
    d.find_element(By.ID, "invite-password").send_keys(new_pw + "x")
    d.find_element(By.ID, "invite-submit").click()
    try:
        e = visible(d, "invite-error")
        check("invite link: a second use is refused (410)",
              True, "used up or expired" in e.text)
    except TimeoutException:
        fail("invite link: a second use is refused (410)", "no error shown")
    shot(d, "invite-used")


def main():
    try:
        d = driver()
    except WebDriverException as e:
        fail("headless chromium starts", e)
        return 1
    try:
        cases(d)
    except Exception as e:  # noqa: BLE001 -- one line, not a traceback
        fail("the browser cases ran to their end",
             "%s: %s" % (type(e).__name__, e))
        try:
            shot(d, "exception")
        except WebDriverException:
            pass
    finally:
        d.quit()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
