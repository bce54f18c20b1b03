"""AndroidExecutor end to end through a FAKE `adb` program (tests/fakes/adb) first on PATH.

The fake emulates a phone from the sim world, so the executor's real adb command lines, device-shell quoting
and output parsing run for real; only the phone is simulated (no emulator can run here).
"""

from __future__ import annotations

import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.fixtures.fake_adb import FAKE, SERIAL, FakePhone, use_fake_adb
from visagent.core.actions import Action
from visagent.loop.coords import to_screen
from visagent.core.errors import ExecutorError
from visagent.screen.adb import parse_devices
from visagent.screen.android import AndroidExecutor, input_text_chunks, input_text_commands, list_android_devices
from visagent.screen.seam import Screen
from visagent.screen.settle import SettleDetector


@pytest.fixture
def phone(tmp_path, monkeypatch):
    return use_fake_adb(tmp_path, monkeypatch)


def tap(ex: AndroidExecutor, point: tuple[float, float]) -> None:
    result = ex.execute(Action("click", coordinate=point, space="screen"))
    assert result.ok, result.message


def open_device_name_field(phone: FakePhone, ex: AndroidExecutor) -> tuple[float, float]:
    ex.execute(Action("open", text="Settings", space="screen"))
    tap(ex, phone.element("General").center)
    field = phone.element("Device name").center
    tap(ex, field)
    return field


def clear_field(ex: AndroidExecutor) -> None:
    ex.execute(Action("key", text="KEYCODE_MOVE_END", space="screen"))
    ex.shell("input keyevent " + " ".join(["67"] * 60))  # DEL x60, one adb call


# -- devices ----------------------------------------------------------------------------------------------


def test_parse_devices_lines():
    out = ("* daemon not running; starting now at tcp:5037\n* daemon started successfully\nList of devices attached\n"
           "emulator-5554          device product:sdk_gphone64 model:Pixel_7 device:emu64 transport_id:1\n"
           "R58M123ABC             unauthorized usb:1-1 transport_id:2\n"
           "0123456789ABCDEF       no permissions (user in plugdev group; are your udev rules wrong?); see [http://x]\n")
    devs = parse_devices(out)
    assert [(d.serial, d.state) for d in devs] == [("emulator-5554", "device"), ("R58M123ABC", "unauthorized"),
                                                   ("0123456789ABCDEF", "no permissions")]
    assert devs[0].model == "Pixel_7"


def test_single_device_is_chosen_and_reports_size_and_density(phone):
    ex = AndroidExecutor()
    assert ex.serial == SERIAL
    assert ex.screen_size() == (1080, 2400)
    assert ex.density() == 420
    assert [d.serial for d in list_android_devices()] == [SERIAL]


def test_several_devices_need_a_serial(phone, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_DEVICES", "emulator-5554:device,emulator-5556:device")
    with pytest.raises(ExecutorError, match=r"several Android devices connected \(emulator-5554.*emulator-5556.*--serial"):
        AndroidExecutor()
    ex = AndroidExecutor(serial="emulator-5556")
    ex.screenshot()
    assert phone.calls()[-1][:2] == ["-s", "emulator-5556"]
    with pytest.raises(ExecutorError, match="no Android device with serial 'nope'; connected: emulator-5554"):
        AndroidExecutor(serial="nope")


@pytest.mark.parametrize("devices, pattern", [
    ("", "no Android device connected"),
    ("R58M:unauthorized", "R58M is unauthorized: unlock it and accept the USB-debugging prompt"),
    ("R58M:offline", "R58M is offline: reconnect it"),
])
def test_unusable_devices_give_one_clear_line(phone, monkeypatch, devices, pattern):
    monkeypatch.setenv("FAKE_ADB_DEVICES", devices)
    with pytest.raises(ExecutorError, match=pattern) as info:
        AndroidExecutor()
    assert "\n" not in str(info.value)


def test_missing_adb(phone, tmp_path):
    with pytest.raises(ExecutorError, match=r"adb not found \('/nonexistent/adb'\); install Android platform-tools"):
        AndroidExecutor(adb="/nonexistent/adb")


# -- screen and actions ------------------------------------------------------------------------------------


def test_screencap_is_the_phone_screen(phone):
    ex = AndroidExecutor(settle=False)
    obs = ex.screenshot()
    assert obs.image.size == (1080, 2400) and obs.geometry.scale == 1.0
    assert obs.image.tobytes() == phone.world().render().tobytes()
    assert ["-s", SERIAL, "exec-out", "screencap", "-p"] in phone.calls()


def test_tap_from_norm1000_opens_an_app(phone):
    ex = AndroidExecutor(settle=False)
    icon = phone.element("Settings", "icon")
    g = ex.geometry()
    model = Action("click", coordinate=(icon.center[0] * 1000 / g.width, icon.center[1] * 1000 / g.height),
                   space="norm1000")
    assert ex.execute(to_screen(model, g)).ok
    assert phone.state()["foreground"] == "settings"
    assert any(line.startswith("input tap ") for line in phone.shell_lines())


TRICKY = "hello world & \"x\" it's; 50%sale $HOME |<>() back\\slash `tick` ~#*?!{}[]=+^"


def test_text_escaping_survives_the_device_shell(phone):
    ex = AndroidExecutor(settle=False)
    open_device_name_field(phone, ex)
    clear_field(ex)
    assert ex.execute(Action("type", text=TRICKY, space="screen")).ok
    ex.execute(Action("system_button", button="Enter", space="screen"))
    assert phone.state()["settings"]["device_name"] == TRICKY
    assert "input text 'hello%sworld%s&%s\"x\"%sit'\"'\"'s;%s50%'" in phone.shell_lines()


def test_input_text_chunks_keep_a_literal_percent_s():
    assert input_text_chunks("a b") == ["a%sb"]
    assert input_text_chunks("50%sale") == ["50%", "sale"]
    assert FAKE.android_input_text("50%") + FAKE.android_input_text("sale") == "50%sale"
    with pytest.raises(ValueError):
        input_text_chunks("é")


def test_non_ascii_without_an_ime_is_a_clear_error(phone):
    ex = AndroidExecutor(settle=False)
    with pytest.raises(ExecutorError, match="input text` types only ASCII; install ADBKeyboard"):
        ex.execute(Action("type", text="Grüße ✓", space="screen"))


def test_non_ascii_through_the_adbkeyboard_ime(phone, monkeypatch):
    monkeypatch.setenv("FAKE_ADB_IME", "1")
    ex = AndroidExecutor(settle=False)
    open_device_name_field(phone, ex)
    clear_field(ex)
    assert ex.execute(Action("type", text="Grüße ✓ 日本 'q' & $x", space="screen")).ok
    ex.execute(Action("key", text="enter", space="screen"))
    assert phone.state()["settings"]["device_name"] == "Grüße ✓ 日本 'q' & $x"
    assert ex.shell("settings get secure default_input_method").strip() == FAKE.LATIN_IME  # restored


def test_system_buttons_and_long_press(phone):
    ex = AndroidExecutor(settle=False)
    field = open_device_name_field(phone, ex)
    assert ex.execute(Action("long_press", coordinate=field, time=0.8, space="screen")).ok
    x, y = round(field[0]), round(field[1])
    assert f"input swipe {x} {y} {x} {y} 800" in phone.shell_lines()
    assert phone.state()["popup"] == "textmenu"
    ex.execute(Action("system_button", button="Back", space="screen"))
    assert phone.state()["popup"] is None
    ex.execute(Action("system_button", button="Home", space="screen"))
    assert phone.state()["foreground"] is None
    assert {"input keyevent 4", "input keyevent 3"} <= set(phone.shell_lines())


def test_swipe_scrolls_a_list(phone):
    ex = AndroidExecutor(settle=False)
    ex.execute(Action("open", text="com.visagent.shop", space="screen"))

    def rows():
        return [(e.label, e.center[1]) for e in phone.world().visible_elements() if e.role == "list_item"]

    before = rows()
    assert ex.execute(Action("swipe", coordinate=(540, 1800), coordinate2=(540, 1000), space="screen")).ok
    assert "input swipe 540 1800 540 1000 300" in phone.shell_lines()
    after = rows()
    assert after != before
    first_label, first_y = before[0]
    assert all(y < first_y for label, y in after if label == first_label)  # content moved up (or out)


def test_scroll_pixels_are_wheel_clicks_of_48_dp_capped(phone):
    from visagent.core.actions import MAX_SCROLL_CLICKS

    ex = AndroidExecutor(settle=False)
    ex.execute(Action("open", text="com.visagent.shop", space="screen"))
    lines = len(phone.shell_lines())
    assert ex.execute(Action("scroll", coordinate=(540, 1000), pixels=-3, space="screen")).ok
    # 3 clicks x 48 dp x (420 dpi / 160) = 378 px of finger travel around the point, upwards for a scroll down
    assert "input swipe 540 1189 540 811 300" in phone.shell_lines()[lines:]
    lines = len(phone.shell_lines())
    result = ex.execute(Action("scroll", coordinate=(540, 1000), pixels=-10**12, space="screen"))
    assert result.ok and f"{MAX_SCROLL_CLICKS} wheel clicks" in result.message
    swipes = [part.split() for line in phone.shell_lines()[lines:] for part in line.split("; ")
              if part.startswith("input swipe")]
    # the capped distance (50 x 126 px) in swipes of at most 60% of the screen, never one flood of events
    assert 1 < len(swipes) <= 10
    assert sum(int(s[3]) - int(s[5]) for s in swipes) == MAX_SCROLL_CLICKS * 126
    assert all(0 <= int(v) < 2400 for s in swipes for v in (s[3], s[5]))


def test_open_by_package_label_and_errors(phone):
    ex = AndroidExecutor(settle=False)
    ex.execute(Action("open", text="Notes", space="screen"))
    assert phone.state()["foreground"] == "notes"
    assert "monkey -p com.visagent.notes -c android.intent.category.LAUNCHER 1" in phone.shell_lines()
    ex.execute(Action("open", text="com.visagent.calculator", space="screen"))
    assert phone.state()["foreground"] == "calculator"
    with pytest.raises(ExecutorError, match="app 'Gallery' is not installed"):
        ex.execute(Action("open", text="Gallery", space="screen"))
    with pytest.raises(ExecutorError, match="com.android.systemui has no launcher activity"):
        ex.open_app("com.android.systemui")


def test_unknown_key_and_unsupported_action_are_messages(phone):
    ex = AndroidExecutor(settle=False)
    with pytest.raises(ExecutorError, match="unknown Android key 'hyperdrive'"):
        ex.execute(Action("key", text="hyperdrive", space="screen"))
    result = ex.execute(Action("right_click", coordinate=(10, 10), space="screen"))
    assert not result.ok and "not supported on Android" in result.message


# -- failure modes mid-run ------------------------------------------------------------------------------------


@pytest.mark.parametrize("var", ["FAKE_ADB_DISCONNECT_AFTER", "FAKE_ADB_OFFLINE_AFTER"])
def test_disconnect_mid_run_is_a_clear_error(phone, monkeypatch, var):
    monkeypatch.setenv(var, "2")
    ex = AndroidExecutor(settle=False)
    ex.screenshot()
    ex.screenshot()
    with pytest.raises(ExecutorError, match=f"Android device {SERIAL} disconnected during adb .*reconnect it") as info:
        ex.execute(Action("click", coordinate=(500, 500), space="screen"))
    assert "\n" not in str(info.value)


def test_every_call_has_a_timeout(phone, monkeypatch):
    ex = AndroidExecutor(settle=False, timeout_s=1.0)
    monkeypatch.setenv("FAKE_ADB_SLOW_S", "5")
    with pytest.raises(ExecutorError, match=r"adb exec-out screencap -p timed out after 1s"):
        ex.screenshot()


# -- settle on the phone's real-time clock ----------------------------------------------------------------------


def test_settle_waits_for_the_app_to_open_and_sees_no_change_on_a_noop(phone, monkeypatch):
    monkeypatch.delenv("FAKE_ADB_TICK_S")  # phone time = wall time: the 0.3 s page animation really runs
    # one quiet comparison is enough here: a fake screencap takes longer than the animation
    ex = Screen(AndroidExecutor(settle=SettleDetector(consecutive=1, interval_s=0.05, wait_for_change_s=0.3)))
    icon = phone.element("Notes", "icon").center
    result = ex.act(Action("click", coordinate=icon, space="screen"))
    assert result.changed is True and result.observation is not None
    world = phone.world()
    assert world.state()["foreground"] == "notes" and not world.busy()
    assert result.observation.image.tobytes() == world.render().tobytes()  # the settled frame = the final screen
    noop = ex.act(Action("wait", time=0.1, space="screen"))
    assert noop.changed is False and noop.settle_s > 0


# -- quoting, checked against a real POSIX shell ----------------------------------------------------------------

PRINTABLE = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(PRINTABLE)
def test_input_text_commands_round_trip_through_sh_and_android_input(text):
    """What a real `sh` hands to `input text`, after Android's %s → space, is exactly the text."""
    typed = []
    for command in input_text_commands(text):
        assert command.startswith("input text ")
        # the device runs the command line through its sh; printf shows the argument sh passes on
        arg = subprocess.run(["sh", "-c", "printf %s " + command[len("input text "):]], capture_output=True,
                             check=True).stdout.decode()
        typed.append(FAKE.android_input_text(arg))
    assert "".join(typed) == text
