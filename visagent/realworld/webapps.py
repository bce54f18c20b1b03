"""Small web apps served on loopback for the Chromium scenarios: a contact form, a to-do list, a mail-like inbox
and a shop with a cart. The state lives server-side, so a checker asks the server what was submitted (GET
/api/state), never the screen.

One `WebApps` server per world, bound to 127.0.0.1 on a free port (ThreadingHTTPServer in a daemon thread).
Pages render their data with textContent (nothing a scenario seeds is parsed as HTML). Every page also posts
the on-screen boxes of its `data-o` elements to /__layout (after each render, scroll and resize): that is the
geometry the oracles click on (`WebApps.locate`), the scenario's own knowledge of its pages, not a pixel match.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.request import urlopen

from visagent.realworld.errors import ProgramError

MAX_BODY = 64 * 1024
PAGES = ("form", "todo", "inbox", "shop")


def default_state() -> dict[str, Any]:
    return {"form": {"submissions": []},
            "todo": {"items": [], "next_id": 1},
            "inbox": {"messages": [], "sent": []},
            "shop": {"products": [], "cart": {}, "orders": []}}


class WebApps:
    """The apps' server. `state` is seeded by a scenario's setup before the page loads; `url(page)` its address;
    `api_state()` what a checker reads (over HTTP, as any client would)."""

    def __init__(self) -> None:
        self.state = default_state()
        self.layout: dict[str, Any] = {}
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="webapps", daemon=True)
        self.thread.start()

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def url(self, page: str) -> str:
        return f"http://127.0.0.1:{self.port}/{page}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def api_state(self) -> dict[str, Any]:
        """The server-side state, read through the HTTP API (GET /api/state)."""
        with urlopen(self.url("api/state"), timeout=10) as resp:  # noqa: S310 - our own loopback server
            return json.loads(resp.read().decode("utf-8"))

    # -- the oracle's locator ------------------------------------------------------------------------------
    def locate(self, name: str, page: str | None = None, timeout_s: float = 10.0) -> dict[str, float]:
        """The latest reported box of element `name` (its data-o) in viewport pixels: x, y, w, h, and the
        viewport's vw, vh. Waits for the page to report it; ProgramError after `timeout_s`."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while True:
                boxes = self.layout.get("boxes") or {}
                if name in boxes and (page is None or self.layout.get("page") == page):
                    return {**boxes[name], "vw": self.layout["vw"], "vh": self.layout["vh"]}
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProgramError(f"the page never showed element {name!r} (page {self.layout.get('page')!r})")
                self.changed.wait(min(left, 0.2))

    def layout_seq(self) -> int:
        with self.lock:
            return int(self.layout.get("seq") or 0)

    def wait_layout_after(self, seq: int, timeout_s: float = 5.0) -> None:
        """Wait until the page has reported a layout newer than `seq` (after a scroll or a click re-rendered)."""
        deadline = time.monotonic() + timeout_s
        with self.changed:
            while int(self.layout.get("seq") or 0) <= seq and time.monotonic() < deadline:
                self.changed.wait(0.1)

    # -- API ---------------------------------------------------------------------------------------------
    def handle_post(self, path: str, data: dict[str, Any]) -> Any:
        s = self.state
        if path == "/__layout":
            with self.changed:
                self.layout = {"page": str(data.get("page")), "boxes": data.get("boxes") or {},
                               "vw": data.get("vw"), "vh": data.get("vh"),
                               "seq": int(self.layout.get("seq") or 0) + 1}
                self.changed.notify_all()
            return {}
        with self.lock:
            if path == "/api/form":
                fields = {str(k): str(v)[:500] for k, v in (data.get("fields") or {}).items()}
                s["form"]["submissions"].append(fields)
            elif path == "/api/todo/add":
                title = str(data.get("title") or "").strip()[:200]
                if title:
                    s["todo"]["items"].append({"id": s["todo"]["next_id"], "title": title, "done": False})
                    s["todo"]["next_id"] += 1
            elif path == "/api/todo/toggle":
                for item in s["todo"]["items"]:
                    if item["id"] == data.get("id"):
                        item["done"] = not item["done"]
            elif path == "/api/todo/move":  # put item `id` before item `before` (None: at the end)
                items = s["todo"]["items"]
                moving = next((i for i in items if i["id"] == data.get("id")), None)
                if moving is not None:
                    items.remove(moving)
                    at = next((k for k, i in enumerate(items) if i["id"] == data.get("before")), len(items))
                    items.insert(at, moving)
            elif path in ("/api/inbox/archive", "/api/inbox/delete", "/api/inbox/read"):
                for m in s["inbox"]["messages"]:
                    if m["id"] == data.get("id"):
                        if path.endswith("read"):
                            m["read"] = True
                        else:
                            m["folder"] = "archive" if path.endswith("archive") else "trash"
            elif path == "/api/inbox/send":
                s["inbox"]["sent"].append({k: str(data.get(k) or "")[:2000] for k in ("to", "subject", "body")})
            elif path == "/api/cart/add":
                pid = str(data.get("id"))
                if any(p["id"] == pid for p in s["shop"]["products"]):
                    s["shop"]["cart"][pid] = s["shop"]["cart"].get(pid, 0) + 1
            elif path == "/api/cart/set":
                pid = str(data.get("id"))
                try:
                    qty = max(0, min(99, int(data.get("qty"))))
                except (TypeError, ValueError):
                    qty = s["shop"]["cart"].get(pid, 0)
                if pid in s["shop"]["cart"]:
                    if qty:
                        s["shop"]["cart"][pid] = qty
                    else:
                        del s["shop"]["cart"][pid]
            elif path == "/api/checkout":
                if s["shop"]["cart"]:
                    s["shop"]["orders"].append(dict(s["shop"]["cart"]))
                    s["shop"]["cart"] = {}
            else:
                return None
            return copy.deepcopy(s)


def _handler(apps: WebApps) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def _send(self, code: int, body: bytes, ctype: str) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            page = self.path.split("?", 1)[0].strip("/")
            if page == "api/state":
                with apps.lock:
                    body = json.dumps(apps.state).encode()
                self._send(200, body, "application/json")
            elif page in PAGES:
                self._send(200, page_html(page).encode("utf-8"), "text/html; charset=utf-8")
            else:
                self._send(404, b"not found", "text/plain")

        def do_POST(self) -> None:  # noqa: N802
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if not 0 <= length <= MAX_BODY:
                self._send(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, b"too large", "text/plain")
                return
            try:
                data = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(data, dict):
                    raise ValueError("not an object")
            except ValueError:
                self._send(400, b"bad json", "text/plain")
                return
            result = apps.handle_post(self.path, data)
            if result is None:
                self._send(404, b"not found", "text/plain")
            else:
                self._send(200, json.dumps(result).encode(), "application/json")

    return Handler


# -- pages --------------------------------------------------------------------------------------------------
_CSS = """
* { box-sizing: border-box; }
body { margin: 0; font: 20px/1.35 'DejaVu Sans', sans-serif; background: #f4f5f7; color: #1d2330; }
header { height: 64px; padding: 14px 28px; background: #27406b; color: white; font-size: 26px; font-weight: bold; }
main { padding: 24px 28px; }
button { font: inherit; padding: 8px 18px; border: 1px solid #27406b; border-radius: 6px; background: #fff; cursor: pointer; }
button.primary { background: #2f6fdb; color: white; border-color: #2f6fdb; }
input[type=text], input[type=email], textarea { font: inherit; padding: 8px 10px; border: 1px solid #8a93a6; border-radius: 6px; width: 520px; }
label { display: block; margin: 14px 0 6px; font-weight: bold; }
.row { display: flex; align-items: center; gap: 14px; background: white; border: 1px solid #d5d9e2; border-radius: 8px; padding: 10px 14px; margin: 8px 0; width: 760px; height: 60px; }
.done .title { text-decoration: line-through; color: #7a8296; }
.grow { flex: 1; }
.note { color: #5b6478; font-size: 17px; }
"""

_JS_COMMON = r"""
const PAGE = document.body.dataset.page;
async function api(path, data) {
  const r = await fetch(path, {method: 'POST', headers: {'Content-Type': 'application/json'}, body: JSON.stringify(data || {})});
  return r.json();
}
async function state() { return (await fetch('/api/state')).json(); }
function el(tag, attrs, text) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) { if (k === 'o') e.dataset.o = v; else e.setAttribute(k, v); }
  if (text !== undefined) e.textContent = text;
  return e;
}
let layoutTimer = null;
function reportLayout() {
  clearTimeout(layoutTimer);
  layoutTimer = setTimeout(() => {
    const boxes = {};
    for (const e of document.querySelectorAll('[data-o]')) {
      const r = e.getBoundingClientRect();
      boxes[e.dataset.o] = {x: r.x, y: r.y, w: r.width, h: r.height};
    }
    fetch('/__layout', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({page: PAGE, boxes, vw: innerWidth, vh: innerHeight})});
  }, 30);
}
addEventListener('scroll', reportLayout, true);
addEventListener('resize', reportLayout);
new MutationObserver(reportLayout).observe(document.body, {subtree: true, childList: true, attributes: true, characterData: true});
"""

_PAGE_JS = {
    "form": r"""
const f = document.getElementById('f');
f.addEventListener('submit', async ev => {
  ev.preventDefault();
  const fields = {};
  for (const e of f.elements) { if (!e.name) continue; if (e.type === 'checkbox') fields[e.name] = e.checked ? 'yes' : 'no'; else fields[e.name] = e.value; }
  await api('/api/form', {fields});
  f.replaceWith(el('p', {o: 'thanks', id: 'thanks'}, 'Thank you, ' + (fields.name || '') + '! Your message was sent.'));
});
reportLayout();
""",
    "todo": r"""
const list = document.getElementById('list');
let drag = null;
function render(s) {
  list.replaceChildren();
  for (const it of s.todo.items) {
    const row = el('div', {class: 'row' + (it.done ? ' done' : ''), o: 'row:' + it.title});
    row.dataset.id = it.id;
    const handle = el('span', {o: 'handle:' + it.title, style: 'cursor: grab; font-size: 26px; color: #8a93a6; user-select: none'}, '\u2630');
    const box = el('input', {type: 'checkbox', o: 'check:' + it.title, style: 'width: 26px; height: 26px'});
    box.checked = it.done;
    box.addEventListener('change', async () => render(await api('/api/todo/toggle', {id: it.id})));
    row.append(handle, box, el('span', {class: 'title grow'}, it.title));
    handle.addEventListener('mousedown', ev => { drag = {id: it.id, row}; row.style.opacity = '0.5'; ev.preventDefault(); });
    list.append(row);
  }
}
document.addEventListener('mouseup', async ev => {
  if (!drag) return;
  const d = drag; drag = null; d.row.style.opacity = '';
  const rows = [...list.children];
  let before = null;
  for (const r of rows) { const b = r.getBoundingClientRect(); if (ev.clientY < b.y + b.height / 2) { before = Number(r.dataset.id); break; } }
  if (before === d.id) return;
  render(await api('/api/todo/move', {id: d.id, before}));
});
const input = document.getElementById('new');
input.addEventListener('keydown', async ev => {
  if (ev.key !== 'Enter') return;
  const title = input.value; input.value = '';
  render(await api('/api/todo/add', {title}));
});
state().then(render);
""",
    "inbox": r"""
const main = document.getElementById('main');
function showList(s) {
  main.replaceChildren();
  const msgs = s.inbox.messages.filter(m => m.folder === 'inbox');
  main.append(el('p', {class: 'note'}, msgs.length + ' messages'));
  for (const m of msgs) {
    const row = el('div', {class: 'row', o: 'msg:' + m.subject});
    const open = el('span', {class: 'grow', o: 'open:' + m.subject, style: 'cursor: pointer' + (m.read ? '' : '; font-weight: bold')});
    open.append(el('span', {}, m.sender), el('span', {class: 'note'}, '  \u2014  ' + m.subject));
    open.addEventListener('click', () => showMessage(m));
    const arch = el('button', {o: 'archive:' + m.subject}, 'Archive');
    arch.addEventListener('click', async () => showList(await api('/api/inbox/archive', {id: m.id})));
    const del = el('button', {o: 'delete:' + m.subject}, 'Delete');
    del.addEventListener('click', async () => {
      if (!confirm('Delete the message "' + m.subject + '"?')) return;
      showList(await api('/api/inbox/delete', {id: m.id}));
    });
    row.append(open, arch, del);
    main.append(row);
  }
}
async function showMessage(m) {
  await api('/api/inbox/read', {id: m.id});
  main.replaceChildren();
  const back = el('button', {o: 'back'}, '\u2190 Inbox');
  back.addEventListener('click', async () => showList(await state()));
  const reply = el('button', {o: 'reply', class: 'primary'}, 'Reply');
  reply.addEventListener('click', () => compose(m));
  main.append(back, el('h2', {o: 'subject'}, m.subject), el('p', {class: 'note'}, 'From: ' + m.sender + ' <' + m.address + '>'),
              el('p', {style: 'white-space: pre-wrap; width: 760px'}, m.body), reply);
}
function compose(m) {
  main.replaceChildren();
  const body = el('textarea', {o: 'body', rows: '6'});
  const send = el('button', {o: 'send', class: 'primary'}, 'Send');
  send.addEventListener('click', async () => {
    await api('/api/inbox/send', {to: m.address, subject: 'Re: ' + m.subject, body: body.value});
    main.replaceChildren(el('p', {o: 'sent'}, 'Reply sent to ' + m.sender + '.'));
  });
  main.append(el('h2', {}, 'Re: ' + m.subject), el('p', {class: 'note'}, 'To: ' + m.address), body, el('br'), el('br'), send);
}
state().then(showList);
""",
    "shop": r"""
const grid = document.getElementById('grid');
const cartBox = document.getElementById('cart');
let drag = null;
function render(s) {
  grid.replaceChildren();
  for (const p of s.shop.products) {
    const card = el('div', {class: 'card', o: 'card:' + p.name, style: 'width: 240px; height: 150px; background: white; border: 1px solid #d5d9e2; border-radius: 8px; padding: 12px; user-select: none; cursor: grab'});
    card.append(el('div', {style: 'font-weight: bold'}, p.name), el('div', {class: 'note'}, p.price + ' \u20ac'));
    const add = el('button', {o: 'add:' + p.name, style: 'margin-top: 16px'}, 'Add to cart');
    add.addEventListener('click', async ev => { ev.stopPropagation(); render(await api('/api/cart/add', {id: p.id})); });
    card.addEventListener('mousedown', ev => { if (ev.target.tagName === 'BUTTON') return; drag = p; card.style.opacity = '0.5'; ev.preventDefault(); });
    card.append(add);
    grid.append(card);
  }
  cartBox.replaceChildren(el('div', {style: 'font-weight: bold; font-size: 24px'}, '\ud83d\uded2 Cart (drop here)'));
  let count = 0;
  for (const [id, qty] of Object.entries(s.shop.cart)) {
    const p = s.shop.products.find(x => x.id === id);
    count += qty;
    const line = el('div', {style: 'margin: 10px 0'});
    const q = el('input', {type: 'text', o: 'qty:' + p.name, style: 'width: 64px', value: String(qty)});
    q.addEventListener('change', async () => render(await api('/api/cart/set', {id, qty: q.value})));
    q.addEventListener('keydown', ev => { if (ev.key === 'Enter') q.blur(); });
    line.append(q, el('span', {}, '  \u00d7 ' + p.name));
    cartBox.append(line);
  }
  const orders = s.shop.orders.length;
  const buy = el('button', {o: 'checkout', class: 'primary'}, 'Check out');
  buy.disabled = count === 0;
  buy.addEventListener('click', async () => {
    if (!confirm('Place the order for ' + count + ' item(s)?')) return;
    render(await api('/api/checkout', {}));
  });
  cartBox.append(buy);
  if (orders) cartBox.append(el('p', {o: 'ordered', class: 'note'}, orders + ' order(s) placed'));
}
document.addEventListener('mouseup', async ev => {
  if (!drag) return;
  const p = drag; drag = null;
  for (const c of grid.children) c.style.opacity = '';
  const b = cartBox.getBoundingClientRect();
  if (ev.clientX >= b.x && ev.clientX <= b.right && ev.clientY >= b.y && ev.clientY <= b.bottom)
    render(await api('/api/cart/add', {id: p.id}));
});
state().then(render);
""",
}

_BODIES = {
    "form": """<header>Contact us</header><main><form id="f" autocomplete="off">
<label for="name">Name</label><input type="text" id="name" name="name" data-o="name">
<label for="email">Email</label><input type="text" id="email" name="email" data-o="email">
<label for="city">City</label><input type="text" id="city" name="city" data-o="city">
<label for="message">Message</label><textarea id="message" name="message" rows="3" data-o="message"></textarea>
<p><input type="checkbox" id="agree" name="agree" data-o="agree" style="width: 22px; height: 22px">
<span class="note">I agree to be contacted</span></p>
<button type="submit" class="primary" data-o="submit">Send</button></form></main>""",
    "todo": """<header>To-do</header><main>
<input type="text" id="new" data-o="new" placeholder="New to-do, then Enter">
<div id="list" style="margin-top: 16px"></div>
<p class="note">Drag a row by its \u2630 handle to reorder.</p></main>""",
    "inbox": """<header>Mail \u2014 Inbox</header><main id="main"></main>""",
    "shop": """<header>Shop</header><main style="display: flex; gap: 28px">
<div id="grid" style="display: grid; grid-template-columns: repeat(3, 240px); gap: 18px; align-content: start"></div>
<div id="cart" data-o="cart" style="width: 300px; min-height: 320px; background: #e9eef8; border: 2px dashed #2f6fdb; border-radius: 10px; padding: 14px"></div>
</main>""",
}

_TITLES = {"form": "Contact", "todo": "To-do", "inbox": "Inbox", "shop": "Shop"}


def page_html(page: str) -> str:
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_TITLES[page]}</title>"
            f"<style>{_CSS}</style></head><body data-page=\"{page}\">{_BODIES[page]}"
            f"<script>{_JS_COMMON}{_PAGE_JS[page]}</script></body></html>")
