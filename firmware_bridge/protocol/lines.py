"""Line framing for scanners that end every scan with a terminator (CR, LF or CRLF)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Rejected:
    """A stretch of input that was not a valid frame, with why and how many bytes it held."""

    reason: str
    size: int


class LineFramer:
    """Split a byte stream into terminator-ended lines, rejecting overlong and fragmentary ones.

    Work per input byte is bounded: the terminator search resumes where the last one stopped, and an
    overlong line is dropped at once instead of being buffered.
    """

    def __init__(self, terminator: bytes = b"\r", max_length: int = 512) -> None:
        if not terminator:
            raise ValueError("the line terminator must not be empty")
        if max_length < 1:
            raise ValueError("max_length must be at least 1")
        self.terminator = terminator
        self.max_length = max_length
        self._buffer = bytearray()
        self._scan_from = 0
        self._discarding = False  # inside an overlong line: drop everything up to the next terminator
        self._discarded = 0

    def feed(self, data: bytes) -> list[bytes | Rejected]:
        """Take received bytes; return complete lines (terminator removed) and rejections, in order."""
        out: list[bytes | Rejected] = []
        self._buffer += data
        term = self.terminator
        while True:
            end = self._buffer.find(term, self._scan_from)
            if end < 0:
                # Keep the tail that could be the start of a split multi-byte terminator.
                self._scan_from = max(0, len(self._buffer) - len(term) + 1)
                if self._discarding:
                    keep = len(term) - 1
                    drop = len(self._buffer) - keep
                    if drop > 0:
                        self._discarded += drop
                        del self._buffer[:drop]
                        self._scan_from = 0
                elif len(self._buffer) > self.max_length + len(term) - 1:
                    self._discarding = True
                    keep = len(term) - 1
                    self._discarded = len(self._buffer) - keep
                    del self._buffer[: len(self._buffer) - keep]
                    self._scan_from = 0
                return out
            line = bytes(self._buffer[:end])
            del self._buffer[: end + len(term)]
            self._scan_from = 0
            if self._discarding:
                self._discarding = False
                out.append(Rejected("line longer than max_length", self._discarded + len(line)))
                self._discarded = 0
                continue
            # Scanners set to CRLF while we split on CR (or the reverse) leave a stray LF/CR behind.
            line = line.strip(b"\r\n")
            if not line:
                continue
            if len(line) > self.max_length:
                out.append(Rejected("line longer than max_length", len(line)))
                continue
            out.append(line)

    def idle(self) -> list[Rejected]:
        """The line went quiet: an unterminated fragment cannot be completed, so reject it."""
        # A scanner sends one scan as a single burst; a pause mid-line means a lost terminator or a
        # plug pulled mid-scan, and gluing the fragment onto the next scan would corrupt that scan.
        size = len(self._buffer.strip(b"\r\n")) + self._discarded
        self._buffer.clear()
        self._scan_from = 0
        was_discarding, self._discarding, self._discarded = self._discarding, False, 0
        if size == 0:
            return []
        reason = "line longer than max_length" if was_discarding else "unterminated fragment"
        return [Rejected(reason, size)]

    @property
    def pending(self) -> int:
        """Bytes buffered while waiting for a terminator (bounded by max_length + terminator)."""
        return len(self._buffer)

    def reset(self) -> None:
        """Forget any partial line (after a reconnect the old bytes belong to another session)."""
        self._buffer.clear()
        self._scan_from = 0
        self._discarding = False
        self._discarded = 0
