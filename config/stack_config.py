"""Read every `observability:*` stack config value from Pulumi, once, as plain data.

`secure:` leaves inside objects arrive decrypted and unmarked; the returned secret-key list tells
the loader which keys Pulumi holds encrypted, and the model keeps credentials as `SecretStr`
until a component wraps them with `pulumi.Output.secret` (components/secrets.py).
"""

from __future__ import annotations

import pulumi
from pulumi.runtime import config as runtime_config

from .loader import NAMESPACE, known_keys


def read(cfg: pulumi.Config) -> tuple[dict[str, str], list[str]]:
    """({key: raw value} for every key set under the namespace, [secret keys])."""
    keys = set(known_keys())
    prefix = NAMESPACE + ":"
    # Unknown keys (typos) must reach the loader too, so it can name them.
    for source in (runtime_config.CONFIG.get(), runtime_config.get_config_env()):
        keys.update(k[len(prefix):] for k in source if k.startswith(prefix))
    raw = {key: value for key in sorted(keys) if (value := cfg.get(key)) is not None}
    secret = [key for key in raw if pulumi.runtime.is_config_secret(cfg.full_key(key))]
    return raw, secret
