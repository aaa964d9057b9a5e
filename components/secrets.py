"""The one place a credential from settings becomes file content: always a Pulumi secret."""

from __future__ import annotations

import pulumi
from pydantic import SecretStr


def secret_output(value: SecretStr) -> pulumi.Output[str]:
    return pulumi.Output.secret(value.get_secret_value())
