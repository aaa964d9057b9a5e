"""The stack's policy pack: `pulumi preview --policy-pack policy` (see policy/README.md).

Only wiring: each rule in `validators.RULES` becomes a mandatory ResourceValidationPolicy. The
rules themselves are pure functions in `validators.py`, unit-tested in tests/test_policy.py
(the PolicyPack constructor below serves the engine forever, so it runs only as `__main__`).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import pulumi
from pulumi_policy import (
    EnforcementLevel,
    PolicyConfigSchema,
    PolicyPack,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)
from pulumi_policy.proxy import _DictProxy, _ListProxy

sys.path.insert(0, str(Path(__file__).resolve().parent))
from validators import RULES, Rule, resolve_context  # noqa: E402

CONFIG_SCHEMA: dict[str, dict[str, Any]] = {
    "environment": {
        "type": "string", "enum": ["auto", "dev", "prod"], "default": "auto",
        "description": "Judge resources as dev or prod; auto = the stack's observability:environment.",
    },
    "allowPublicPorts": {
        "type": "boolean",
        "description": "Unset: the stack's observability:docker.allowPublicPorts decides.",
    },
    "allowPublicServices": {
        "type": "boolean",
        "description": "Unset: the stack's observability:kubernetes.allowPublicServices decides.",
    },
}


def plain(value: Any) -> Any:
    """Engine props as plain dicts/lists, unknown preview values kept as their sentinel strings
    (the validators skip those instead of failing the whole policy)."""
    if isinstance(value, _DictProxy):
        value = value["__target"]
    if isinstance(value, _ListProxy):
        value = value["__target"]
    if isinstance(value, Mapping):
        return {k: plain(value[k]) for k in value}
    if isinstance(value, Sequence) and not isinstance(value, (str, bytes)):
        return [plain(v) for v in value]
    return value


@lru_cache(maxsize=1)
def stack_info() -> tuple[dict[str, Optional[str]], Optional[str]]:
    """The stack's own settings as the engine passes stack config to a policy pack."""
    config: dict[str, Optional[str]] = {}
    try:
        cfg = pulumi.Config("observability")
        config = {key: cfg.get(key) for key in ("environment", "docker", "kubernetes")}
    except Exception:  # noqa: BLE001 - no stack config: defaults apply
        pass
    try:
        stack: Optional[str] = pulumi.get_stack()
    except Exception:  # noqa: BLE001
        stack = None
    return config, stack


def policy(rule: Rule) -> ResourceValidationPolicy:
    def validate(args: ResourceValidationArgs, report_violation) -> None:
        stack_config, stack = stack_info()
        ctx = resolve_context(args.get_config(), stack_config, stack)
        for message in rule.check(args.resource_type, plain(args.props), args.opts, ctx):
            report_violation(message)

    schema = PolicyConfigSchema({k: CONFIG_SCHEMA[k] for k in rule.config}) if rule.config else None
    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
        config_schema=schema,
    )


POLICIES = [policy(rule) for rule in RULES]

if __name__ == "__main__":
    PolicyPack(
        name="observability-stack",
        policies=POLICIES,
        enforcement_level=EnforcementLevel.MANDATORY,
    )
