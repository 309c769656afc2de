"""Demo people and their faces: invented insurance data for the six faces of insightface's t1.jpg."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from firmware_bridge.simulate import DEMO_CARD, DEMO_EC_TOKEN
from terminal.app import Terminal
from terminal.app.demo_faces import demo_faces as demo_faces  # re-exported: the demo's older import path
from terminal.app.demo_faces import face_crop as face_crop
from terminal.app.demo_faces import insightface_image as insightface_image
from terminal.config import REPO_ROOT
from terminal.domain import CertType, Frame, Person
from terminal.operations import enroll_person
from terminal.vision.images import load_image

log = logging.getLogger(__name__)

SAMPLE_BILL = REPO_ROOT / "config" / "bills" / "outpatient-sample.json"
CONSENT = "本人同意本终端保存本人人脸特征，仅用于本院医保刷脸结算；可随时撤回。"

# Demo people for the six faces of insightface's t1.jpg, left to right. Invented data.
DEMO_PEOPLE = [
    Person("43030200000000000101", "李建国", "430302195803120017", "310", "retired", "430302",
           Decimal("1860.50"), "1", date(1958, 3, 12)),
    Person("43030200000000000102", "王秀兰", "430302196207250020", "390", "active", "430302",
           Decimal("0.00"), "2", date(1962, 7, 25)),
    Person("43030200000000000103", "张伟", "43030219851103003X", "310", "active", "430302",
           Decimal("326.40"), "1", date(1985, 11, 3)),
    Person("43030200000000000104", "刘芳", "430302199002140040", "390", "active", "430302",
           Decimal("0.00"), "2", date(1990, 2, 14)),
    Person("43030200000000000105", "陈明", "430302197709300053", "310", "active", "430302",
           Decimal("95.00"), "1", date(1977, 9, 30)),
    Person("43030200000000000106", "杨丽", "430302196812080066", "390", "active", "430302",
           Decimal("0.00"), "2", date(1968, 12, 8)),
]  # fmt: skip


def link_demo_credentials(terminal: Terminal) -> None:
    """Link the reader simulators' demo card and QR token to the first demo person (李建国)."""
    psn_no = DEMO_PEOPLE[0].psn_no
    terminal.gallery.link_credential(CertType.SOCIAL_SECURITY_CARD, DEMO_CARD.card_no, psn_no)
    terminal.gallery.link_credential(CertType.EC_TOKEN, DEMO_EC_TOKEN, psn_no)


def seed_demo(terminal: Terminal, more_photos: Mapping[str, Sequence[Path]] | None = None) -> list[Person]:
    """Enrol DEMO_PEOPLE from t1.jpg with recorded consent and link the simulators' QR token and card.

    more_photos: further photos per psn_no, each enrolled as another template beside the t1.jpg crop.
    """
    group = load_image(insightface_image("t1.jpg"))
    extra = more_photos or {}
    enrolled = []
    for person, box in zip(DEMO_PEOPLE, demo_faces(terminal), strict=False):
        frames = [Frame(face_crop(group, box, 0.6), "t1.jpg", terminal.clock.now())]
        frames += [
            Frame(load_image(path), str(path), terminal.clock.now()) for path in extra.get(person.psn_no, ())
        ]
        done = enroll_person(terminal, frames, person, CONSENT, "刷脸结算", "demo-seed")
        for source, reason in done.refused:
            log.warning("demo: %s not enrolled from %s: %s", person.psn_no, source, reason)
        enrolled.append(done.person)
    link_demo_credentials(terminal)
    log.info("demo: enrolled %d people from t1.jpg", len(enrolled))
    return enrolled
