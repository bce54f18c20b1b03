"""Safety policy: risky hotkeys, typed text and clicks while the thought mentions a risky word; secrets."""

from __future__ import annotations

import pytest

from visagent.core.actions import Action
from visagent.core.errors import ConfigError
from visagent.loop.policy import SafetyPolicy, SecretVault, resolve_secrets, secret_names
from visagent.core.settings import SafetySettings


@pytest.fixture
def policy() -> SafetyPolicy:
    return SafetyPolicy(SafetySettings())


def click() -> Action:
    return Action("left_click", coordinate=(10, 10), space="screen")


@pytest.mark.parametrize("keys", [("ctrl", "alt", "delete"), ("Alt", "F4"), ("control", "alt", "del"),
                                  ("alt", "ctrl", "Delete")])
def test_risky_hotkeys_need_confirmation_in_any_order_or_spelling(policy, keys):
    decision = policy.check(Action("key", keys=keys))
    assert decision.verdict == "confirm"
    assert "hotkey" in decision.reason


@pytest.mark.parametrize("keys", [("ctrl", "c"), ("alt",), ("alt", "f5"), ("f4",)])
def test_ordinary_hotkeys_are_allowed(policy, keys):
    assert policy.check(Action("key", keys=keys)).verdict == "allow"


@pytest.mark.parametrize("text", ["sudo rm -rf /", "RM  -RF ~", "mkfs.ext4 /dev/sda", "dd if=/dev/zero of=x"])
def test_risky_typed_text_needs_confirmation(policy, text):
    decision = policy.check(Action("type", text=text))
    assert decision.verdict == "confirm"
    assert "pattern" in decision.reason


def test_harmless_text_is_allowed(policy):
    assert policy.check(Action("type", text="hello world; ls -la")).verdict == "allow"


@pytest.mark.parametrize("thought", ["I will click Send now", "Pay the invoice", "deleting the file",
                                     "Confirm the purchase"])
def test_click_while_thought_mentions_risky_word_needs_confirmation(policy, thought):
    decision = policy.check(click(), thought=thought)
    assert decision.verdict == "confirm"


@pytest.mark.parametrize("thought", ["open the display settings", "scroll down",
                                     ""])
def test_click_with_neutral_thought_is_allowed(policy, thought):
    assert policy.check(click(), thought=thought).verdict == "allow"


def test_risky_word_inside_the_tool_call_itself_is_not_a_thought(policy):
    thought = "<tool_call>\n<function=computer_use>\n<parameter=text>\nsend\n</parameter>\n</function>\n</tool_call>"
    assert policy.check(click(), thought=thought).verdict == "allow"


def test_typing_is_not_a_click_even_with_risky_thought(policy):
    assert policy.check(Action("type", text="hi"), thought="send it").verdict == "allow"


def test_confirm_risky_off_allows_everything():
    policy = SafetyPolicy(SafetySettings(confirm_risky=False))
    assert policy.check(Action("key", keys=("alt", "f4"))).verdict == "allow"
    assert policy.check(Action("type", text="rm -rf /")).verdict == "allow"


def test_custom_rules_from_settings():
    policy = SafetyPolicy(SafetySettings(risky_hotkeys=("ctrl+q",), risky_text_patterns=(r"DROP\s+TABLE",),
                                         risky_thought_words=("launch",)))
    assert policy.check(Action("key", keys=("ctrl", "q"))).verdict == "confirm"
    assert policy.check(Action("key", keys=("alt", "f4"))).verdict == "allow"
    assert policy.check(Action("type", text="drop table users")).verdict == "confirm"
    assert policy.check(click(), thought="launching now").verdict == "confirm"
    assert policy.check(click(), thought="send").verdict == "allow"


def test_bad_pattern_is_a_config_error_naming_it():
    with pytest.raises(ConfigError, match=r"\[unclosed"):
        SafetyPolicy(SafetySettings(risky_text_patterns=("[unclosed",)))


# -- secrets -------------------------------------------------------------------------------------

def test_secret_names_in_order_without_repeats():
    assert secret_names("log in as {{secret:USER}} with {{secret:PW}} then {{secret:USER}}") == ["USER", "PW"]


def test_resolve_secrets_prefers_visagent_prefix_then_plain_name():
    env = {"VISAGENT_SECRET_PW": "s3cret", "PW": "other", "TOKEN": "tok"}
    assert resolve_secrets("{{secret:PW}} {{secret:TOKEN}}", env=env) == {"PW": "s3cret", "TOKEN": "tok"}


def test_missing_secret_is_a_config_error_naming_the_variables():
    with pytest.raises(ConfigError, match="VISAGENT_SECRET_PIN nor PIN"):
        resolve_secrets("enter {{secret:PIN}}", env={})


def test_vault_substitutes_only_for_execution_and_redacts_everywhere():
    vault = SecretVault({"PW": "hunter2", "LONG": "hunter2-and-more"})
    action = Action("type", text="pass: {{secret:PW}} / {{secret:NOPE}}")
    real = vault.for_execution(action)
    assert real.text == "pass: hunter2 / {{secret:NOPE}}"
    assert action.text == "pass: {{secret:PW}} / {{secret:NOPE}}"
    assert vault.redact("typed hunter2-and-more and hunter2") == "typed {{secret:LONG}} and {{secret:PW}}"
    assert vault.redact_obj({"a": ["x hunter2", 3], "b": "y"}) == {"a": ["x {{secret:PW}}", 3], "b": "y"}


# -- key names as the executor presses them (issue 42: side names and supersets passed) --------------------

@pytest.mark.parametrize("keys", [("altleft", "f4"), ("altright", "f4"), ("ctrlleft", "altleft", "del"),
                                  ("winleft", "l"), ("shift", "alt", "f4"), ("Alt_R", "F4"),
                                  ("KEYCODE_ALT_LEFT", "KEYCODE_F4"), ("ctrl+alt+delete",)])
def test_side_specific_names_and_extra_modifiers_are_still_the_risky_combo(policy, keys):
    assert policy.check(Action("key", keys=keys)).verdict == "confirm"


def test_a_phone_key_written_as_text_is_checked_as_a_combo(policy):
    assert policy.check(Action("key", text="altleft+f4")).verdict == "confirm"
    assert policy.check(Action("key", text="enter")).verdict == "allow"


# Every spelling the executors accept for each key of the default risky combos (visagent.screen.keynames,
# pyautogui's names, X11 keysyms, Android KEYCODE_* names and numbers).
SPELLINGS = {
    "ctrl": ["ctrl", "control", "ctl", "ctrlleft", "ctrlright", "Control_L", "control_r", "CTRL", "KEYCODE_CTRL_LEFT",
             "113", "114"],
    "alt": ["alt", "option", "altleft", "altright", "optionleft", "optionright", "Alt_L", "ALT_R", "KEYCODE_ALT_RIGHT",
            "57"],
    "shift": ["shift", "shiftleft", "shiftright", "Shift_R", "KEYCODE_SHIFT_LEFT"],
    "super": ["super", "win", "windows", "meta", "cmd", "command", "winleft", "winright", "Super_L", "super_r",
              "KEYCODE_META_LEFT", "117"],
    "delete": ["delete", "del", "Delete", "DEL", "KEYCODE_FORWARD_DEL", "112"],
    "backspace": ["backspace", "bksp", "BackSpace", "\b", "KEYCODE_DEL", "67"],
    "f4": ["f4", "F4", "KEYCODE_F4", "134"],
    "l": ["l", "L", "KEYCODE_L"],
}
EXTRA = ["shift", "shiftleft", "ctrl", "altright", "winleft", "a", "tab", "f5"]


def spell(combo: str):
    from hypothesis import strategies as st

    keys = combo.split("+")
    return st.tuples(*[st.sampled_from(SPELLINGS[k]) for k in keys]) \
        .flatmap(lambda names: st.lists(st.sampled_from(EXTRA), max_size=3)
                 .flatmap(lambda extra: st.permutations(list(names) + extra)))


@pytest.mark.parametrize("combo", list(SafetySettings().risky_hotkeys))
def test_every_spelling_order_and_superset_of_a_risky_combo_is_held(combo):
    from hypothesis import given, settings as hsettings, strategies as st

    policy = SafetyPolicy(SafetySettings())

    @hsettings(max_examples=150, deadline=None)
    @given(spell(combo), st.booleans())
    def check(keys, joined):
        keys = tuple(keys)
        action = Action("key", keys=("+".join(keys),) if joined and all(k != "+" for k in keys) else keys)
        assert policy.check(action).verdict == "confirm", keys

    check()


def test_key_spellings_fold_as_the_x_server_presses_them(xserver):
    """pyautogui (what the desktop executor presses with) maps each of its key names to an X keycode; every name
    whose keycode the X server holds as a modifier folds to that modifier, and names sharing a keycode fold to
    the same key."""
    import pyautogui
    import pyautogui._pyautogui_x11 as x11
    from Xlib import X

    from visagent.screen.keynames import pressed_key

    from Xlib.display import Display

    # our own connection to this test's server: pyautogui's module-level one may belong to an earlier test's
    # (closed) display when the suite imported pyautogui first
    display = Display(xserver.display)
    mods = display.get_modifier_mapping()
    role = {X.ControlMapIndex: "ctrl", X.ShiftMapIndex: "shift"}
    held = {code: role[i] for i in role for code in mods[i] if code}
    alt_code = display.keysym_to_keycode(0xffe9)  # Alt_L
    super_code = display.keysym_to_keycode(0xffeb)  # Super_L
    by_code: dict[int, set[str]] = {}
    for name in pyautogui.KEY_NAMES:
        code = x11.keyboardMapping.get(name)
        if not code or len(name) == 1:
            continue
        by_code.setdefault(code, set()).add(pressed_key(name))
        if code in held:
            assert pressed_key(name) == held[code], name
    assert by_code[alt_code] == {"alt"} and by_code[super_code] == {"super"}
    assert all(len(folded) == 1 for folded in by_code.values()), by_code
    display.close()


# -- typed commands by meaning (issue 42: rm -fr /, rm --recursive --force, poweroff passed) ----------------

@pytest.mark.parametrize("text", ["rm -fr /", "rm -r -f /", "rm --recursive --force /", "poweroff",
                                  "sudo /bin/rm -Rf ~", "cd /tmp && r''m -rf x", "bash -c 'rm -fr /'",
                                  "dd of=/dev/sda if=/dev/zero", "bomb(){ bomb|bomb& };bomb", "systemctl reboot",
                                  "echo $(halt)", "mke2fs /dev/sdb1", "rm / --force --recursive"])
def test_risky_commands_in_other_spellings_need_confirmation(policy, text):
    decision = policy.check(Action("type", text=text))
    assert decision.verdict == "confirm", text
    assert text not in decision.reason


def _rm_spellings():
    from hypothesis import strategies as st

    recursive = st.sampled_from(["-r", "-R", "--recursive", "--recursiv", "--recu"])
    force = st.sampled_from(["-f", "--force", "--forc"])
    clustered = st.sampled_from(["-rf", "-fr", "-Rf", "-fR", "-rfv", "-vrf", "-frv", "-rfi"])
    flags = st.one_of(clustered.map(lambda c: [c]),
                      st.tuples(recursive, force).flatmap(lambda rf: st.permutations(list(rf))))
    extra = st.lists(st.sampled_from(["-v", "-i", "--verbose", "--one-file-system", "--no-preserve-root"]),
                     max_size=2)
    target = st.lists(st.sampled_from(["/", "~", "/home/me", "*", "'my dir'", "./x"]), min_size=1, max_size=2)
    name = st.sampled_from(["rm", "/bin/rm", "/usr/bin/rm", "\\rm", "'rm'", '"rm"', "r''m"])
    before = st.sampled_from(["", "sudo ", "sudo -u root ", "env LANG=C ", "nohup ", "doas ", "cd /tmp && ",
                              "echo hi; ", "true || ", "ls | xargs "])
    sep = st.sampled_from([" ", "  ", "\t"])
    return st.tuples(before, name, flags, extra, target, sep, st.booleans()).map(
        lambda t: t[0] + t[5].join([t[1], *((t[2] + t[3]) if not t[6] else []), *t[4],
                                    *((t[2] + t[3]) if t[6] else [])]))


def _power_spellings():
    from hypothesis import strategies as st

    plain = st.tuples(st.sampled_from(["poweroff", "halt", "reboot", "shutdown", "/sbin/poweroff", "/usr/sbin/reboot"]),
                      st.sampled_from(["", " now", " -h now", " -r +1", " -f", " --force"])).map("".join)
    ctl = st.tuples(st.sampled_from(["systemctl ", "/bin/systemctl ", "loginctl ", "systemctl -i "]),
                    st.sampled_from(["poweroff", "reboot", "halt", "kexec"])).map("".join)
    init = st.sampled_from(["init 0", "init 6", "telinit 0", "/sbin/init 6"])
    return st.tuples(st.sampled_from(["", "sudo ", "echo bye; ", "sleep 1 && "]), st.one_of(plain, ctl, init)).map("".join)


def _other_spellings():
    from hypothesis import strategies as st

    dd = st.permutations(["if=/dev/zero", "of=/dev/sda", "bs=1M", "count=10"]).map(lambda ops: "dd " + " ".join(ops))
    mkfs = st.tuples(st.sampled_from(["mkfs", "mkfs.ext4", "/sbin/mkfs.vfat", "mke2fs", "mkfs -t xfs"]),
                     st.sampled_from([" /dev/sda1", " -F /dev/sdb"])).map("".join)
    bomb = st.from_regex(r"[a-z_][a-z0-9_]{0,8}", fullmatch=True).map(lambda f: f"{f}(){{ {f}|{f}& }};{f}")
    return st.one_of(dd, mkfs, bomb)


@pytest.mark.parametrize("family", ["rm", "power", "other"])
def test_generated_spellings_of_the_listed_risks_are_all_held(family):
    from hypothesis import given, settings as hsettings

    policy = SafetyPolicy(SafetySettings())
    strategy = {"rm": _rm_spellings, "power": _power_spellings, "other": _other_spellings}[family]()

    @hsettings(max_examples=200, deadline=None)
    @given(strategy)
    def check(text):
        assert policy.check(Action("type", text=text)).verdict == "confirm", text

    check()


@pytest.mark.parametrize("text", ["rm notes.txt", "rm -f build.log", "rm -r old_dir", "rm -i -- -rf", "ls -rf",
                                  "echo shut down the lights", "dd", "cat /etc/hosts | grep localhost",
                                  "halting problem", "git rm -r --cached x"])
def test_harmless_commands_stay_allowed(policy, text):
    assert policy.check(Action("type", text=text)).verdict == "allow", text


def test_a_typed_secret_is_checked_by_its_real_value_and_never_quoted():
    vault = SecretVault({"CMD": "rm --recursive --force /srv"})
    policy = SafetyPolicy(SafetySettings(), secrets=vault)
    decision = policy.check(Action("type", text="{{secret:CMD}}"))
    assert decision.verdict == "confirm" and "/srv" not in decision.reason
    assert SafetyPolicy(SafetySettings()).check(Action("type", text="{{secret:CMD}}")).verdict == "allow"
