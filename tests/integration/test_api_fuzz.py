"""API fuzzing: schemathesis drives every operation of a served demo terminal's OpenAPI.

For every generated request, whatever its shape: no 500, an answer within HANG_S (the issue's bound for
a hang), no traceback text in any response, and a 503 only with the documented error JSON (code,
message_zh, message_en, detail) and a Retry-After header. Examples are bounded so the whole module
stays well under a minute on a shared 2-core machine; the seed is fixed, so a failure replays.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, seed, settings
from schemathesis import Case

from devkit.serving import serving
from terminal.app import Terminal, build_terminal
from terminal.config import DEFAULT_CONFIG, load
from terminal.demo_data import DEMO_PEOPLE, SAMPLE_BILL, link_demo_credentials
from terminal.service.app import create_app
from terminal.store.bill_files import FileBillSource
from terminal.store.keys import create_key
from tests.fakes import FixedClock

CASHIER = "cashier-fuzz"
TECH = "tech-fuzz"
HANG_S = 10.0  # "a hang means: no answer within 10 s" (issue 15)
MAX_EXAMPLES = 30  # per operation
LONG_POLL_S = 0.2  # long polls answer by design after their `wait`; the fuzzer does not sit them out
# Routes that answer with an endless stream, and the media type each streams.
STREAMS = {
    "/api/session/events": "text/event-stream",
    "/api/session/camera": "multipart/x-mixed-replace",
}
ERROR_FIELDS = {"code", "message_zh", "message_en", "detail"}
TRACEBACK_MARKERS = ("Traceback (most recent call last)", 'File "/')


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A demo terminal (shipped config, demo people, the sample bill, both tokens) served on loopback."""
    root = tmp_path_factory.mktemp("fuzz")
    data_dir = root / "data"
    create_key(data_dir)
    bills = root / "bills"
    bills.mkdir()
    (bills / "op.json").write_text(SAMPLE_BILL.read_text(encoding="utf-8"), encoding="utf-8")
    terminal: Terminal = build_terminal(load(DEFAULT_CONFIG), data_dir, FixedClock())
    try:
        for person in DEMO_PEOPLE:
            terminal.gallery.upsert_person(person)
        link_demo_credentials(terminal)
        app = create_app(
            terminal,
            bills=FileBillSource(bills),
            cashier_token=CASHIER,
            technician_token=TECH,
            session_timeout=timedelta(seconds=60),
            event_interval=0.1,
        )
        with serving(app) as url:
            yield url
    finally:
        terminal.close()


@pytest.fixture(scope="module")
def api_schema(served: str) -> Any:
    """The served terminal's own OpenAPI document, aimed at it."""
    document = httpx.get(f"{served}/openapi.json", timeout=HANG_S).json()
    schema = schemathesis.openapi.from_dict(document)
    schema.config.update(base_url=served)
    return schema


def token_for(path: str) -> str:
    """The bearer token a route needs: the technician's for /api/identify and /api/tech/*, else cashier's."""
    return TECH if path == "/api/identify" or path.startswith("/api/tech/") else CASHIER


def check_answer(response: requests.Response, text: str) -> None:
    """The promises every answer keeps, whatever the request looked like."""
    where = f"{response.request.method} {response.request.url} → {response.status_code}"
    assert response.status_code != 500, f"{where}: {text[:300]}"
    assert not any(marker in text for marker in TRACEBACK_MARKERS), f"{where} shows a traceback"
    if response.status_code == 503:
        body = response.json()
        assert isinstance(body, dict) and body.keys() >= ERROR_FIELDS, f"{where}: 503 body {text[:300]}"
        assert all(isinstance(body[name], str) and body[name] for name in ERROR_FIELDS), where
        assert response.headers.get("Retry-After", "").isdigit(), f"{where}: 503 without Retry-After"


def identifying(base_url: str) -> None:
    """A fresh session waiting for the patient, so typed IDs reach the credential route's own checks."""
    headers = {"authorization": f"Bearer {CASHIER}"}
    for step in ("cancel", "start"):
        requests.post(f"{base_url}/api/session/{step}", headers=headers, timeout=HANG_S)


def exercise(case: Case, base_url: str) -> None:
    """Send one generated request with the route's token; check what comes back."""
    if case.path == "/api/session/credential":
        identifying(base_url)
    case.headers = {**(case.headers or {}), "authorization": f"Bearer {token_for(case.path)}"}
    if isinstance(case.query, dict) and "wait" in case.query:
        case.query["wait"] = LONG_POLL_S
    streamed = case.path in STREAMS
    # Sent with requests directly (the transport schemathesis serialises for) rather than case.call(),
    # which reads every body to the end and retries dropped connections: an endless stream would hang
    # it, and a retry would hide a server that dropped a connection.
    request = case.as_transport_kwargs()
    try:
        # The timeout bounds the connect and every read: a request that hangs fails here.
        response = requests.request(**request, timeout=(HANG_S, HANG_S), stream=streamed)
    except requests.Timeout as exc:
        pytest.fail(f"{case.method} {case.formatted_path}: no answer within {HANG_S:g} s ({exc})")
    if streamed and response.status_code == 200:
        # A stream never ends by itself (the camera's sends nothing until a face check previews):
        # its status and headers are the answer.
        assert response.headers["content-type"].startswith(STREAMS[case.path])
        response.close()
        text = ""
    else:
        text = response.text
    check_answer(response, text)


def test_no_request_gets_a_500_a_hang_a_traceback_or_a_bare_503(api_schema: Any, served: str) -> None:
    # One hypothesis run per operation, driven here rather than by schemathesis' pytest plugin (its
    # lazy fixture loading reads a pytest-internal attribute that pytest 9.2 no longer has).
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 20  # the whole API, not a schema that failed to load

    for operation in operations:

        @seed(20251126)
        @settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy())
        def fuzz(case: Case) -> None:
            exercise(case, served)

        fuzz()


def test_check_refuses_a_503_without_the_documented_body_or_retry_after() -> None:
    bare = requests.Response()
    bare.status_code = 503
    bare._content = b'{"detail": "busy"}'
    bare.request = requests.Request("GET", "http://127.0.0.1/x").prepare()
    with pytest.raises(AssertionError, match="503 body"):
        check_answer(bare, bare.text)
    documented = {"code": "E", "message_zh": "忙", "message_en": "busy", "detail": "lock held"}
    bare._content = httpx.Response(200, json=documented).content
    with pytest.raises(AssertionError, match="Retry-After"):
        check_answer(bare, bare.text)
    bare.headers["Retry-After"] = "1"
    check_answer(bare, bare.text)
