"""What `mode = "production"` refuses in a config: each value that would make a real terminal unsafe.

- a match threshold looser than the embedder's measured operating point (models/manifest.toml);
- face-pause settings letting an attacker fail more than MAX_FACE_FAILURES_PER_HOUR times an hour;
- a service listening beyond loopback (the patient's routes carry no token);
- plain http:// to the upstream or the HIS from another machine (sign_no, ID numbers, the HIS token);
- no upstream at all (then no offline limits apply to what the terminal settles).

Demo mode (the shipped config/terminal.toml) checks none of these.
"""

from __future__ import annotations

import math
from urllib.parse import urlsplit

from terminal.app.registries import embedder_operating_point
from terminal.config import TerminalConfig
from terminal.errors import ConfigError, TerminalError

# Failed identifications (face, or a refused credential) an attacker may make on one terminal in an hour:
# the shipped defaults (10 failures pause face for 600 s) allow 60; docs/threat-model.md.
MAX_FACE_FAILURES_PER_HOUR = 60
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
HOUR_S = 3600


def face_failures_per_hour(failures: int, window_s: int, pause_s: int) -> int:
    """The most failed identifications one hour allows under the terminal-wide pause rule.

    Either bursts of `failures` each followed by a pause (a pause spends the failures that caused it), or
    one less than `failures` in every window, never pausing: whichever is more.
    """
    bursts = failures * math.ceil(HOUR_S / pause_s)
    below_pause = (failures - 1) * math.ceil(HOUR_S / window_s)
    return max(bursts, below_pause)


def production_problems(config: TerminalConfig, host: str | None = None) -> list[str]:
    """Why production mode refuses this config (empty when it does not, and always in demo mode).

    `host` is the address the service will bind (`medpay serve --host`), default `[service] host`.
    """
    if config.terminal.mode != "production":
        return []
    problems: list[str] = []
    try:
        embedder_operating_point(config)
    except ConfigError as exc:
        problems.append(str(exc))
    except TerminalError as exc:
        problems.append(f"the embedder's operating point cannot be read: {exc}")
    identity = config.identity
    rate = face_failures_per_hour(
        identity.face_pause_failures, identity.face_pause_window_s, identity.face_pause_s
    )
    if rate > MAX_FACE_FAILURES_PER_HOUR:
        problems.append(
            f"[identity] face_pause_failures {identity.face_pause_failures}, face_pause_window_s "
            f"{identity.face_pause_window_s} and face_pause_s {identity.face_pause_s} allow {rate} failed "
            f"identifications an hour; at most {MAX_FACE_FAILURES_PER_HOUR} are allowed (each is a guess "
            "at someone else's face or ID number; docs/threat-model.md)"
        )
    bind = host or config.service.host
    if bind not in LOOPBACK_HOSTS:
        problems.append(
            f"[service] host {bind} is not loopback: the patient's routes carry no token, so anyone on that "
            "network could drive the checkout; bind 127.0.0.1 (the kiosk browser runs on this machine)"
        )
    uplink = config.uplink.url
    if uplink is None:
        problems.append(
            "[uplink] url is unset: without an upstream no offline limits apply, so nothing bounds what "
            "this terminal settles on its own estimate; set the insurance centre's URL"
        )
    elif _plain_http_elsewhere(uplink):
        problems.append(
            f"[uplink] url {uplink} is plain http:// to another machine: the day's sign_no and patients' "
            "ID numbers would cross the network in clear; use https://"
        )
    his = config.session.his_url
    if his is not None and _plain_http_elsewhere(his):
        problems.append(
            f"[session] his_url {his} is plain http:// to another machine: the HIS bearer token and "
            "patients' bills would cross the network in clear; use https://"
        )
    return problems


def refuse_unsafe_production(config: TerminalConfig, host: str | None = None) -> None:
    """ConfigError naming every reason production mode refuses this config; nothing in demo mode."""
    problems = production_problems(config, host)
    if problems:
        raise ConfigError(
            'production mode refuses this config ([terminal] mode = "production"):\n  - '
            + "\n  - ".join(problems)
        )


def _plain_http_elsewhere(url: str) -> bool:
    """http:// to a host other than this machine (loopback traffic never reaches a network)."""
    parts = urlsplit(url)
    return parts.scheme == "http" and (parts.hostname or "") not in LOOPBACK_HOSTS
