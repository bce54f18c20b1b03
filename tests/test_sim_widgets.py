"""Each sim widget behaves like the real thing, driven through the world's low-level input events."""

from __future__ import annotations

import pytest

from visagent.sim import SimWorld
from visagent.sim.lists import WHEEL_CLICK_DP
from visagent.sim.textfield import TextField
from visagent.sim.world import DOUBLE_CLICK_S

from tests.sim_helpers import click, element, settle


def _settings(platform: str = "desktop", **setup) -> SimWorld:
    w = SimWorld(platform, seed=3, open_app="settings", setup={"settings": setup})
    settle(w)
    return w


def _section(w: SimWorld, name: str) -> None:
    click(w, name, "list_item")
    settle(w)


def test_toggle_flips_on_click_and_space():
    w = _settings(wifi=True)
    _section(w, "Network")
    click(w, "Wi-Fi", "toggle")
    assert w.state()["settings"]["wifi"] is False
    w.key("space")  # the toggle took focus on click
    assert w.state()["settings"]["wifi"] is True


def test_checkbox_toggles():
    w = _settings(email_alerts=False)
    _section(w, "Notifications")
    click(w, "Email alerts", "checkbox")
    assert w.state()["settings"]["email_alerts"] is True
    click(w, "Email alerts", "checkbox")
    assert w.state()["settings"]["email_alerts"] is False


def test_radio_group_selects_exactly_one_option_and_arrows_move_it():
    w = _settings(font_size="Medium")
    _section(w, "Display")
    click(w, "Large", "radio")
    assert w.state()["settings"]["font_size"] == "Large"
    w.key("left")
    assert w.state()["settings"]["font_size"] == "Medium"


def test_dropdown_opens_a_popup_and_choosing_an_option_closes_it():
    w = _settings(language="English")
    _section(w, "General")
    click(w, "Language", "dropdown")
    assert w.state()["popup"] == "language.options"
    options = [e.label for e in w.visible_elements() if e.role == "option"]
    assert "Deutsch" in options and "English" in options
    click(w, "Deutsch", "option")
    assert w.state()["settings"]["language"] == "Deutsch"
    assert w.state()["popup"] is None


def test_click_outside_a_popup_closes_it_without_clicking_through():
    w = _settings(language="English", dark_mode=False)
    _section(w, "General")
    click(w, "Language", "dropdown")
    _section_target = element(w, "Display", "list_item")
    w.click(*_section_target.center)
    assert w.state()["popup"] is None
    assert w.state()["settings"]["section"] == "General"  # the click was consumed by closing the popup


def test_slider_follows_a_drag_and_arrow_keys():
    w = _settings(brightness=50)
    _section(w, "Display")
    slider = w.apps["settings"].controls["brightness"]
    cy = element(w, "Brightness", "slider").center[1]  # also lays the page out
    w.drag((slider.x_for(50), cy), (slider.x_for(80), cy))
    assert w.state()["settings"]["brightness"] == 80
    w.key("right")
    assert w.state()["settings"]["brightness"] == 85


def test_text_field_typing_caret_selection_clipboard_and_enter():
    w = _settings(device_name="Old")
    _section(w, "General")
    field = w.apps["settings"].controls["device_name"]
    assert isinstance(field, TextField)
    click(w, "Device name", "textfield")
    w.key("end")
    w.text(" box")
    assert field.value == "Old box"
    w.key("backspace")
    w.key("left")
    w.key("left")
    w.text("X")
    assert field.value == "Old Xbo"
    w.key("a", ("ctrl",))
    assert field.selected_text == "Old Xbo"
    w.key("c", ("ctrl",))
    assert w.clipboard == "Old Xbo"
    w.text("New")
    assert field.value == "New"
    w.key("v", ("ctrl",))
    assert field.value == "NewOld Xbo"
    w.key("home")
    w.key("right", ("shift",))
    w.key("right", ("shift",))
    w.key("x", ("ctrl",))
    assert (field.value, w.clipboard) == ("wOld Xbo", "Ne")
    w.key("enter")  # submits: the device is renamed
    assert w.state()["settings"]["device_name"] == "wOld Xbo"


def test_shift_letter_key_types_upper_case_and_delete_removes_forward():
    w = _settings(device_name="ab")
    _section(w, "General")
    click(w, "Device name", "textfield")
    field = w.apps["settings"].controls["device_name"]
    w.key("home")
    w.key("q", ("shift",))
    w.key("delete")
    assert field.value == "Qb"


def test_tab_moves_keyboard_focus_in_order_and_shift_tab_back():
    w = _settings()
    _section(w, "Network")
    app = w.apps["settings"]
    order = app.focusables()
    w.key("tab")
    first = app.focus
    w.key("tab")
    assert app.focus is order[(order.index(first) + 1) % len(order)]
    w.key("tab", ("shift",))
    assert app.focus is first


def test_wheel_scrolls_a_list_and_clamps_at_the_ends():
    w = SimWorld("desktop", seed=1, open_app="files", setup={"files": {"filler": 40}})
    settle(w)
    first = [e.label for e in w.visible_elements() if e.role == "list_item"][0]
    lv = w.apps["files"].list
    x, y = (lv.rect[0] + lv.rect[2]) / 2, (lv.rect[1] + lv.rect[3]) / 2
    w.wheel(x, y, 0, -2)  # two clicks down
    assert lv.scroll == 2 * WHEEL_CLICK_DP
    assert [e.label for e in w.visible_elements() if e.role == "list_item"][0] != first
    w.wheel(x, y, 0, 100)
    assert lv.scroll == 0
    w.wheel(x, y, 0, -1000)
    assert lv.scroll == lv.max_scroll > 0


def test_phone_swipe_scrolls_a_list_with_the_finger():
    w = SimWorld("phone", seed=1, open_app="files", setup={"files": {"filler": 30}})
    settle(w)
    lv = w.apps["files"].list
    cx = (lv.rect[0] + lv.rect[2]) / 2
    w.drag((cx, 1800), (cx, 1200))
    assert lv.scroll == 600
    assert w.apps["files"].state()["dialog"] is None  # a swipe is not a tap


def test_list_shows_a_spinner_before_loading_and_hides_rows_meanwhile():
    w = SimWorld("desktop", seed=2, apps=["files", "notes"])
    w.launch("Files")
    w.clock.advance(0.3)
    assert w.busy()
    assert not [e for e in w.visible_elements() if e.role == "list_item"]
    frame_a = w.render()
    w.clock.advance(0.05)
    assert w.render().tobytes() != frame_a.tobytes()  # the spinner turns
    settle(w)
    assert [e for e in w.visible_elements() if e.role == "list_item"]


def test_double_click_needs_two_clicks_within_the_interval():
    w = SimWorld("desktop", seed=4, apps=["notes", "files"])
    icon = element(w, "Notes", "icon")
    w.click(*icon.center)
    w.clock.advance(DOUBLE_CLICK_S + 0.2)
    w.click(*icon.center)
    assert w.foreground() is None  # two slow clicks only select the icon
    w.clock.advance(1.0)
    w.click(*icon.center)
    w.clock.advance(0.1)
    w.click(*icon.center)
    assert w.foreground().name == "notes"


def test_right_click_opens_a_context_menu_and_escape_closes_it():
    w = SimWorld("desktop", seed=5, open_app="files", setup={"files": {"files": ["a.txt"], "filler": 2}})
    settle(w)
    click(w, "a.txt", "list_item", button="right")
    assert w.state()["popup"] == "files.context"
    assert {"Open", "Rename", "Delete"} <= {e.label for e in w.visible_elements() if e.role == "menu_item"}
    w.key("escape")
    assert w.state()["popup"] is None


def test_long_press_opens_the_context_menu_on_the_phone_but_a_tap_does_not():
    w = SimWorld("phone", seed=5, open_app="files", setup={"files": {"files": ["a.txt"], "filler": 2}})
    settle(w)
    x, y = element(w, "a.txt", "list_item").center
    w.click(x, y, hold=0.2)
    assert w.state()["dialog"] == "a.txt"  # a tap previews
    settle(w)
    w.system_button("Back")
    assert w.state()["dialog"] is None
    settle(w)
    w.click(x, y, hold=0.7)
    assert w.state()["popup"] == "files.context"


def test_modal_dialog_animates_in_blocks_the_app_behind_and_escape_cancels():
    w = SimWorld("desktop", seed=6, open_app="files", setup={"files": {"files": ["a.txt"], "filler": 2}})
    settle(w)
    click(w, "a.txt", "list_item", button="right")
    click(w, "Delete", "menu_item")
    assert w.state()["dialog"] == "Delete file?"
    assert w.transitioning()
    click_during_animation = element(w, "Delete", "button").center
    w.click(*click_during_animation)
    assert "a.txt" in w.state()["files"]["files"]  # input is ignored while the dialog slides in
    settle(w)
    assert {e.app for e in w.visible_elements()} == {"files"}  # only the dialog's own elements
    w.key("escape")
    assert w.state()["dialog"] is None and "a.txt" in w.state()["files"]["files"]
    click(w, "a.txt", "list_item", button="right")
    click(w, "Delete", "menu_item")
    settle(w)
    click(w, "Delete", "button")
    assert "a.txt" not in w.state()["files"]["files"]


def test_menu_bar_menus_open_and_run_their_items():
    w = SimWorld("desktop", seed=7, open_app="notes", setup={"notes": {"text": "hi"}})
    settle(w)
    click(w, "File", "menu")
    assert {"New", "Save", "Save as…"} <= {e.label for e in w.visible_elements() if e.role == "menu_item"}
    click(w, "New", "menu_item")
    assert w.state()["notes"]["text"] == ""


def test_tabs_switch_pages():
    w = SimWorld("desktop", seed=8, open_app="shop")
    settle(w)
    click(w, "Cart", "tab")
    assert w.state()["shop"]["page"] == "cart"
    click(w, "Products", "tab")
    assert w.state()["shop"]["page"] == "main"


def test_phone_system_buttons_back_home_and_menu():
    w = SimWorld("phone", seed=9, open_app="settings")
    settle(w)
    click(w, "Display", "list_item")
    settle(w)
    assert w.state()["settings"]["section"] == "Display"
    w.system_button("Back")
    assert w.state()["settings"]["section"] is None
    w.system_button("Home")  # ignored: the page is still sliding back
    assert w.foreground() is not None
    settle(w)
    w.system_button("Home")
    assert w.foreground() is None
    assert element(w, "Notes", "icon")
    w.launch("com.visagent.notes")
    settle(w)
    w.system_button("Menu")
    assert w.state()["popup"] == "notes.options"


def test_contacts_form_shows_validation_errors_until_fixed():
    w = SimWorld("desktop", seed=10, open_app="contacts")
    settle(w)
    click(w, w.apps["contacts"].new_btn.label, "button")  # the label varies with the seed
    settle(w)
    click(w, "Save", "button")
    errors = w.state()["contacts"]["errors"]
    assert set(errors) == {"name", "phone"}
    click(w, "Name", "textfield")
    w.text("Ada Byron")
    click(w, "Phone", "textfield")
    w.text("555 0100 22")
    click(w, "Email", "textfield")
    w.text("ada@")
    click(w, "Save", "button")
    assert set(w.state()["contacts"]["errors"]) == {"email"}
    w.text("example.org")  # the Save button has the focus now: typing goes nowhere
    assert w.apps["contacts"].f_email.value == "ada@"
    click(w, "Email", "textfield")
    w.key("end")
    w.text("example.org")
    click(w, "Save", "button")
    assert w.state()["contacts"]["by_name"]["Ada Byron"]["email"] == "ada@example.org"


@pytest.mark.parametrize("platform", ["desktop", "phone"])
def test_calculator_keypad_and_keyboard(platform):
    w = SimWorld(platform, seed=11, open_app="calculator")
    settle(w)
    for label in ["1", "2", "×", "3", "="]:
        click(w, label, "button")
    assert w.state()["calculator"]["last_result"] == "36"
    w.text("2+3*4")
    w.key("enter")
    assert w.state()["calculator"]["display"] == "14"
