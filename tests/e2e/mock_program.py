"""Run a Pulumi program's `__main__.py` under mocks and print what it declared, as JSON.

Standalone on purpose: `tests/test_library.py` runs it with the Python of a clean virtualenv
where only the built wheel (and its dependencies) is installed, from the program's directory.
Usage: python mock_program.py <project> <stack> <config json> <secret keys json>
"""

import asyncio
import json
import runpy
import sys

import pulumi
from pulumi.runtime import mocks as pulumi_mocks
from pulumi.runtime import settings as pulumi_settings
from pulumi.runtime.stack import wait_for_rpcs

registered = []


class Mocks(pulumi.runtime.Mocks):
    def new_resource(self, args):
        outputs = dict(args.inputs)
        if args.typ == "random:index/randomPassword:RandomPassword":
            outputs["result"] = "generated-password-0123456789"
        if args.typ.startswith("kubernetes:") and "metadata" in outputs:
            outputs["metadata"] = {"name": args.name, **(outputs.get("metadata") or {})}
        return f"{args.name}-id", outputs

    def call(self, args):
        return {}


class Monitor(pulumi_mocks.MockMonitor):
    def RegisterResource(self, request):
        response = super().RegisterResource(request)
        registered.append({"type": request.type, "name": request.name, "provider": request.provider,
                           "parent": request.parent, "urn": response.urn})
        return response


def main() -> int:
    project, stack, config, secret_keys = sys.argv[1], sys.argv[2], json.loads(sys.argv[3]), json.loads(sys.argv[4])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    mocks = Mocks()
    pulumi_mocks.set_mocks(mocks, project=project, stack=stack, preview=False, monitor=Monitor(mocks))
    pulumi.runtime.set_all_config(config, secret_keys)
    runpy.run_path("__main__.py", run_name="__main__")
    loop.run_until_complete(wait_for_rpcs())
    outputs = {}
    for name, value in (pulumi_settings.get_root_resource().outputs or {}).items():
        out = pulumi.Output.from_input(value)
        outputs[name] = {"value": loop.run_until_complete(out.future()),
                         "secret": loop.run_until_complete(out.is_secret())}
    print(json.dumps({"resources": registered, "outputs": outputs}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
