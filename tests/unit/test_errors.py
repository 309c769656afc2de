"""The error tree: drawn in its docstring, defined in one module, every error with a code and two messages."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import terminal.errors as errors
from terminal.errors import TerminalError, UplinkRefused
from tests.conftest import REPO

TREE_LINE = re.compile(r"^(?P<indent>[│├└─ ]*)(?P<name>[A-Z]\w+)")


def _drawn_tree() -> dict[str, str | None]:
    """Each class named in the errors docstring, with its parent, read from the indentation."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    doc = errors.__doc__ or ""
    for line in doc.split("\n\n")[1].splitlines():
        match = TREE_LINE.match(line)
        if match is None:
            continue  # a continuation line of a description
        depth = len(match.group("indent"))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group("name")] = stack[-1][1] if stack else None
        stack.append((depth, match.group("name")))
    return parents


def _class_tree() -> dict[str, str | None]:
    """Each TerminalError class with its parent, walked from the base."""
    tree: dict[str, str | None] = {"TerminalError": None}
    todo = [TerminalError]
    while todo:
        klass = todo.pop()
        for sub in klass.__subclasses__():
            if sub.__module__.startswith(errors.__name__):  # a test's own subclass is not part of the product
                tree[sub.__name__] = klass.__name__
                todo.append(sub)
    return tree


def _all_errors() -> list[type[TerminalError]]:
    found: list[type[TerminalError]] = []
    todo: list[type[TerminalError]] = [TerminalError]
    while todo:
        klass = todo.pop()
        found.append(klass)
        todo.extend(sub for sub in klass.__subclasses__() if sub.__module__.startswith(errors.__name__))
    return found


def test_the_docstring_tree_equals_the_class_tree() -> None:
    drawn = _drawn_tree()
    assert len(drawn) >= 30, "the tree was not read from the docstring"
    assert drawn == _class_tree()


def test_every_error_class_lives_in_the_errors_package() -> None:
    known = set(_class_tree()) | {"Exception"}
    elsewhere = []
    for root in ("terminal", "firmware_bridge"):
        for path in sorted((REPO / root).rglob("*.py")):
            if path.parent == REPO / "terminal" / "errors":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if not isinstance(node, ast.ClassDef):
                    continue
                bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
                # a private signal caught inside its own module (e.g. pricing's _Doubt) never reaches a user
                private = node.name.startswith("_")
                if not private and (bases & known or node.name.endswith("Error")):
                    elsewhere.append(f"{path.relative_to(REPO)}: {node.name}")
    assert not elsewhere


def test_every_error_has_its_own_unique_code_and_both_messages() -> None:
    classes = _all_errors()
    codes = [klass.__dict__.get("code") for klass in classes]
    assert all(isinstance(code, str) and re.fullmatch(r"[A-Z][A-Z0-9_]+", code) for code in codes), codes
    assert len(set(codes)) == len(codes), "codes must be unique"
    for klass in classes:
        zh, en = klass.__dict__.get("message_zh"), klass.__dict__.get("message_en")
        assert isinstance(zh, str) and re.search(r"[\u4e00-\u9fff]", zh), f"{klass.__name__}: no zh message"
        assert isinstance(en, str) and en.strip() and en.isascii(), f"{klass.__name__}: no en message"


def test_the_instance_keeps_its_detail_beside_the_class_messages() -> None:
    error = errors.HisTimeout("HIS http://his did not answer within 0.2 s")
    assert error.as_json() == {
        "code": "HIS_TIMEOUT",
        "message_zh": errors.HisTimeout.message_zh,
        "message_en": errors.HisTimeout.message_en,
        "detail": "HIS http://his did not answer within 0.2 s",
    }
    assert isinstance(error, errors.HisUnavailable) and error.code != errors.HisUnavailable.code


def test_uplink_refused_carries_the_upstream_words_not_the_wire_model() -> None:
    refused = UplinkRefused("2207 M1 refused: duplicate bill", "duplicate bill", {"setl_id": "S1"})
    assert (refused.err_msg, refused.output) == ("duplicate bill", {"setl_id": "S1"})
    assert str(refused) == "2207 M1 refused: duplicate bill"
    assert UplinkRefused("refused").output == {}


def test_errors_import_nothing_of_the_terminal() -> None:
    imported = []
    for path in Path(errors.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported += [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
        imported += [
            alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names
        ]
    outside = [name for name in imported if name.split(".")[0] in ("terminal", "firmware_bridge")]
    assert outside and all(name.startswith("terminal.errors.") for name in outside), outside
