"""CloudFormation templates: YAML with short-form tags, and the intrinsic functions we resolve.

Only what a local stack can know is resolved: parameters (their Default or an override),
pseudo parameters, conditions over those, and references to the resources we emulate.
Anything else raises ``Unresolvable`` so the caller can drop it and say so.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ACCOUNT_ID = "123456789012"  # moto's default account: ARNs must agree with moto's


class Unresolvable(ValueError):
    """An expression that needs a real deployment (or a resource we do not emulate)."""


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that reads ``!Ref X`` as ``{"Ref": "X"}``, ``!Sub s`` as ``{"Fn::Sub": s}``..."""


# CloudFormation takes unquoted dates such as 2012-10-17 as strings, not datetimes.
CfnLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _construct_tag(loader: CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
    return {key: value}


CfnLoader.add_multi_constructor("!", _construct_tag)


def load_template(path: str | Path) -> dict[str, Any]:
    """The template as plain data, with every intrinsic function in its long form."""
    with open(path, encoding="utf-8") as f:
        data = yaml.load(f, Loader=CfnLoader)  # a SafeLoader subclass: safe
    if not isinstance(data, dict) or not isinstance(data.get("Resources"), dict):
        raise ValueError(f"{path}: not a CloudFormation template (no Resources mapping)")
    return data


class _NoValue:
    """``!Ref AWS::NoValue``: the property is removed."""

    def __repr__(self) -> str:
        return "AWS::NoValue"


NO_VALUE = _NoValue()
_SUB_VAR = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Resolves intrinsic functions against parameters, pseudo parameters and known resources.

    ``refs`` maps a resource's logical id to what ``!Ref`` returns for it; ``attrs`` maps
    ``(logical_id, attribute)`` to what ``!GetAtt`` returns.
    """

    def __init__(
        self,
        template: Mapping[str, Any],
        *,
        region: str,
        stack_name: str,
        parameter_overrides: Mapping[str, str] | None = None,
        refs: Mapping[str, str] | None = None,
        attrs: Mapping[tuple[str, str], str] | None = None,
    ) -> None:
        self.template = template
        self.refs: dict[str, str] = dict(refs or {})
        self.attrs: dict[tuple[str, str], str] = dict(attrs or {})
        self.pseudo = {
            "AWS::Region": region,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::StackName": stack_name,
            "AWS::StackId": (
                f"arn:aws:cloudformation:{region}:{ACCOUNT_ID}:stack/{stack_name}/local"
            ),
            "AWS::Partition": "aws",
            "AWS::URLSuffix": "amazonaws.com",
        }
        overrides = dict(parameter_overrides or {})
        self.parameters: dict[str, str] = {}
        for name, spec in (template.get("Parameters") or {}).items():
            if name in overrides:
                self.parameters[name] = overrides.pop(name)
            elif isinstance(spec, dict) and "Default" in spec:
                self.parameters[name] = scalar_to_str(spec["Default"])
        if overrides:
            raise ValueError(f"unknown template parameters: {', '.join(sorted(overrides))}")

    # ---------------------------------------------------------------- public
    def resolve(self, value: Any) -> Any:
        """The value with every intrinsic function replaced; raises Unresolvable."""
        if isinstance(value, dict):
            if len(value) == 1:
                ((key, arg),) = value.items()
                handler = self._functions().get(key)
                if handler is not None:
                    return handler(arg)
            out = {}
            for k, v in value.items():
                resolved = self.resolve(v)
                if resolved is not NO_VALUE:
                    out[k] = resolved
            return out
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not NO_VALUE]
        return value

    def condition(self, name: str) -> bool:
        conditions = self.template.get("Conditions") or {}
        if name not in conditions:
            raise Unresolvable(f"unknown condition {name}")
        return bool(self._evaluate(conditions[name]))

    # ---------------------------------------------------------------- functions
    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": self._ref,
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::If": self._if,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::FindInMap": self._find_in_map,
            "Fn::Equals": self._evaluate_function("Fn::Equals"),
            "Fn::Not": self._evaluate_function("Fn::Not"),
            "Fn::And": self._evaluate_function("Fn::And"),
            "Fn::Or": self._evaluate_function("Fn::Or"),
        }

    def _ref(self, name: Any) -> Any:
        name = self.resolve(name)
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.refs:
            return self.refs[name]
        raise Unresolvable(f"!Ref {name}")

    def _get_att(self, arg: Any) -> str:
        arg = self.resolve(arg)
        if not isinstance(arg, list) or len(arg) != 2:
            raise Unresolvable(f"!GetAtt {arg}")
        key = (str(arg[0]), str(arg[1]))
        if key not in self.attrs:
            raise Unresolvable(f"!GetAtt {key[0]}.{key[1]}")
        return self.attrs[key]

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            text, variables = arg[0], {k: self.resolve(v) for k, v in (arg[1] or {}).items()}
        else:
            text, variables = arg, {}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name.startswith("!"):  # ${!Literal} stays as ${Literal}
                return "${" + name[1:] + "}"
            if name in variables:
                return scalar_to_str(variables[name])
            if "." in name and name.split(".", 1)[0] not in self.pseudo:
                return scalar_to_str(self._get_att(name.split(".", 1)))
            return scalar_to_str(self._ref(name))

        return _SUB_VAR.sub(replace, str(text))

    def _join(self, arg: Any) -> str:
        delimiter, items = self.resolve(arg)
        return str(delimiter).join(scalar_to_str(i) for i in items)

    def _if(self, arg: Any) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _select(self, arg: Any) -> Any:
        index, items = self.resolve(arg)
        return items[int(index)]

    def _split(self, arg: Any) -> list[str]:
        delimiter, text = self.resolve(arg)
        return str(text).split(str(delimiter))

    def _find_in_map(self, arg: Any) -> Any:
        name, first, second = self.resolve(arg)
        try:
            return self.template["Mappings"][name][first][second]
        except (KeyError, TypeError) as err:
            raise Unresolvable(f"!FindInMap {name}.{first}.{second}") from err

    def _evaluate_function(self, key: str) -> Callable[[Any], bool]:
        return lambda arg: self._evaluate({key: arg})

    def _evaluate(self, expr: Any) -> Any:
        if isinstance(expr, dict) and len(expr) == 1:
            ((key, arg),) = expr.items()
            if key == "Fn::Equals":
                left, right = (scalar_to_str(self.resolve(a)) for a in arg)
                return left == right
            if key == "Fn::Not":
                return not self._evaluate(arg[0])
            if key == "Fn::And":
                return all(self._evaluate(a) for a in arg)
            if key == "Fn::Or":
                return any(self._evaluate(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
        return self.resolve(expr)


def scalar_to_str(value: Any) -> str:
    """How CloudFormation turns a scalar into a string (booleans are lower case)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        raise Unresolvable(f"not a scalar: {value!r}")
    return str(value)


__all__ = [
    "ACCOUNT_ID",
    "NO_VALUE",
    "CfnLoader",
    "Resolver",
    "Unresolvable",
    "load_template",
    "scalar_to_str",
]
