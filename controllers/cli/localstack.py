"""What the local stack (``kaizen up``) leaves in its state folder for the ``kaizen`` command to find.

``kaizen up`` keeps everything in one state folder: ``$KAIZEN_STATE_DIR``, else ``.kaizen`` in the
current directory. Two files there are meant for the ``kaizen`` command, so that it works against
the local stack with no flags:

* ``token-keys/`` (mode 0700; its one key file ``default``, mode 0600): the key the local gateway
  signs and checks Kaizen tokens with, its ``KAIZEN_TOKEN_KEYS_DIR``. ``kaizen token create`` and
  ``inspect`` use it when neither ``--keys-dir`` / ``KAIZEN_TOKEN_KEYS_DIR`` nor
  ``KAIZEN_TOKEN_SECRET`` names other keys (and say so on stderr).
* ``gateway-url``: the local gateway's base URL. ``kaizen experiment report`` reads through it when
  neither ``--gateway`` nor ``KAIZEN_GATEWAY_URL`` is given, and, when no ``--token`` /
  ``KAIZEN_TOKEN`` is given either, signs itself a ten-minute reviewer token with the key above.

The development stack (``devstack``) writes both with these names; the product only reads them,
and a machine without a local stack simply has neither.
"""

from __future__ import annotations

import os
from pathlib import Path

STATE_ENV = "KAIZEN_STATE_DIR"
DEFAULT_STATE_DIR = ".kaizen"
KEYS_DIR = "token-keys"
SIGNING_KEY = "default"  # the key id of the one local key (Keyring.from_env signs with "default")
GATEWAY_URL_FILE = "gateway-url"


def state_dir() -> Path:
    """The local stack's state folder, as ``kaizen up`` picks it (read when called: tests set the env)."""
    return Path(os.environ.get(STATE_ENV) or DEFAULT_STATE_DIR)


def keys_dir(state: Path | None = None) -> Path | None:
    """The local gateway's key folder, when a local stack left one."""
    found = (state or state_dir()) / KEYS_DIR
    return found.resolve() if (found / SIGNING_KEY).is_file() else None


def gateway_url(state: Path | None = None) -> str | None:
    """The local gateway's URL, when a local stack recorded one."""
    path = (state or state_dir()) / GATEWAY_URL_FILE
    return (path.read_text().strip() or None) if path.is_file() else None
