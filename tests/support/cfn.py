"""Temporary: create the template's table and bucket in moto (to be replaced by local_stack's)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class _Loader(yaml.SafeLoader):
    pass


def _tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return {suffix: loader.construct_scalar(node)}
    if isinstance(node, yaml.SequenceNode):
        return {suffix: loader.construct_sequence(node, deep=True)}
    return {suffix: loader.construct_mapping(node, deep=True)}


_Loader.add_multi_constructor("!", _tag)


def load_template(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=_Loader)


def _resource(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(r for r in template["Resources"].values() if r["Type"] == kind)["Properties"]


def create_table(client: Any, template: dict[str, Any], name: str) -> None:
    props = _resource(template, "AWS::DynamoDB::Table")
    client.create_table(
        TableName=name,
        AttributeDefinitions=props["AttributeDefinitions"],
        KeySchema=props["KeySchema"],
        GlobalSecondaryIndexes=props.get("GlobalSecondaryIndexes", []),
        BillingMode=props["BillingMode"],
    )


def create_bucket(client: Any, template: dict[str, Any], name: str) -> None:
    client.create_bucket(Bucket=name)
