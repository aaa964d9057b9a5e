"""The observability stack: stack config -> settings -> ObservabilityStack -> exports."""

import pulumi

from observability_stack.components.stack import ObservabilityStack
from observability_stack.config import ConfigError, load_settings
from observability_stack.config.stack_config import read

try:
    raw, secret_keys = read(pulumi.Config("observability"))
    settings = load_settings(raw, stack=pulumi.get_stack(), secret_keys=secret_keys)
except ConfigError as err:
    # RunError ends the program with just this message: no traceback, nothing registered.
    raise pulumi.RunError("invalid stack config:\n" + str(err)) from None

stack = ObservabilityStack("observability", settings)

pulumi.export("environment", settings.environment)
pulumi.export("target", settings.target)
pulumi.export("urls", stack.urls)
pulumi.export("internalUrls", stack.internal_urls)
pulumi.export("grafanaAdminPassword", stack.grafana_admin_password)
pulumi.export("telemetryEnv", stack.telemetry_env)
