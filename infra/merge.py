"""Combine infra/template.yaml and infra/package-overrides.yaml into one merge template.

`chalice package --merge-template` takes a single file; the stateful resources
(template.yaml, also deployable on its own) and the overrides for the packaged
functions (package-overrides.yaml) stay apart, so this writes their union.
Usage: python infra/merge.py OUT.yaml
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def deep_merge(base: Any, extra: Any) -> Any:
    if isinstance(base, dict) and isinstance(extra, dict):
        merged = dict(base)
        for key, value in extra.items():
            merged[key] = deep_merge(base[key], value) if key in base else value
        return merged
    return extra


def load(path: Path) -> Any:
    import yaml  # a packaging-time tool (shipped with cfn-lint), never in a Lambda

    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation short forms (!Ref, !Sub, !GetAtt ...) kept as their long forms.
    def tag(loader: Any, suffix: str, node: Any) -> Any:
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    Loader.add_multi_constructor("!", tag)
    return yaml.load(path.read_text(), Loader=Loader)


def main(out: str) -> None:
    import yaml

    merged = deep_merge(load(HERE / "template.yaml"), load(HERE / "package-overrides.yaml"))
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    Path(out).write_text(yaml.safe_dump(merged, sort_keys=False, allow_unicode=True))


if __name__ == "__main__":
    main(sys.argv[1])
