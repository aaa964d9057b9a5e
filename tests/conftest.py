import sys

import pytest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pytest_addoption(parser):
    parser.addoption("--update-golden", action="store_true", default=False,
                     help="rewrite tests/golden/ from the current render")


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """The real Pulumi engine built from Go modules, with offline state in a temp dir."""
    from scripts.engine import offline_env
    from tests.enginekit import engine_ready

    engine_ready()
    base = tmp_path_factory.mktemp("engine")
    env = offline_env(base / "state", base / "home", passphrase="example")
    return base, env


@pytest.fixture(scope="session")
def promtool() -> str:
    """promtool built at the pinned version (tests/tools.py says where it comes from)."""
    from tests.tools import require

    return require("promtool")


@pytest.fixture(scope="session")
def amtool() -> str:
    from tests.tools import require

    return require("amtool")


@pytest.fixture(autouse=True)
def _an_event_loop():
    """Pure render code builds Pulumi secret Outputs (Alertmanager's credentials, Grafana's
    password), which need a current event loop; a previous test may have cleared it (the mock
    runner sets its own loop and unsets it afterwards). Give each test one if there is none."""
    import asyncio

    try:
        asyncio.get_event_loop_policy().get_event_loop()
    except RuntimeError:
        asyncio.set_event_loop(asyncio.new_event_loop())
    yield


@pytest.fixture(scope="module")
def module_event_loop():
    """The same, for module-scoped fixtures (they run before the per-test one above)."""
    import asyncio

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)
