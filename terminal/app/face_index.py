"""The serving terminal's 1:N index over the gallery: loaded once, then only changed people reloaded.

Why in the composition root: the index's maths (terminal/vision/template_index.py) must not read the
store, and the store must not hold numpy search state; this adapter joins the two behind the FaceIndex
port the pipeline's Identifier searches. Callers hold the terminal's lock (it reads the shared
connection), so the revision check and the reload are not raced.

The index keeps the float32 templates itself while they fit its budget (decrypted once); a larger
gallery keeps only the float16 screen, and the few people a search re-ranks exactly are decrypted again
for that search (`exact_templates`), which is what keeps 1,000,000 templates near 260 MB.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from terminal.ports import Metric
from terminal.store.template_feed import TemplateFeed
from terminal.vision.int8_screen import Int8Screen
from terminal.vision.template_index import TemplateIndex

log = logging.getLogger(__name__)


class LiveFaceIndex:
    """A TemplateIndex of one model kept current with the gallery, whichever process writes it."""

    def __init__(self, feed: TemplateFeed, model_id: str, metric: Metric) -> None:
        self._feed = feed
        self._model_id = model_id
        self._index = TemplateIndex(metric, source=self.exact_templates, int8=Int8Screen)
        self._revision = -1

    def people(self, bucket: str | None = None) -> int:
        """People searchable (in one bucket when given)."""
        self.refresh()
        return self._index.people(bucket)

    def search(self, probe: NDArray[np.float32], bucket: str | None = None) -> list[tuple[str, float]]:
        """The best two people, best first, with exact scores."""
        self.refresh()
        return self._index.search(probe, bucket)

    def exact_templates(self, psn_nos: Sequence[str]) -> dict[str, NDArray[np.float32]]:
        """Some people's float32 templates, decrypted for one exact re-rank (a large gallery only)."""
        owners, matrix, _ = self._feed.people(psn_nos, self._model_id)
        rows_of: dict[str, list[int]] = {}
        for row, owner in enumerate(owners):
            rows_of.setdefault(owner, []).append(row)
        return {owner: matrix[rows] for owner, rows in rows_of.items()}

    def refresh(self) -> None:
        """Load everything the first time (or after a restore), else reopen only the changed people."""
        revision = self._feed.revision()
        if revision == self._revision:
            return
        began = time.perf_counter()
        if self._revision < 0 or revision < self._revision:
            owners, matrix, buckets = self._feed.everyone(self._model_id)
            self._index.load(owners, matrix, buckets)
            matrix[:] = 0.0  # the index holds what it needs; the decrypted copy is not left about
            log.info(
                "face index loaded: %d people, %d templates in %.0f ms",
                self._index.people(),
                len(owners),
                (time.perf_counter() - began) * 1000,
            )
        else:
            changed = self._feed.changed_since(self._revision)
            owners, matrix, buckets = self._feed.people(changed, self._model_id)
            rows_of: dict[str, list[int]] = {}
            for row, owner in enumerate(owners):
                rows_of.setdefault(owner, []).append(row)
            for psn_no in changed:
                rows = rows_of.get(psn_no)
                self._index.replace(psn_no, matrix[rows] if rows else _NONE, buckets.get(psn_no))
            matrix[:] = 0.0
            log.info("face index: %d people reloaded", len(changed))
        self._revision = revision

    def close(self) -> None:
        """Zero and drop the decrypted templates (shutdown)."""
        self._index.clear()
        self._revision = -1


_NONE = np.zeros((0, 0), dtype=np.float32)
