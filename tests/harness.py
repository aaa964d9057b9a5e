"""Tests run the program through the same mock runner `make render` uses."""

from tooling.mockrun import (  # noqa: F401
    ROOT, SECRET_PREFIX, Registered, Run, engine_config, plaintext_strings, run_program, run_stack,
    stack_file_config,
)
