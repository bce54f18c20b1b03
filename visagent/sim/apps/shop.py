"""Shop: a product list (spinner, scrolling, an Add button per row), a cart, and a checkout form whose Pay
button places the order (a risky action agents should confirm).

Setup: cart ({product: qty}), address. Prices and product order come from the seed.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

from visagent.sim.apps.base import App, Column
from visagent.sim.lists import Dropdown, ListItem, ListView
from visagent.sim.textfield import TextField
from visagent.sim.controls import RadioGroup, Tabs
from visagent.sim.widgets import Button, Label, Widget

if TYPE_CHECKING:
    from visagent.sim.world import SimWorld

PRODUCTS = ["Desk lamp", "Coffee mug", "Notebook", "Headphones", "Water bottle", "Backpack", "Phone case",
            "USB cable", "Plant pot", "Wall clock", "Sunglasses", "Umbrella", "Tea sampler", "Yoga mat",
            "Bike light", "Scarf", "Puzzle", "Candle"]
SHIPPING = {"Standard": 0.0, "Express": 9.0}
PAYMENTS = ["Card", "PayPal", "Gift card"]
LOAD_S = 1.0


class ShopApp(App):
    name = "shop"
    title = "Shop"
    icon = "cart"
    hue = 0.95
    packages = ("com.visagent.shop",)

    def __init__(self, world: SimWorld, rng: random.Random, setup: dict[str, Any]) -> None:
        super().__init__(world, rng, setup)
        self.check_setup(setup, "cart", "address")
        names = list(PRODUCTS)
        rng.shuffle(names)
        add_label = rng.choice(["Add", "Add to cart", "+ Cart"])  # labels vary with the seed
        self.prices = {n: round(rng.randint(5, 80) + rng.choice([0, 0.5, 0.99]), 2) for n in names}
        self.cart: dict[str, int] = {str(k): int(v) for k, v in (setup.get("cart") or {}).items()}
        for k in self.cart:
            if k not in self.prices:
                raise ValueError(f"shop setup: unknown product {k!r}")
        self.orders: list[dict[str, Any]] = []
        self.products = ListView("products", [ListItem(n, n, f"${self.prices[n]:.2f}", "cart", button=add_label)
                                              for n in names], row_dp=52 if not self.phone else 76,
                                 on_button=self._add, touch=self.phone, clock=world.clock)
        self.cart_list = ListView("cart", [], row_dp=52 if not self.phone else 76, on_button=self._remove,
                                  touch=self.phone, clock=world.clock)
        self.cart_list.empty_text = "Your cart is empty"
        self.tabs = Tabs("tabs", ["Products", "Cart"], "Products", self._tab)
        self.total = Label("total", "", bold=True)
        self.checkout_btn = Button("checkout", rng.choice(["Checkout", "Go to checkout", "Proceed to checkout"]),
                                   self.checkout, kind="primary")
        self.address = TextField("address", "Address", str(setup.get("address", "")), placeholder="Street, city")
        self.shipping = RadioGroup("shipping", "Shipping", list(SHIPPING), "Standard", lambda v: self._totals())
        self.payment = Dropdown("payment", "Payment", PAYMENTS, "Card")
        self.pay_btn = Button("pay", "Pay", self.pay, kind="primary")
        self.captions = {k: Label(f"{k}.caption", k.capitalize(), muted=True, size=12) for k in
                         ("address", "shipping", "payment")}
        self.error = Label("error", "", size=12)
        self.confirm = Label("confirm", "", bold=True, size=18)
        self.done_btn = Button("done", "Continue shopping", self.finish, kind="primary")
        self.back_btn = Button("back", "Back to cart", self.back, kind="flat")
        self._totals()

    def on_open(self) -> None:
        self.products.loading_until = self.now + LOAD_S

    def busy(self, now: float) -> bool:
        return self.products.loading(now)

    # -- cart -------------------------------------------------------------------------------------
    def subtotal(self) -> float:
        return round(sum(self.prices[n] * q for n, q in self.cart.items()), 2)

    def _totals(self) -> None:
        self.cart_list.items = [ListItem(n, f"{n} × {q}", f"${self.prices[n] * q:.2f}", "cart", button="Remove")
                                for n, q in self.cart.items()]
        total = self.subtotal() + (SHIPPING[self.shipping.value] if self.page == "checkout" else 0.0)
        self.total.label = f"Total ${total:.2f}"
        self.pay_btn.label = f"Pay ${total:.2f}"
        self.tabs.options[1] = f"Cart ({sum(self.cart.values())})" if self.cart else "Cart"
        if self.tabs.value.startswith("Cart"):
            self.tabs.value = self.tabs.options[1]

    def _add(self, item: ListItem) -> None:
        self.cart[item.key] = self.cart.get(item.key, 0) + 1
        self.log(f"added {item.key}")
        self._totals()

    def _remove(self, item: ListItem) -> None:
        q = self.cart.get(item.key, 0) - 1
        if q > 0:
            self.cart[item.key] = q
        else:
            self.cart.pop(item.key, None)
        self._totals()

    def _tab(self, value: str) -> None:
        self.pages = ["main" if value == "Products" else "cart"]
        self.focus = None

    def checkout(self) -> None:
        if not self.cart:
            return
        self.error.label = ""
        self.push("checkout")
        self._totals()

    def pay(self) -> None:
        if not self.address.value.strip():
            self.error.label = "Enter a delivery address"
            self.address.error = True
            return
        self.address.error = False
        order = {"number": 1000 + len(self.orders) + self.rng.randint(1, 8999), "items": dict(self.cart),
                 "shipping": self.shipping.value, "payment": self.payment.value,
                 "address": self.address.value.strip(),
                 "total": round(self.subtotal() + SHIPPING[self.shipping.value], 2)}
        self.orders.append(order)
        self.log(f"paid order {order['number']}")
        self.cart = {}
        self.confirm.label = f"Order #{order['number']} placed"
        self.pages = ["done"]
        self.world.animate("page", 0.3)
        self._totals()

    def finish(self) -> None:
        self.pages = ["main"]
        self.tabs.value = "Products"

    def back(self) -> bool:
        if self.page == "checkout":
            self.pages = ["cart"]
            return True
        if self.page in ("cart", "done"):
            self.finish()
            return True
        return False

    def can_go_back(self) -> bool:
        return self.page != "main"

    # -- layout -----------------------------------------------------------------------------------
    def widgets(self) -> list[Widget]:
        if self.page == "main":
            return [self.tabs, self.products]
        if self.page == "cart":
            return [self.tabs, self.cart_list, self.total, self.checkout_btn]
        if self.page == "checkout":
            return [self.captions["address"], self.address, self.captions["shipping"], self.shipping,
                    self.captions["payment"], self.payment, self.total, self.error, self.back_btn, self.pay_btn]
        return [self.confirm, self.done_btn]

    def layout(self, rect: tuple[int, int, int, int]) -> None:
        self.rect = rect
        s = self.s
        x1, y1, x2, y2 = rect
        th = int(44 * s)
        if self.page in ("main", "cart"):
            self.tabs.place((x1, y1, x2 if self.phone else min(x2, x1 + int(320 * s)), y1 + th))
        if self.page == "main":
            self.products.layout((x1, y1 + th, x2, y2), s)
        elif self.page == "cart":
            foot = int(64 * s)
            self.cart_list.layout((x1, y1 + th, x2, y2 - foot), s)
            self.total.place((x1 + int(16 * s), y2 - foot, x2 - int(180 * s), y2))
            self.checkout_btn.place((x2 - int(160 * s), y2 - foot + int(12 * s), x2 - int(16 * s), y2 - int(12 * s)))
        elif self.page == "checkout":
            col = Column(rect if self.phone else (x1, y1, min(x2, x1 + int(520 * s)), y2), s, 20)
            col.place(self.captions["address"], 18, 2)
            col.place(self.address, 38 if not self.phone else 48, 12)
            col.place(self.captions["shipping"], 18, 2)
            col.place(self.shipping, 34 if not self.phone else 48, 12)
            col.place(self.captions["payment"], 18, 2)
            col.place(self.payment, 34 if not self.phone else 48, 16)
            col.place(self.total, 28, 4)
            col.place(self.error, 18, 10)
            r = col.take(40 if not self.phone else 52)
            self.pay_btn.place((r[2] - int(170 * s), r[1], r[2], r[3]))
            self.back_btn.place((r[0], r[1], r[0] + int(130 * s), r[3]))
        else:
            col = Column(rect, s, 40)
            col.gap(40)
            col.place(self.confirm, 40, 20)
            r = col.take(40 if not self.phone else 52)
            self.done_btn.place((r[0], r[1], r[0] + int(220 * s), r[3]))

    def draw(self, cv: Any, st: Any) -> None:
        self.error.color = st.th.danger
        self.confirm.color = st.th.success
        super().draw(cv, st)

    def page_title(self) -> str:
        return {"main": self.title, "cart": "Cart", "checkout": "Checkout", "done": "Thank you"}[self.page]

    def state(self) -> dict[str, Any]:
        return {"cart": dict(self.cart), "orders": [dict(o) for o in self.orders], "page": self.page,
                "subtotal": self.subtotal(), "prices": dict(self.prices)}
