"""The Terminal: every collaborator a running terminal uses, built lazily from config."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from pathlib import Path

import sqlite_utils

from firmware_bridge.printer import ReceiptPrinter
from firmware_bridge.protocol.card_auth import CardReading
from terminal.app.background_sync import BackgroundSync
from terminal.app.bounds import refuse_unsafe_production
from terminal.app.clock_guard import SettleChecks, clock_guard
from terminal.app.credentials import verify_card
from terminal.app.demo_faces import demo_presenter
from terminal.app.engine_build import log_engine_build
from terminal.app.face_index import LiveFaceIndex
from terminal.app.locking import hold
from terminal.app.payment import build_payment_gateway
from terminal.app.readers import Readers, build_readers, catalog_lookup
from terminal.app.registries import (
    build_face_stage,
    embedder_model_id,
    embedder_operating_point,
    liveness_checks,
    verified_manifest,
)
from terminal.app.reversal_headers import rebuild_reversal_headers
from terminal.clock import SystemClock
from terminal.config import (
    TerminalConfig,
    TerminalSection,
    UplinkSection,
    models_folder,
)
from terminal.devices import DeviceStatus, ReceiptPrinting
from terminal.domain import IdentityClaim
from terminal.errors import ConfigError, ModelMissingError, StoreError
from terminal.pipeline.checkout import Checkout, OfflineGate
from terminal.pipeline.clock_integrity import ClockGuard
from terminal.pipeline.counter_items import CounterItems, checked_shop_codes
from terminal.pipeline.face import FaceStage
from terminal.pipeline.his_notices import HisNotifier
from terminal.pipeline.identify import Identifier
from terminal.pipeline.liveness import LivenessStage
from terminal.pipeline.offline import OfflineLimits
from terminal.pipeline.sync import Backoff
from terminal.ports import BillSource, Clock, EcTokenResolver, PaymentGateway
from terminal.settlement import Catalog
from terminal.settlement.policy import PolicyBundle
from terminal.settlement.shelf import PolicyShelf
from terminal.store.bill_files import FileBillSource
from terminal.store.db import open_db
from terminal.store.device_key import DeviceKeys
from terminal.store.gallery import SqliteGallery
from terminal.store.health import StoreHealth, check_store
from terminal.store.high_water import HighWater
from terminal.store.keys import TemplateCipher, read_key, read_token
from terminal.store.ledger import SqliteLedger
from terminal.store.notices import NoticeJournal
from terminal.store.outbox import OutboxStore
from terminal.store.people import device_keys
from terminal.store.person_history import SqlitePersonHistory, SqliteSupervisionLog
from terminal.store.policy_files import catalogue_in_use, load_insured_shelf, load_shelf, load_trusted_keys
from terminal.store.prints import PrintJournal
from terminal.store.shop_codes import load_shop_codes
from terminal.store.template_feed import TemplateFeed
from terminal.uplink.client import HttpUplink
from terminal.uplink.ec_tokens import DemoEcTokenTable, HttpEcTokenResolver
from terminal.uplink.his import HIS_TOKEN_ROLE, HttpBillSource
from terminal.uplink.registration import identity
from terminal.uplink.signing import uplink_keys
from terminal.uplink.wire import envelope_problem
from terminal.vision.camera import PresenterKind, SensorCamera, open_camera
from terminal.vision.liveness.pack import load_passive
from terminal.vision.liveness.render import Presenter
from terminal.vision.operating_point import OperatingPoint

log = logging.getLogger(__name__)


def uplink_backoff(section: UplinkSection) -> Backoff:
    """The sync worker's retry backoff from the `[uplink]` section."""
    return Backoff(base=section.backoff_base_s, cap=section.backoff_cap_s, max_attempts=section.max_attempts)


def offline_limits(section: UplinkSection) -> OfflineLimits:
    """The offline policy's limits from the `[uplink]` section."""
    return OfflineLimits(
        max_amount=section.offline_max_amount,
        max_count=section.offline_max_count,
        max_age=timedelta(hours=section.offline_max_age_h),
        offline_after=timedelta(seconds=section.offline_after_s),
    )


@dataclass
class Terminal:
    """Everything a running terminal needs, built lazily so each command loads only what it uses."""

    config: TerminalConfig
    data_dir: Path
    clock: Clock
    _closers: list[Callable[[], None]] = field(default_factory=list, repr=False)
    # The database connection and the models serve one caller at a time: the service's requests, the
    # capture loop and the reader threads all take this lock around their use of them, always releasing it
    # in the thread that took it (app/locking.py hold(); never across FastAPI's dependency threads).
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    # One outbox drain at a time: the background sync's and the checkout's binding fetch (app/centre_link.py).
    uplink_drain: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @cached_property
    def db(self) -> sqlite_utils.Database:
        """The terminal database."""
        db = open_db(self.data_dir)
        self._closers.append(db.close)
        # Settlements from before migration 0021 whose 2207 envelope was pruned: reversible again.
        rebuild_reversal_headers(db, self.config.terminal)
        return db

    @cached_property
    def store_health(self) -> StoreHealth:
        """The database's integrity check and write probe, run once when the checkout is first built."""
        return check_store(self.db, self.data_dir)

    @cached_property
    def cipher(self) -> TemplateCipher:
        """The template key (KeyFileError when missing, unreadable or too open)."""
        return TemplateCipher(read_key(self.data_dir))

    @cached_property
    def device_keys(self) -> DeviceKeys:
        """The keys people are looked up and sealed under (KeyFileError when the device key is missing)."""
        return device_keys(self.db, self.data_dir)

    @cached_property
    def gallery(self) -> SqliteGallery:
        """Enrolled people (sealed) and their encrypted templates."""
        return SqliteGallery(self.db, self.cipher, self.clock, self.device_keys)

    @cached_property
    def outbox(self) -> OutboxStore:
        """Envelopes waiting for the upstream, and the binding results that came back."""
        return OutboxStore(self.db)

    @cached_property
    def ledger(self) -> SqliteLedger:
        """Settlements, accumulators, outbox and audit."""
        return SqliteLedger(
            self.db, self.config.terminal.fixmedins_code, self.clock, envelope_problem,
            collects=self.config.payment.url is not None, msgid_slot=self.config.terminal.msgid_slot,
        )  # fmt: skip

    @cached_property
    def face_stage(self) -> FaceStage:
        """Detector + quality gate + aligner + embedder, with verified models."""
        return build_face_stage(self.config)

    @cached_property
    def liveness_stage(self) -> LivenessStage:
        """Presentation-attack checks fused for this kiosk's hardware profile (fail closed)."""
        cfg = self.config.liveness
        passive = None
        if cfg.passive.enabled:
            models_dir = models_folder(self.config)
            try:
                passive = load_passive(
                    models_dir, verified_manifest(self.config), self.config.models.intra_op_threads,
                    cfg.passive.real_threshold,
                )  # fmt: skip
            except ModelMissingError as exc:
                # the passive check stays required: every attempt now fails closed, and doctor says why
                log.error("liveness pack unavailable: %s", exc)
        return LivenessStage(
            cfg, self.face_stage.detector, self.clock, liveness_checks(cfg, passive),
            max_fps=self.config.camera.max_fps,
        )  # fmt: skip

    @cached_property
    def camera(self) -> SensorCamera | None:
        """The configured camera (CameraError when it cannot be used), or None when none is fitted."""
        section = self.config.camera
        if section.url is None:
            return None

        def presenter(kind: PresenterKind) -> Presenter:
            # Demo only: open_camera refuses synthetic:// in production before it asks for a presenter.
            return demo_presenter(self, section.demo_presenter, kind)

        camera = open_camera(section, self.config.terminal.mode, self.clock, presenter)
        self._closers.append(camera.close)
        return camera

    @cached_property
    def bill_source(self) -> BillSource:
        """Where pending bills come from: the HIS over HTTP, or the demo's bill folder."""
        return build_bill_source(self.config, self.data_dir)

    @cached_property
    def receipts(self) -> ReceiptPrinting | None:
        """The receipt printer's worker, or None when [devices.printer] is not configured."""
        device = self.config.devices.printer
        if device is None:
            return None
        printer = ReceiptPrinter(device.url, baudrate=device.baudrate)
        return ReceiptPrinting(
            printer, PrintJournal(self.data_dir), device, self.clock, self.config.terminal.fixmedins_name
        )

    @cached_property
    def readers(self) -> Readers:
        """The configured QR, card and barcode readers; the service's reader worker starts them."""
        readers = build_readers(self.config.devices, catalog_lookup(self.counter_items), self.clock)
        self._closers.append(readers.close)
        return readers

    @cached_property
    def ec_tokens(self) -> EcTokenResolver | None:
        """QR tokens resolved online when an upstream is configured; the demo table only in demo mode;
        else None: the kiosk does not offer QR."""
        uplink = self.config.uplink
        if uplink.url:
            link = HttpUplink(
                uplink.url, uplink_keys(self.data_dir), identity(self.config.terminal), uplink.timeout_s
            )
            resolver = HttpEcTokenResolver(link, self.clock, self._locked_msgid)
            self._closers.append(resolver.close)
            return resolver
        if self.config.terminal.mode == "demo":
            return DemoEcTokenTable(self.gallery, self.config.terminal.mode)
        return None

    @cached_property
    def payment_gateway(self) -> PaymentGateway | None:
        """The cash share's payment gateway from `[payment]`, or None when none is configured."""
        # Signed with the wall clock: the gateway refuses a timestamp 300 s off its own (a demo's replayed
        # visit time, or a test's fixed clock, must not make every call a signature error).
        gateway = build_payment_gateway(self.config.payment, SystemClock())
        if gateway is not None:
            self._closers.append(gateway.close)
        return gateway

    @cached_property
    def card_issuers(self) -> dict[str, bytes]:
        """Key id → public key of the card issuers a card's certificate must come from (none: no card
        verifies); ConfigError in production for the development key, PolicyError for a bad file."""
        path = self.config.devices.card_issuers
        if path is None:
            return {}
        issuers = load_trusted_keys(path)
        refuse_development_keys(self.config.terminal, issuers, "card issuers")
        return issuers

    def _locked_msgid(self, at: datetime) -> str:
        """A msgid for a call made from a reader thread: the database step under the terminal's lock."""
        with hold(self.lock, self.config.service.background_wait_s, "msgid for a reader"):
            return self.ledger.allocate_msgid(at)

    def verify_card(self, reading: CardReading, challenge: bytes) -> IdentityClaim:
        """The proven card claim for a reading of the challenge just sent (see app/credentials.py)."""
        # reader threads call this; the gallery reads the shared connection
        with hold(self.lock, self.config.service.background_wait_s, "card check"):
            return verify_card(reading, challenge, self.card_issuers, self.gallery)

    @cached_property
    def device_status(self) -> DeviceStatus:
        """Probes of the configured readers and printer for the technician page."""
        return DeviceStatus(self.config, self.receipts)

    def his_notifier(self, source: BillSource, retry: timedelta = timedelta(seconds=5)) -> HisNotifier:
        """The worker telling `source` of settled bills, its journal in the terminal database."""
        return HisNotifier(source, NoticeJournal(self.data_dir), self.clock, retry_s=retry.total_seconds())

    @cached_property
    def operating_point(self) -> OperatingPoint:
        """Threshold, metric and 1:N cap in force; ConfigError when [identity] would loosen them."""
        return embedder_operating_point(self.config)

    @cached_property
    def identifier(self) -> Identifier:
        """1:1 and 1:N matching over the gallery, at the embedder's measured operating point or stricter."""
        point = self.operating_point
        return Identifier(
            self.gallery, point.threshold, point.max_gallery_for_1n, point.metric,
            model_id=embedder_model_id(self.config), index=self.face_index,
            min_margin=self.config.identity.min_margin,
        )  # fmt: skip

    @cached_property
    def face_index(self) -> LiveFaceIndex:
        """The 1:N index: every template of the running model decrypted once, then kept current."""
        index = LiveFaceIndex(
            TemplateFeed(self.db, self.cipher), embedder_model_id(self.config), self.operating_point.metric
        )
        index.refresh()
        self._closers.append(index.close)
        return index

    @cached_property
    def policies(self) -> PolicyShelf:
        """The verified policy bundles the rule engine prices with, one per year."""
        settlement = self.config.settlement
        trusted = load_trusted_keys(settlement.trusted_keys)
        shelf = load_shelf(settlement.policies, trusted, self.config.terminal.mdtrtarea_admvs)
        refuse_demo_bundles(self.config, shelf.bundles, trusted)
        marks = HighWater(self.db)
        for bundle in shelf.bundles:
            marks.admit("policy", bundle.bundle_id, bundle.revision, self.clock.now())
        return shelf

    @cached_property
    def insured_policies(self) -> PolicyShelf:
        """The insured-place shelf: other regions' bundles (<policies>/insured/) for cross-region patients."""
        settlement = self.config.settlement
        trusted = load_trusted_keys(settlement.trusted_keys)
        shelf = load_insured_shelf(settlement.policies, trusted, self.config.terminal.mdtrtarea_admvs)
        refuse_demo_bundles(self.config, shelf.bundles, trusted)
        marks = HighWater(self.db)
        for bundle in shelf.bundles:
            marks.admit("policy", bundle.bundle_id, bundle.revision, self.clock.now())
        return shelf

    @cached_property
    def catalog(self) -> Catalog:
        """The catalogue: the one `medpay catalogue sync` downloaded, else the configured one."""
        return catalogue_in_use(self.data_dir, self.config.settlement.catalog)

    @cached_property
    def shop_codes(self) -> dict[str, str]:
        """The shop's EAN-13 → 医保 code table provisioned beside the catalogue (empty without one)."""
        table = load_shop_codes(self.config.settlement.catalog)
        return {} if table is None else checked_shop_codes(table.codes, table.catalog_id, self.catalog)

    def counter_items(self) -> CounterItems:
        """What the counter basket resolves codes by: catalogue, shop codes, today's cashier-price rule."""
        bundle = self.policies.for_date(self.clock.now().date())
        return CounterItems(self.catalog, self.shop_codes, bundle.cashier_prices, bundle.bundle_id)

    @cached_property
    def checkout(self) -> Checkout:
        """Pricing and settling bills; the offline limits apply only when an upstream is configured.

        ConfigError in production mode for a config that mode refuses (app/bounds.py).
        """
        refuse_unsafe_production(self.config)
        uplink = self.config.uplink
        # No [uplink] url (the embedded demo default): there is nothing to be offline from. With a gallery
        # synced from the upstream, its age counts against the offline limits too.
        synced_gallery = self.gallery if uplink.gallery_trusted_keys is not None else None
        offline = OfflineGate(self.outbox, offline_limits(uplink), synced_gallery) if uplink.url else None
        return Checkout(
            gallery=self.gallery,
            ledger=self.ledger,
            policies=self.policies,
            insured_policies=self.insured_policies,
            catalog=self.catalog,
            terminal=self.config.terminal,
            clock=self.clock,
            offline=offline,
            # Storage first, then the clock: a clock set back or far off the upstream's settles nothing.
            store=SettleChecks(self.store_health, self.clock_guard),
            # Fund supervision and year totals from the gallery delta's history and this ledger.
            history=SqlitePersonHistory(self.db),
            supervision_log=self.supervision_log,
        )

    @cached_property
    def supervision_log(self) -> SqliteSupervisionLog:
        """Fund-supervision refusals, flags and 政策找人 hints, for the technician page and the report."""
        return SqliteSupervisionLog(self.db)

    @cached_property
    def clock_guard(self) -> ClockGuard:
        """The clock check: within [uplink] max_clock_skew_s of the upstream, never behind the records."""
        return clock_guard(self.db, self.clock, self.config.uplink.max_clock_skew_s)

    @cached_property
    def uplink_sync(self) -> BackgroundSync | None:
        """The background sync `medpay serve` runs; None without [uplink] url or with sync_interval_s 0."""
        section = self.config.uplink
        if not section.url or section.sync_interval_s <= 0:
            return None
        sync = BackgroundSync(
            self,
            gallery_keys=self._gallery_keys if section.gallery_trusted_keys is not None else None,
            drain_lock=self.uplink_drain,
        )
        self._closers.append(sync.stop)
        return sync

    def _gallery_keys(self) -> Mapping[str, bytes]:
        """The keys gallery deltas must be signed with; ConfigError in production for the development key."""
        path = self.config.uplink.gallery_trusted_keys
        trusted = load_trusted_keys(path) if path is not None else {}
        refuse_development_keys(self.config.terminal, trusted, "gallery")
        return trusted

    def close(self) -> None:
        """Release the readers, the camera and the database."""
        for closer in reversed(self._closers):
            closer()
        self._closers.clear()


def build_terminal(config: TerminalConfig, data_dir: Path, clock: Clock) -> Terminal:
    """A terminal over the given config and state folder."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot use data folder {data_dir}: {exc.strerror}") from exc
    log_engine_build()
    return Terminal(config=config, data_dir=data_dir, clock=clock)


# Key ids of devkit's development signing key: its private half is in the repository, so anything it
# signed proves nothing. Demo mode accepts it; production refuses it (docs/policy-format.md §10).
DEVELOPMENT_KEY_IDS = frozenset({"ac843185968c4980"})


def refuse_development_keys(terminal: TerminalSection, trusted: Mapping[str, bytes], what: str) -> None:
    """ConfigError in production mode when `what`'s trusted keys include the development key."""
    development = sorted(DEVELOPMENT_KEY_IDS & set(trusted))
    if terminal.mode == "production" and development:
        raise ConfigError(
            f"production mode trusts the development key {', '.join(development)} for {what}: "
            'replace it with the region\'s production key, or set [terminal] mode = "demo" on a demo machine'
        )


def refuse_demo_bundles(
    config: TerminalConfig, bundles: Sequence[PolicyBundle], trusted: Mapping[str, bytes]
) -> None:
    """ConfigError in production mode for placeholder policy figures or a development signing key."""
    refuse_development_keys(config.terminal, trusted, "policy bundles")
    placeholders = [bundle.bundle_id for bundle in bundles if bundle.placeholder]
    if config.terminal.mode == "production" and placeholders:
        raise ConfigError(
            f"production mode refuses placeholder policy bundles ({', '.join(placeholders)}): install the "
            'region\'s confirmed bundles, or set [terminal] mode = "demo" on a demo machine'
        )


def build_bill_source(config: TerminalConfig, data_dir: Path) -> BillSource:
    """The HIS when `[session] his_url` is set (token from <data>/keys/his.token), else the bill folder."""
    session = config.session
    if session.his_url is None:
        return FileBillSource(session.bills)
    token = read_token(data_dir, HIS_TOKEN_ROLE)
    if token is None:
        # Served anyway: QR / card / ID and the pharmacy counter work without the HIS.
        log.error("[session] his_url is set but %s is missing: bill listing will fail", _token_path(data_dir))
    return HttpBillSource(
        session.his_url, token, config.terminal.fixmedins_code, timeout=session.his_timeout_s
    )


def _token_path(data_dir: Path) -> Path:
    return data_dir / "keys" / f"{HIS_TOKEN_ROLE}.token"
