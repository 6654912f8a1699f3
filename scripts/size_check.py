"""Check what `sam build` produced: sizes per function and the contents of the layers.

Reads the built template (.aws-sam/build/template.yaml) and, for every function, adds the
unzipped size of its code to the sizes of its layers (Globals + its own), bytecode included.
Fails when a function and its layers reach the limit (120 MiB by default; Lambda's hard
limit is 250 MB).

Bytecode: when the build found a python3.13, every layer ships ``__pycache__/*.cpython-313.pyc``
(unchecked-hash) for every module. If any layer has such bytecode, all of every layer's modules
must have it; bytecode for another Python is dead weight and fails. ``--require-bytecode``
fails a build without any.

It also audits the layers, since they are installed with `pip --no-deps` for another
platform: no AWS SDK (the runtime provides it) and no scipy/PyWavelets, every native
library built for aarch64 and every extension module for CPython 3.13, and every declared
dependency of an installed distribution present somewhere in the function's layers, unless
the runtime provides it or it is a known, deliberate omission.

Usage: python scripts/size_check.py [--build-dir .aws-sam/build] [--limit-mib 120]
       [--require-bytecode]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from cfnlint.decode import decode
from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

MIB = 1024 * 1024

# What the python3.13 Lambda runtime ships (the AWS SDK and its dependencies).
RUNTIME_PROVIDED = {
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
}
# Never inside a layer: the runtime's SDK must not be shadowed; scipy/PyWavelets are too big.
FORBIDDEN = {"boto3", "botocore", "s3transfer", "scipy", "pywavelets"}
# Declared dependencies left out on purpose: (distribution, dependency).
ALLOWED_MISSING = {("imagehash", "scipy"), ("imagehash", "pywavelets")}
# PEP 508 marker environment of the python3.13 arm64 runtime.
LAMBDA_ENV = {
    "implementation_name": "cpython",
    "implementation_version": "3.13.0",
    "os_name": "posix",
    "platform_machine": "aarch64",
    "platform_python_implementation": "CPython",
    "platform_system": "Linux",
    "python_full_version": "3.13.0",
    "python_version": "3.13",
    "sys_platform": "linux",
}
ELF_MACHINE_AARCH64 = 183
PYC_TAG = "cpython-313"  # sys.implementation.cache_tag of Lambda's python3.13
PYC_UNCHECKED_HASH = 0b01  # PEP 552 flags: hash-based, source not checked
EXTENSION_TAG = re.compile(r"\.cpython-(\d+)-")


def tree_size(path: Path) -> int:
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(root, name)).st_size
    return total


def ref_name(value: Any) -> str | None:
    if isinstance(value, dict) and set(value) == {"Ref"}:
        return str(value["Ref"])
    return None


def load_template(path: Path) -> dict[str, Any]:
    template, matches = decode(str(path))
    if template is None:
        raise SystemExit(f"cannot parse {path}: {[str(m) for m in matches]}")
    return template


def functions_and_layers(
    template: dict[str, Any],
) -> tuple[dict[str, tuple[str, list[str]]], dict[str, str]]:
    """({function: (code dir, [layer ids])}, {layer id: content dir}) of a built template."""
    resources = template.get("Resources", {})
    global_layers = template.get("Globals", {}).get("Function", {}).get("Layers", [])
    layers = {
        name: str(res["Properties"]["ContentUri"])
        for name, res in resources.items()
        if res.get("Type") == "AWS::Serverless::LayerVersion"
    }
    functions = {}
    for name, res in resources.items():
        if res.get("Type") != "AWS::Serverless::Function":
            continue
        props = res.get("Properties", {})
        refs = [ref_name(v) for v in [*global_layers, *props.get("Layers", [])]]
        unknown = [r for r in refs if r not in layers]
        if unknown:
            raise SystemExit(f"{name}: layers not built by this template: {unknown}")
        functions[name] = (str(props["CodeUri"]), [r for r in refs if r])
    return functions, layers


def fmt_mib(size: int) -> str:
    return f"{size / MIB:8.2f}"


def audit_binaries(layer: str, root: Path) -> list[str]:
    problems = []
    for path in root.rglob("*.so*"):
        if not path.is_file() or path.is_symlink():
            continue
        with path.open("rb") as fh:
            head = fh.read(20)
        if head[:4] != b"\x7fELF":
            continue
        machine = int.from_bytes(head[18:20], "little")
        if machine != ELF_MACHINE_AARCH64:
            problems.append(
                f"{layer}: {path.relative_to(root)} is not aarch64 (e_machine {machine})"
            )
        tag = EXTENSION_TAG.search(path.name)
        if tag and tag.group(1) != "313":
            problems.append(f"{layer}: {path.relative_to(root)} is not for CPython 3.13")
    return problems


def audit_bytecode(layer: str, root: Path) -> tuple[int, int, list[str]]:
    """(modules, modules with python3.13 bytecode, problems) of one layer."""
    problems = []
    sources = sorted(root.rglob("*.py"))
    compiled = 0
    for source in sources:
        pyc = source.parent / "__pycache__" / f"{source.stem}.{PYC_TAG}.pyc"
        if not pyc.is_file():
            continue
        compiled += 1
        with pyc.open("rb") as fh:
            flags = int.from_bytes(fh.read(8)[4:8], "little")
        if flags != PYC_UNCHECKED_HASH:
            problems.append(f"{layer}: {pyc.relative_to(root)} is not unchecked-hash bytecode")
    other = sorted(p for p in root.rglob("*.pyc") if f".{PYC_TAG}." not in p.name)
    if other:
        problems.append(
            f"{layer}: {len(other)} .pyc files for another Python, "
            f"e.g. {other[0].relative_to(root)}"
        )
    return len(sources), compiled, problems


def installed(root: Path) -> dict[str, metadata.Distribution]:
    return {
        canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[str(root)])
    }


def applies(req: Requirement, extras: set[str]) -> bool:
    if req.marker is None:
        return True
    for extra in extras or {""}:
        try:
            if req.marker.evaluate({**LAMBDA_ENV, "extra": extra}):
                return True
        except UndefinedEnvironmentName:
            return False
    return False


def requested_extras(layer_dirs: list[Path]) -> dict[str, set[str]]:
    """Extras asked for in the layers' requirements.txt (pip ignores them with --no-deps)."""
    extras: dict[str, set[str]] = {}
    for layer_dir in layer_dirs:
        req_file = layer_dir / "requirements.txt"
        if not req_file.is_file():
            continue
        for line in req_file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if not line or line.startswith("-"):
                continue
            req = Requirement(line)
            extras.setdefault(canonicalize_name(req.name), set()).update(req.extras)
    return extras


def audit_dependencies(
    function: str, dists: dict[str, metadata.Distribution], extras: dict[str, set[str]]
) -> list[str]:
    problems = []
    for name, dist in dists.items():
        for raw in dist.requires or []:
            try:
                req = Requirement(raw)
            except InvalidRequirement:
                problems.append(f"{function}: {name} declares an unparsable requirement {raw!r}")
                continue
            if not applies(req, extras.get(name, set())):
                continue
            dep = canonicalize_name(req.name)
            if dep in dists:
                version = dists[dep].version
                if req.specifier and not req.specifier.contains(version, prereleases=True):
                    problems.append(f"{function}: {name} needs {req}, layers have {dep} {version}")
            elif dep not in RUNTIME_PROVIDED and (name, dep) not in ALLOWED_MISSING:
                problems.append(f"{function}: {name} needs {req}, which no layer provides")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", type=Path, default=Path(".aws-sam/build"))
    parser.add_argument("--source-template", type=Path, default=None)
    parser.add_argument("--limit-mib", type=float, default=120.0)
    parser.add_argument(
        "--require-bytecode", action="store_true", help="fail unless the layers ship 3.13 bytecode"
    )
    args = parser.parse_args(argv)

    built = args.build_dir / "template.yaml"
    if not built.is_file():
        print(f"{built} not found: run `make build` first", file=sys.stderr)
        return 2
    functions, layers = functions_and_layers(load_template(built))

    source_template = args.source_template or args.build_dir.parent.parent / "template.yaml"
    source_dirs: dict[str, Path] = {}
    if source_template.is_file():
        _, source_layers = functions_and_layers(load_template(source_template))
        source_dirs = {k: source_template.parent / v for k, v in source_layers.items()}

    problems: list[str] = []
    layer_sizes: dict[str, int] = {}
    layer_dists: dict[str, dict[str, metadata.Distribution]] = {}
    bytecode: dict[str, tuple[int, int]] = {}
    print(f"{'layer':<16} {'MiB':>8} {'3.13 .pyc':>11}  distributions")
    for layer, content in sorted(layers.items()):
        root = args.build_dir / content
        if not root.is_dir():
            problems.append(f"{layer}: {root} does not exist")
            continue
        layer_sizes[layer] = tree_size(root)
        dists = installed(root / "python")
        layer_dists[layer] = dists
        names = ", ".join(f"{n}=={d.version}" for n, d in sorted(dists.items())) or "-"
        modules, compiled, pyc_problems = audit_bytecode(layer, root)
        bytecode[layer] = (modules, compiled)
        pyc = f"{compiled}/{modules}"
        print(f"{layer:<16} {fmt_mib(layer_sizes[layer])} {pyc:>11}  {names}")
        problems += pyc_problems
        problems += audit_binaries(layer, root)
        problems += [f"{layer}: must not contain {n}" for n in sorted(FORBIDDEN & set(dists))]

    if any(compiled for _, compiled in bytecode.values()):
        for layer, (modules, compiled) in sorted(bytecode.items()):
            if compiled < modules:
                problems.append(
                    f"{layer}: {modules - compiled} of {modules} modules have no {PYC_TAG} "
                    "bytecode, though the build compiled some (a partial compile?)"
                )
        bytecode_note = f"layers ship {PYC_TAG} bytecode (unchecked-hash)"
    else:
        bytecode_note = (
            f"no {PYC_TAG} bytecode in the layers (built without python3.13): every cold start "
            "compiles every layer module"
        )
        if args.require_bytecode:
            problems.append(f"--require-bytecode: {bytecode_note}")
    print(f"\nbytecode: {bytecode_note}")

    limit = int(args.limit_mib * MIB)
    print()
    print(f"{'function':<18} {'code':>8} {'layers':>8} {'total':>8}  {'of limit':>8}  layers")
    for function, (code, refs) in sorted(functions.items()):
        code_size = tree_size(args.build_dir / code)
        layers_size = sum(layer_sizes.get(r, 0) for r in refs)
        total = code_size + layers_size
        flag = "  TOO LARGE" if total >= limit else ""
        print(
            f"{function:<18} {fmt_mib(code_size)} {fmt_mib(layers_size)} {fmt_mib(total)}"
            f"  {total / limit:8.1%}  {'+'.join(refs)}{flag}"
        )
        if total >= limit:
            problems.append(f"{function}: {total / MIB:.2f} MiB >= limit {args.limit_mib:g} MiB")
        dists: dict[str, metadata.Distribution] = {}
        for ref in refs:
            for name, dist in layer_dists.get(ref, {}).items():
                if name in dists:
                    problems.append(f"{function}: {name} is in more than one of its layers")
                dists[name] = dist
        extras = requested_extras([source_dirs[r] for r in refs if r in source_dirs])
        problems += audit_dependencies(function, dists, extras)

    print()
    if problems:
        for problem in dict.fromkeys(problems):
            print(f"FAIL {problem}", file=sys.stderr)
        return 1
    print(f"OK: every function + layers < {args.limit_mib:g} MiB; layers audited")
    return 0


if __name__ == "__main__":
    sys.exit(main())
