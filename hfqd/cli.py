"""Command-line parsing for recipes: `HfArgumentParser` plus named presets and config files."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import yaml
from transformers import HfArgumentParser


def parse_recipe_args(dataclass_types: tuple, preset_dir: str, argv: list[str] | None = None) -> tuple[Any, ...]:
    """Parse ``argv`` into ``dataclass_types``.

    ``--preset NAME`` loads ``{preset_dir}/NAME.yaml`` and ``--config FILE`` any YAML/JSON file; their values
    become defaults that command-line flags override. Unknown keys in a preset are an error.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--preset")
    pre.add_argument("--config")
    known, rest = pre.parse_known_args(argv)
    defaults: dict[str, Any] = {}
    for path in ([os.path.join(preset_dir, f"{known.preset}.yaml")] if known.preset else []) + (
        [known.config] if known.config else []
    ):
        if not os.path.isfile(path):
            available = sorted(f[:-5] for f in os.listdir(preset_dir) if f.endswith(".yaml"))
            raise SystemExit(f"No config file {path}. Presets: {available}.")
        with open(path) as f:
            loaded = yaml.safe_load(f) or {}
        if not isinstance(loaded, dict):
            raise SystemExit(f"{path} must hold a mapping of argument names to values.")
        defaults.update(loaded)
    parser = HfArgumentParser(dataclass_types)
    known_dests = {action.dest for action in parser._actions}
    unknown = sorted(set(defaults) - known_dests)
    if unknown:
        raise SystemExit(f"Unknown keys in the config: {unknown}.")
    parser.set_defaults(**defaults)
    # Required arguments satisfied by the config file must not be demanded again on the command line.
    for action in parser._actions:
        if action.dest in defaults:
            action.required = False
    return parser.parse_args_into_dataclasses(args=rest, look_for_args_file=False)
