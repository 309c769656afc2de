"""One wire envelope at the reference upstream: validated, authenticated, opened and routed by infno.

Everything after sign-in is handled in the clear (stored opened, so a 2207 resend or a 5203 query
gets the same answer) and its answer's output is sealed on the way out with the sign-in's data key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from devkit.upstream import audit_heads, catalogue, ec_tokens, gallery, policies, settlements, terminals
from devkit.upstream.replies import Refusal, fail
from devkit.upstream.state import Upstream
from terminal.uplink.signing import output_aad, seal
from terminal.uplink.wire import (
    INFNO_AUDIT_HEAD,
    INFNO_CORRECT,
    INFNO_DOWNLOAD,
    INFNO_GALLERY,
    INFNO_PERSON_INFO,
    INFNO_QUERY,
    INFNO_REGISTER,
    INFNO_REVERSE,
    INFNO_SETTLE,
    INFNO_SIGN_IN,
    INFNO_TOTALS,
)
from terminal.uplink.wire import Request as Envelope


def handle(upstream: Upstream, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """Process one envelope; (response, committed_new_settlement); AuthFailure when not trusted."""
    try:
        env = Envelope.model_validate(body)
    except ValidationError as exc:
        return fail(str(body.get("msgid", "")), f"malformed envelope: {exc.error_count()} problems"), False
    try:
        return _dispatch(upstream, env, body)
    except Refusal as exc:
        return fail(env.msgid, str(exc), exc.output), False


def _dispatch(upstream: Upstream, env: Envelope, body: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    if env.infno == INFNO_SIGN_IN:
        return terminals.sign_in(upstream, env, body), False
    if env.infno == INFNO_REGISTER:
        return terminals.register(upstream, env, body), False
    opened, key = terminals.authenticate(upstream, env, body)
    try:
        response, committed = _route(upstream, opened)
    except Refusal as exc:
        response, committed = fail(env.msgid, str(exc), exc.output), False
    sealed = seal(response["output"], key, output_aad(env.infno, env.msgid))
    return {**response, "output": sealed}, committed


def _route(upstream: Upstream, env: Envelope) -> tuple[dict[str, Any], bool]:
    if env.infno == INFNO_AUDIT_HEAD:
        return audit_heads.report_head(upstream, env), False
    if env.infno == INFNO_GALLERY:
        return gallery.gallery_delta(upstream, env), False
    if env.infno == INFNO_PERSON_INFO:
        return ec_tokens.resolve(upstream, env), False
    if env.infno == INFNO_QUERY:
        return settlements.query(upstream, env), False
    if env.infno == INFNO_TOTALS:
        return settlements.totals(upstream, env), False
    if env.infno in catalogue.INFNOS:
        return catalogue.query(upstream.catalogue_rows, env), False
    if env.infno == INFNO_DOWNLOAD:
        return policies.download(upstream, env), False
    if env.infno in (INFNO_SETTLE, INFNO_REVERSE, INFNO_CORRECT):
        return settlements.idempotent(upstream, env)
    raise Refusal(f"infno {env.infno} is not offered by this upstream")
