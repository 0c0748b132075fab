"""The staff pages (agent console, dashboard, trainer inbox) keep one login form and one
login script (js/login.js): the same field ids and types on every page, and no page script
of its own that talks to /api/login."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[3] / "handoff" / "static"
PAGES = {"agent/index.html": "js/console.js", "dashboard/index.html": "js/dashboard.js",
         "trainer/index.html": "js/trainer.js"}


class _LoginForm(HTMLParser):
    """Collects the form controls of #login-view and the page's script tags."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0  # >0 while inside #login-view
        self.controls: list[tuple[str, ...]] = []
        self.scripts: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "script":
            self.scripts.append(a)
        if a.get("id") == "login-view":
            self.depth = 1
        elif self.depth and tag == "section":
            self.depth += 1
        if self.depth and tag in ("form", "input", "button", "p") and a.get("class") != "meta":
            self.controls.append(tuple(str(a.get(k)) for k in (
                "id", "type", "autocomplete", "role", "required")) + (tag,))

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag == "section":
            self.depth -= 1


def _parse(page: str) -> _LoginForm:
    parser = _LoginForm()
    parser.feed((STATIC / page).read_text(encoding="utf-8"))
    return parser


def test_every_staff_page_has_the_same_login_form() -> None:
    forms = {page: _parse(page).controls for page in PAGES}
    first = forms["agent/index.html"]
    assert [c[0] for c in first] == ["login-form", "login-user", "login-pass", "login-error",
                                     "None"]
    assert all(controls == first for controls in forms.values()), forms


@pytest.mark.parametrize(("page", "script"), sorted(PAGES.items()))
def test_each_page_script_uses_the_shared_login_module(page: str, script: str) -> None:
    scripts = _parse(page).scripts
    assert {"type": "module", "src": f"/static/{script}"} in scripts
    assert all(s.get("src") for s in scripts)  # no inline script: the CSP would block it
    code = (STATIC / script).read_text(encoding="utf-8")
    assert 'import { staffLogin } from "./login.js";' in code
    assert "/api/login" not in code and "login-form" not in code


def test_the_login_module_is_the_one_place_that_posts_the_login() -> None:
    code = (STATIC / "js" / "login.js").read_text(encoding="utf-8")
    assert code.count('fetch("/api/login"') == 1
    others = [p.name for p in (STATIC / "js").glob("*.js")
              if p.name != "login.js" and "/api/login" in p.read_text(encoding="utf-8")]
    assert others == []
