#!/usr/bin/env bash
# System packages the tests use: a real X server (Xvfb) and X programs, Tk, and the real-desktop world's programs
# (openbox, wmctrl, chromium, mousepad, xterm, galculator).
# Installs only what is missing; needs root or sudo.
set -euo pipefail
need=()
command -v Xvfb >/dev/null || need+=(xvfb)
command -v xdotool >/dev/null || need+=(xdotool)
command -v xterm >/dev/null || need+=(xterm)
command -v xdpyinfo >/dev/null || need+=(x11-utils)
command -v chromium >/dev/null || need+=(chromium)
command -v openbox >/dev/null || need+=(openbox)
command -v wmctrl >/dev/null || need+=(wmctrl)
command -v mousepad >/dev/null || need+=(mousepad)
command -v galculator >/dev/null || need+=(galculator)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${need[@]}"
fi
# pyautogui (through Xlib) refuses to start on X without this file.
[ -f "$HOME/.Xauthority" ] || touch "$HOME/.Xauthority"
