"""Provisioning's progress bars: pip's raw progress lines drive the download bar; nothing off a terminal."""

from __future__ import annotations

import io

from rich.console import Console

from terminal.provision.progress import parse_progress, provision_progress


def test_pip_raw_progress_lines_are_read_and_other_lines_ignored() -> None:
    assert parse_progress("Progress 524288 of 104857600\n") == (524288, 104857600)
    assert parse_progress("Saved ./face_recognition_models-0.3.0.tar.gz") is None
    assert parse_progress("Progress 12 of") is None


def test_a_download_bar_fills_to_its_total_on_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with provision_progress(console) as steps:
        with steps.download("dlib_resnet: face_recognition_models==0.3.0") as report:
            report(50 << 20, 100 << 20)
        with steps.working("dlib_resnet: converting to ONNX"):
            pass
        progress = steps._progress
        assert progress is not None
        download, conversion = progress.tasks
        assert (download.completed, download.total) == (100 << 20, 100 << 20) and download.finished
        assert conversion.finished
    assert "dlib_resnet: face_recognition_models==0.3.0" in out.getvalue()


def test_off_a_terminal_nothing_is_drawn() -> None:
    out = io.StringIO()
    with provision_progress(Console(file=out, force_terminal=False)) as steps, steps.download("x") as report:
        report(1, 2)
    assert out.getvalue() == ""
