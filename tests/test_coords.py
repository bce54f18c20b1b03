"""Coordinate spaces → screen pixels: HiDPI, a second monitor, a phone, resized images, and the way back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.api import VisionSpec
from visagent.core.actions import Action
from visagent.loop.coords import (
    from_screen, model_size, norm1000_to_screen, resized_size_for, screen_to_norm1000, to_screen,
)
from visagent.core.errors import ActionError, ConfigError, ParseError
from visagent.screen.base import ScreenGeometry

FHD = ScreenGeometry.simple(1920, 1080)
HIDPI = ScreenGeometry(1440, 900, 2880, 1800)  # scale 2.0
SECOND = ScreenGeometry(1920, 1080, 1920, 1080, offset_x=1920, offset_y=0, monitor=2)
PHONE = ScreenGeometry.simple(1080, 2400)


def click(x: float, y: float, space: str) -> Action:
    return Action("left_click", coordinate=(x, y), space=space)


def test_norm1000_on_full_hd():
    out = to_screen(click(500, 500, "norm1000"), FHD)
    assert out.space == "screen" and out.coordinate == (960.0, 540.0)
    assert to_screen(click(0, 0, "norm1000"), FHD).coordinate == (0.0, 0.0)
    assert to_screen(click(1000, 1000, "norm1000"), FHD).coordinate == (1919.0, 1079.0)  # far edge = last pixel


def test_mapping_keeps_model_point_and_factors():
    out = to_screen(Action("left_click_drag", coordinate=(250, 750), coordinate2=(500, 500), space="norm1000"), FHD)
    m = out.mapping
    assert m is not None
    assert (m.space, m.model, m.model2) == ("norm1000", (250.0, 750.0), (500.0, 500.0))
    assert (m.factor_x, m.factor_y) == (1.92, 1.08)
    assert (m.offset_x, m.offset_y, m.scale, m.image_size) == (0, 0, 1.0, (1920, 1080))
    assert out.coordinate == (480.0, 810.0) and out.coordinate2 == (960.0, 540.0)
    assert out.to_dict()["mapping"]["model"] == (250.0, 750.0)


def test_hidpi_scale_2_divides_physical_screenshot_pixels():
    # The screenshot is 2880x1800 physical; the model points at physical pixels, input takes logical ones.
    assert to_screen(click(1000, 600, "absolute"), HIDPI).coordinate == (500.0, 300.0)
    assert to_screen(click(1001, 601, "absolute"), HIDPI).coordinate == (500.0, 300.0)
    assert to_screen(click(500, 500, "norm1000"), HIDPI).coordinate == (720.0, 450.0)
    m = to_screen(click(1000, 600, "absolute"), HIDPI).mapping
    assert m.scale == 2.0 and m.factor_x == 0.5 and m.image_size == (2880, 1800)


def test_second_monitor_offset_is_added():
    assert to_screen(click(500, 500, "norm1000"), SECOND).coordinate == (2880.0, 540.0)
    assert to_screen(click(0, 0, "absolute"), SECOND).coordinate == (1920.0, 0.0)
    out = to_screen(click(1000, 1000, "norm1000"), SECOND)
    assert out.coordinate == (3839.0, 1079.0) and SECOND.contains(*out.coordinate)
    assert out.mapping.offset_x == 1920


def test_phone_1080x2400():
    assert to_screen(Action("click", coordinate=(500, 500), space="norm1000"), PHONE).coordinate == (540.0, 1200.0)
    resized = resized_size_for(PHONE, VisionSpec())
    assert resized == (1088, 2400)
    out = to_screen(Action("swipe", coordinate=(544, 2000), coordinate2=(544, 400), space="resized"), PHONE,
                    resized_size=resized)
    assert out.coordinate == (540.0, 2000.0) and out.coordinate2 == (540.0, 400.0)


def test_resized_space_1920x1080_seen_as_1920x1088():
    resized = resized_size_for(FHD, VisionSpec())
    assert resized == (1920, 1088)
    out = to_screen(click(960, 544, "resized"), FHD, resized_size=resized)
    assert out.coordinate == (960.0, 540.0)
    assert out.mapping.resized_size == (1920, 1088) and math.isclose(out.mapping.factor_y, 1080 / 1088)
    assert to_screen(click(1919, 1087, "resized"), FHD, resized_size=resized).coordinate == (1919.0, 1079.0)


def test_resized_space_needs_its_size():
    with pytest.raises(ConfigError, match="resized_size"):
        to_screen(click(1, 1, "resized"), FHD)


def test_points_off_the_image_are_parse_errors_not_clamped():
    with pytest.raises(ParseError, match=r"coordinate \[1921, 5\] is outside the 1920x1080 screenshot"):
        to_screen(click(1921, 5, "absolute"), FHD)
    with pytest.raises(ParseError, match=r"outside the 1920x1088 image"):
        to_screen(click(5, 1100, "resized"), FHD, resized_size=(1920, 1088))
    with pytest.raises(ParseError, match="outside the 0..1000 grid"):
        norm1000_to_screen(1001, 0, FHD)


def test_explicit_image_size_overrides_the_geometry():
    # A screenshot downscaled to 960x540 before it reached the model.
    out = to_screen(click(480, 270, "absolute"), FHD, image_size=(960, 540))
    assert out.coordinate == (961.0, 541.0)  # centre of image pixel 480 → screen pixel 961
    assert out.mapping.image_size == (960, 540)


def test_actions_without_points_pass_through_as_screen():
    out = to_screen(Action("type", text="hi", space="norm1000"), FHD)
    assert out.space == "screen" and out.mapping is None and out.text == "hi"
    same = Action("left_click", coordinate=(5, 5), space="screen")
    assert to_screen(same, FHD) is same


def test_scroll_keeps_its_amount_and_converts_its_point():
    out = to_screen(Action("scroll", pixels=-5, coordinate=(500, 500), space="norm1000"), FHD)
    assert out.pixels == -5 and out.coordinate == (960.0, 540.0)


def test_from_screen_writes_whole_numbers_in_the_model_space():
    s = Action("left_click", coordinate=(960, 540), space="screen")
    assert from_screen(s, FHD, space="norm1000").coordinate == (500.0, 500.0)
    assert from_screen(s, FHD, space="resized", resized_size=(1920, 1088)).coordinate == (960.0, 544.0)
    assert from_screen(Action("left_click", coordinate=(500, 300), space="screen"), HIDPI,
                       space="absolute").coordinate == (1001.0, 601.0)
    assert from_screen(Action("left_click", coordinate=(2880, 540), space="screen"), SECOND,
                       space="norm1000").coordinate == (500.0, 500.0)


def test_from_screen_rejects_points_off_the_monitor_and_non_screen_actions():
    with pytest.raises(ActionError, match="not on this monitor"):
        from_screen(Action("left_click", coordinate=(100, 5), space="screen"), SECOND, space="norm1000")
    with pytest.raises(ActionError, match="'screen' space"):
        from_screen(click(1, 1, "absolute"), FHD, space="norm1000")


def test_model_size_and_helpers():
    assert model_size("norm1000", PHONE) == (1000, 1000)
    assert model_size("absolute", HIDPI) == (2880, 1800)
    with pytest.raises(ConfigError, match="unknown model coordinate space"):
        model_size("pixels", FHD)
    assert screen_to_norm1000(960, 540, FHD) == (500, 500)
    assert norm1000_to_screen(500, 500, SECOND) == (2880, 540)


# -- properties -----------------------------------------------------------------------------------------------

@st.composite
def geometries(draw) -> ScreenGeometry:
    w, h = draw(st.integers(200, 4000)), draw(st.integers(200, 4000))
    scale = draw(st.sampled_from([1.0, 1.25, 1.5, 2.0, 3.0]))
    return ScreenGeometry(w, h, round(w * scale), round(h * scale), offset_x=draw(st.integers(-4000, 4000)),
                          offset_y=draw(st.integers(-2000, 2000)))


@settings(max_examples=300, deadline=None)
@given(g=geometries(), fx=st.floats(0, 1), fy=st.floats(0, 1))
def test_round_trip_from_screen_to_screen(g, fx, fy):
    sx = g.offset_x + min(int(fx * g.width), g.width - 1)
    sy = g.offset_y + min(int(fy * g.height), g.height - 1)
    s = Action("left_click", coordinate=(sx, sy), space="screen")
    # absolute: exact at any HiDPI scale
    image = (g.physical_width, g.physical_height)
    back = to_screen(from_screen(s, g, space="absolute", image_size=image), g, image_size=image)
    assert back.coordinate == (sx, sy)
    # norm1000: within one grid step
    back = to_screen(from_screen(s, g, space="norm1000"), g)
    assert abs(back.coordinate[0] - sx) <= math.ceil(g.width / 1000)
    assert abs(back.coordinate[1] - sy) <= math.ceil(g.height / 1000)
    # resized: exact when the resized image is no smaller than the screen, else within one resized pixel
    resized = resized_size_for(g, VisionSpec())
    back = to_screen(from_screen(s, g, space="resized", resized_size=resized), g, resized_size=resized)
    assert abs(back.coordinate[0] - sx) <= math.ceil(g.width / resized[0]) - (resized[0] >= g.width)
    assert abs(back.coordinate[1] - sy) <= math.ceil(g.height / resized[1]) - (resized[1] >= g.height)


@settings(max_examples=300, deadline=None)
@given(g=geometries(), x=st.floats(0, 1000), y=st.floats(0, 1000))
def test_any_grid_point_lands_on_the_monitor(g, x, y):
    out = to_screen(click(x, y, "norm1000"), g)
    assert g.contains(*out.coordinate)
    assert all(float(v).is_integer() for v in out.coordinate)
