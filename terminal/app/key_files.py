"""Every key file the terminal holds, in one list: what `medpay backup --keys-to` copies and
`medpay restore --keys-from` puts back (store/backup.py copies whatever this list names).

Keys live in two places: `data/keys/` (the template, audit and device keys, the staff-role and HIS
tokens) and the data folder itself (the uplink's Ed25519 and SM2 signing keys, where provisioning
writes them); the merchant key of `[payment]` lives wherever the config points. Each is named here by
its place relative to the data folder (`payment/<file>` for the merchant key), which is also its place
inside a key backup.
"""

from __future__ import annotations

from pathlib import Path

from terminal.config import TerminalConfig
from terminal.store.audit_key import AUDIT_KEY_FILE
from terminal.store.device_key import DEVICE_KEY_FILE
from terminal.store.keys import KEY_FILE as TEMPLATE_KEY_FILE
from terminal.uplink.signing import KEY_FILE as UPLINK_KEY_FILE
from terminal.uplink.sm_crypto import SM2_KEY_FILE

KEYS_DIR = "keys"
# The named keys, whether or not this terminal has made each one yet.
NAMED = (TEMPLATE_KEY_FILE, AUDIT_KEY_FILE, DEVICE_KEY_FILE, Path(UPLINK_KEY_FILE), Path(SM2_KEY_FILE))


def key_files(config: TerminalConfig, data_dir: Path) -> dict[str, Path]:
    """Backup name → where the file lives, for every key file this terminal has or may have."""
    files = {rel.as_posix(): data_dir / rel for rel in NAMED}
    folder = data_dir / KEYS_DIR
    # Tokens and anything else kept in keys/ (its folder holds nothing but secrets).
    for item in sorted(folder.iterdir()) if folder.is_dir() else []:
        if item.is_file():
            files.setdefault(f"{KEYS_DIR}/{item.name}", item)
    merchant = config.payment.key_file
    if merchant is not None:
        files[f"payment/{merchant.name}"] = merchant
    return files
