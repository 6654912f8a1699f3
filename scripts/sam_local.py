"""SAM's own emulator (`sam local start-api`, Docker) against the local stack's moto server.

    .venv/bin/python -m scripts.sam_local env-vars    # --env-vars file from a running `make local`
    .venv/bin/python -m scripts.sam_local start-api   # sam local start-api against `make local`
    .venv/bin/python -m scripts.sam_local image       # the stand-in Lambda python3.13 image
    .venv/bin/python -m scripts.sam_local check       # CI: all of it, then real HTTP requests

The template declares ``AWS_ENDPOINT_URL`` empty (botocore ignores an empty value), so
``--env-vars`` can set it: each function gets the variables the local stack gives it (its ready
file's ``environments``: the same table, bucket and settings) with ``AWS_ENDPOINT_URL`` pointing
at the moto server. The containers reach it through a relay on the Docker bridge's gateway
(the local stack listens on 127.0.0.1 only, which a container cannot reach on Linux). sam runs
with dummy credentials and no AWS profile or config, so nothing can reach real AWS.

The stand-in image: SAM runs zip functions on ``public.ecr.aws/lambda/python:3.13-<arch>`` (plus
its own runtime interface emulator and the layers). Where that image cannot be pulled,
``image`` builds one under the same name from a Debian 13 root filesystem (debootstrap; Debian
13 has Python 3.13) with ``awslambdaric`` and boto3 in /var/runtime, as in Lambda. It is
labelled ``imgsvc.sam-local.standin``: an image of that name without the label (the real one,
pulled) is used as it is and never replaced. It is a stand-in for trying the app, not Lambda:
Debian's glibc and Python build, not Amazon Linux's.

``check`` (``make sam-local-check``, CI) builds the stand-in, an x86_64 (the machine's
architecture) copy of the template and its layers (``LAMBDA_ARCH=x86_64`` make), starts a
local stack of its own (free ports), runs ``sam local start-api --skip-pull-image`` against
it, and checks GET /status, GET /history (an analysis seeded in moto's table) and POST /uploads
(its session item is then read back from moto's table) over HTTP.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import platform
import re
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent
DEFAULT_READY_FILE = ROOT / ".local-stack" / "ready.json"
SCRATCH = ROOT / ".aws-sam" / "sam-local"  # gitignored; the x86_64 template and its build
CACHE = Path(
    os.environ.get("SAM_LOCAL_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "imgsvc" / "sam-local"
)

RUNTIME = "python3.13"
DEBIAN_SUITE = "trixie"  # Debian 13: python3 is 3.13
DEBIAN_MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
AWSLAMBDARIC = "awslambdaric==4.2.2"
# What Lambda's python3.13 runtime provides in /var/runtime, at the versions the tests use.
RUNTIME_PACKAGES = (
    "boto3",
    "botocore",
    "s3transfer",
    "jmespath",
    "python-dateutil",
    "six",
    "urllib3",
)
STANDIN_LABEL = "imgsvc.sam-local.standin"
CHECK_PHOTO = "astronaut_nikon.jpg"  # tests/data/photos: what the check uploads
ARCHES = {"x86_64": ("x86_64", "amd64"), "aarch64": ("arm64", "arm64"), "arm64": ("arm64", "arm64")}

BOOTSTRAP = """\
#!/bin/sh
# Stand-in for the Lambda python3.13 image's /var/runtime/bootstrap (scripts/sam_local.py):
# the runtime interface client on Debian's python3.13, in /var/task (the function's code).
export AWS_EXECUTION_ENV="${AWS_EXECUTION_ENV:-AWS_Lambda_python3.13}"
exec /usr/bin/python3.13 -m awslambdaric "${_HANDLER:-$AWS_LAMBDA_FUNCTION_HANDLER}"
"""

DOCKERFILE = """\
FROM scratch
ADD rootfs.tar /
COPY runtime/ /var/runtime/
COPY bootstrap /var/runtime/bootstrap
RUN chmod 0755 /var/runtime/bootstrap && mkdir -p /var/task /opt
ENV LANG=C.UTF-8 \\
    PATH=/usr/local/bin:/usr/bin:/bin \\
    LAMBDA_TASK_ROOT=/var/task \\
    LAMBDA_RUNTIME_DIR=/var/runtime \\
    PYTHONPATH=/opt/python/lib/python3.13/site-packages:/opt/python:/var/runtime
WORKDIR /var/task
ENTRYPOINT ["/var/runtime/bootstrap"]
"""


def log(message: str) -> None:
    print(f"sam-local: {message}", flush=True)


def host_arch() -> tuple[str, str]:
    """(Lambda's name, Debian's name) of this machine's architecture."""
    machine = platform.machine().lower()
    if machine not in ARCHES:
        raise SystemExit(f"sam-local: no Lambda architecture for this machine ({machine})")
    return ARCHES[machine]


def docker_client() -> Any:
    import docker

    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except Exception as err:  # docker-py raises many kinds
        raise SystemExit(f"sam-local: no Docker daemon reachable ({err})") from err
    return client


# ---------------------------------------------------------------- the stand-in image
def base_image_name(arch: str) -> str:
    """The image SAM runs zip functions of RUNTIME on (`sam local`, without --invoke-image)."""
    from samcli.local.docker.lambda_image import LambdaImage, Runtime

    tag = Runtime.get_image_name_tag(RUNTIME, arch)
    return f"{LambdaImage._INVOKE_REPO_PREFIX}/{tag}"


def _pins() -> list[str]:
    pins = {}
    for line in (ROOT / "requirements-dev.txt").read_text().splitlines():
        name, sep, version = line.split("#", 1)[0].strip().partition("==")
        if sep:
            pins[name.strip().lower()] = f"{name.strip()}=={version.strip()}"
    missing = [p for p in RUNTIME_PACKAGES if p not in pins]
    if missing:
        raise SystemExit(f"sam-local: requirements-dev.txt pins none of {', '.join(missing)}")
    return [AWSLAMBDARIC, *(pins[p] for p in RUNTIME_PACKAGES)]


def recipe_digest(arch: str) -> str:
    recipe = json.dumps([DEBIAN_SUITE, arch, _pins(), BOOTSTRAP, DOCKERFILE])
    return hashlib.sha256(recipe.encode()).hexdigest()[:16]


def rootfs_tarball(debian_arch: str) -> Path:
    """Debian 13 minbase with python3, as a tar (cached: debootstrap takes a minute or two)."""
    tarball = CACHE / f"debian-{DEBIAN_SUITE}-{debian_arch}-python3.tar"
    if tarball.exists():
        log(f"root filesystem: {tarball} (cached)")
        return tarball
    if shutil.which("debootstrap") is None:
        raise SystemExit("sam-local: debootstrap is missing (apt-get install debootstrap)")
    if os.geteuid() != 0:
        raise SystemExit("sam-local: debootstrap needs root to build the root filesystem")
    CACHE.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="rootfs-", dir=CACHE) as tmp:
        target = Path(tmp) / "rootfs"
        log(f"debootstrap {DEBIAN_SUITE} ({debian_arch}) from {DEBIAN_MIRROR}")
        subprocess.run(
            [
                "debootstrap",
                "--variant=minbase",
                "--include=python3",
                f"--arch={debian_arch}",
                DEBIAN_SUITE,
                str(target),
                DEBIAN_MIRROR,
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # Documentation, locales and apt's lists are no use in a function's sandbox.
        for junk in ("usr/share/doc", "usr/share/man", "usr/share/locale", "var/lib/apt/lists"):
            shutil.rmtree(target / junk, ignore_errors=True)
        partial = tarball.with_suffix(".tar.partial")
        subprocess.run(
            ["tar", "-C", str(target), "--numeric-owner", "-cf", str(partial), "."], check=True
        )
        os.replace(partial, tarball)
    log(f"root filesystem: {tarball} ({time.monotonic() - started:.0f} s)")
    return tarball


def ensure_image(client: Any, arch: str, debian_arch: str, *, rebuild: bool = False) -> str:
    """The base image SAM wants, built as the stand-in unless it is already there."""
    import docker

    name = base_image_name(arch)
    digest = recipe_digest(arch)
    try:
        labels = client.images.get(name).labels or {}
    except docker.errors.ImageNotFound:
        labels = None
    if labels is not None and STANDIN_LABEL not in labels:
        log(f"{name}: present and not a stand-in (the AWS image): used as it is")
        return name
    if labels is not None and labels.get(STANDIN_LABEL) == digest and not rebuild:
        log(f"{name}: the stand-in, up to date ({digest})")
        return name
    started = time.monotonic()
    tarball = rootfs_tarball(debian_arch)
    wheel_arch = {"x86_64": "x86_64", "arm64": "aarch64"}[arch]
    with tempfile.TemporaryDirectory(prefix="standin-", dir=CACHE) as tmp:
        context = Path(tmp)
        try:
            os.link(tarball, context / "rootfs.tar")
        except OSError:
            shutil.copy(tarball, context / "rootfs.tar")
        (context / "Dockerfile").write_text(DOCKERFILE)
        (context / "bootstrap").write_text(BOOTSTRAP)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-compile",
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                "3.13",
                "--platform",
                f"manylinux_2_28_{wheel_arch}",
                "--platform",
                f"manylinux2014_{wheel_arch}",
                "--target",
                str(context / "runtime"),
                *_pins(),
            ],
            check=True,
        )
        shutil.rmtree(context / "runtime" / "bin", ignore_errors=True)
        log(f"building {name} (stand-in {digest})")
        for chunk in client.api.build(
            path=str(context),
            tag=name,
            labels={STANDIN_LABEL: digest},
            rm=True,
            forcerm=True,
            pull=False,
            decode=True,
        ):
            if "error" in chunk:
                raise SystemExit(f"sam-local: building {name} failed: {chunk['error'].strip()}")
    log(f"{name}: built ({time.monotonic() - started:.0f} s)")
    return name


# ---------------------------------------------------------------- the template for this machine
def arch_template(arch: str, out_dir: Path = SCRATCH) -> Path:
    """template.yaml built for `arch` (paths absolute), written in `out_dir`."""
    text = (ROOT / "template.yaml").read_text()
    if arch != "arm64":
        replacements = [
            (r"^(\s+)Architectures: \[arm64\]$", rf"\1Architectures: [{arch}]"),
            (r"^(\s+)CompatibleArchitectures: \[arm64\]$", rf"\1CompatibleArchitectures: [{arch}]"),
            (r"^(\s+)BuildArchitecture: arm64$", rf"\1BuildArchitecture: {arch}"),
        ]
        for pattern, replacement in replacements:
            text, count = re.subn(pattern, replacement, text, flags=re.M)
            if not count:
                raise SystemExit(f"sam-local: template.yaml has no line matching {pattern}")
        if "arm64" in text:
            raise SystemExit("sam-local: template.yaml still names arm64 after the rewrite")
    # The copy lives elsewhere: code, layers and the Makefile by absolute path.
    text = re.sub(r"^(\s+(?:CodeUri|ContentUri): )(\S+)$", rf"\g<1>{ROOT}/\2", text, flags=re.M)
    text = re.sub(r"^(\s+ContextPath: )\.$", rf"\g<1>{ROOT}", text, flags=re.M)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"template-{arch}.yaml"
    path.write_text(text)
    return path


def sam_env() -> dict[str, str]:
    """sam's environment: dummy credentials, no profile or config, no telemetry."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "MAKE")) and name not in ("MFLAGS",)
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "SAM_CLI_TELEMETRY": "0",
        }
    )
    return env


def sam_build(arch: str) -> Path:
    """`sam build` of the template for `arch`; the built template."""
    template = arch_template(arch)
    build_dir = SCRATCH / f"build-{arch}"
    started = time.monotonic()
    proc = subprocess.run(
        [
            str(VENV_BIN / "sam"),
            "build",
            "--template-file",
            str(template),
            "--build-dir",
            str(build_dir),
            "--parallel",
        ],
        cwd=SCRATCH,
        env={**sam_env(), "LAMBDA_ARCH": arch},
        stdout=(SCRATCH / f"build-{arch}.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    if proc.returncode:
        print((SCRATCH / f"build-{arch}.log").read_text(errors="replace")[-5000:])
        raise SystemExit(f"sam-local: sam build failed (exit {proc.returncode})")
    log(f"sam build ({arch}): {build_dir} ({time.monotonic() - started:.0f} s)")
    return build_dir / "template.yaml"


# ---------------------------------------------------------------- reaching moto from a container
class Relay:
    """A TCP relay on the Docker bridge's gateway to the moto server on 127.0.0.1."""

    def __init__(self, host: str, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server((host, 0))
        self.host, self.port = host, self.listener.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="relay", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def _serve(self) -> None:
        self.listener.settimeout(0.5)
        while not self._stop.is_set():
            try:
                client, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._pipe, args=(client,), daemon=True).start()

    def _pipe(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=10)
        except OSError:
            client.close()
            return
        upstream.settimeout(None)
        with client, upstream, selectors.DefaultSelector() as sel:
            sel.register(client, selectors.EVENT_READ, upstream)
            sel.register(upstream, selectors.EVENT_READ, client)
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    try:
                        data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                        if not data:
                            return
                        key.data.sendall(data)
                    except OSError:
                        return

    def close(self) -> None:
        self._stop.set()
        self.listener.close()


def bridge_gateway(client: Any) -> str:
    """The host's address on Docker's default bridge (its gateway: the subnet's first address
    when the daemon does not say, as Docker 20.10 does not)."""
    import ipaddress

    for config in client.networks.get("bridge").attrs["IPAM"]["Config"] or []:
        if config.get("Gateway"):
            return config["Gateway"]
        if config.get("Subnet") and ":" not in config["Subnet"]:
            return str(next(ipaddress.ip_network(config["Subnet"]).hosts()))
    raise SystemExit("sam-local: Docker's bridge network has no IPv4 gateway or subnet")


@contextlib.contextmanager
def container_endpoint(client: Any, moto_url: str, override: str | None) -> Iterator[str]:
    """The moto endpoint as a container sees it (a relay on the bridge's gateway)."""
    if override:
        yield override
        return
    match = re.fullmatch(r"http://([\d.]+):(\d+)", moto_url)
    if not match:
        raise SystemExit(f"sam-local: unexpected moto endpoint {moto_url}")
    gateway = bridge_gateway(client)
    try:
        relay = Relay(gateway, (match[1], int(match[2])))
    except OSError as err:
        raise SystemExit(
            f"sam-local: cannot listen on Docker's bridge gateway {gateway} ({err}); on Docker "
            "Desktop pass --endpoint http://host.docker.internal:<moto port>"
        ) from err
    log(f"relay {relay.url} -> {moto_url} (the containers' AWS_ENDPOINT_URL)")
    try:
        yield relay.url
    finally:
        relay.close()


def env_vars(info: dict[str, Any], endpoint: str) -> dict[str, dict[str, str]]:
    """sam's --env-vars: each function's local stack variables, AWS at `endpoint`."""
    return {
        function: {**variables, "AWS_ENDPOINT_URL": endpoint}
        for function, variables in info["environments"].items()
    }


def write_env_vars(path: Path, info: dict[str, Any], endpoint: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(env_vars(info, endpoint), indent=2) + "\n")
    return path


def read_ready(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"sam-local: {path} does not exist: start `make local` first") from None


def _default_sigint() -> None:
    """In a child: Ctrl-C (SIGINT) stops it, even when this process was started with SIGINT
    ignored (a background job of a non-interactive shell); sam then removes its containers."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_api_command(template: Path, env_file: Path, port: int, extra: list[str]) -> list[str]:
    return [
        str(VENV_BIN / "sam"),
        "local",
        "start-api",
        "--template",
        str(template),
        "--env-vars",
        str(env_file),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        *extra,
    ]


# ---------------------------------------------------------------- commands
def cmd_env_vars(args: argparse.Namespace) -> int:
    """For Docker Desktop, whose containers reach the host's 127.0.0.1 as host.docker.internal;
    on Linux they cannot (the local stack listens on 127.0.0.1): use start-api, which relays."""
    info = read_ready(args.ready_file)
    port = info["aws_endpoint"].rsplit(":", 1)[1]
    endpoint = args.endpoint or f"http://host.docker.internal:{port}"
    path = write_env_vars(args.out, info, endpoint)
    print(f"{path} (AWS_ENDPOINT_URL={endpoint})")
    return 0


def cmd_image(args: argparse.Namespace) -> int:
    arch, debian_arch = host_arch()
    print(ensure_image(docker_client(), arch, debian_arch, rebuild=args.rebuild))
    return 0


CANNOT_RUN_DOCKER = 3  # probe's exit status: this machine cannot run containers at all


def cmd_probe(args: argparse.Namespace) -> int:
    """Exit 0 when a container runs here, 3 with the reason when it cannot (no daemon, no
    privileges): a container of one static binary (Debian's tini-static, from docker.io)."""
    import io
    import tarfile

    try:
        client = docker_client()
    except SystemExit as err:
        print(err, file=sys.stderr)
        return CANNOT_RUN_DOCKER
    binary = next(
        (Path(p) for p in ("/usr/bin/tini-static", "/usr/bin/docker-init") if Path(p).exists()),
        None,
    )
    if binary is None:
        log("probe: no tini-static here to run; the daemon answers, going on")
        return 0
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        tar.add(binary.resolve(), arcname="probe")
    name = "imgsvc-sam-local-probe:latest"
    try:
        client.api.import_image_from_data(data.getvalue(), repository=name.split(":")[0])
        out = client.containers.run(name, ["/probe", "--version"], remove=True)
    except Exception as err:  # docker-py raises many kinds
        print(f"sam-local: Docker answers but cannot run a container here: {err}", file=sys.stderr)
        return CANNOT_RUN_DOCKER
    log(f"probe: a container runs ({out.decode(errors='replace').strip()})")
    return 0


def cmd_start_api(args: argparse.Namespace) -> int:
    """sam local start-api against the running `make local`, until Ctrl-C."""
    info = read_ready(args.ready_file)
    client = docker_client()
    if args.arch == "template":
        template = ROOT / ".aws-sam" / "build" / "template.yaml"
        if not template.exists():
            raise SystemExit(f"sam-local: {template} does not exist: run `make build` first")
    else:
        template = sam_build(args.arch)
    with container_endpoint(client, info["aws_endpoint"], args.endpoint) as endpoint:
        env_file = write_env_vars(args.ready_file.parent / "sam-env-vars.json", info, endpoint)
        command = start_api_command(template, env_file, args.port, args.sam_args)
        log(f"--env-vars {env_file}; API key (for keyed routes) {info['api_key']}")
        log(" ".join(command))
        proc = subprocess.Popen(command, env=sam_env(), preexec_fn=_default_sigint)
        try:
            return proc.wait()
        except KeyboardInterrupt:  # sam got the Ctrl-C too (a second one would hang it)
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            try:
                return proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.terminate()
                return proc.wait()


def _request(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    import requests

    response = requests.request(method, url, json=body, headers=headers, timeout=120)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def _expect(what: str, condition: bool, detail: Any) -> None:
    if not condition:
        shown = detail if isinstance(detail, str) else json.dumps(detail)
        raise CheckFailed(f"{what}: {shown[:2000]}")
    log(f"ok: {what}")


class CheckFailed(Exception):
    pass


@contextlib.contextmanager
def local_stack(workdir: Path) -> Iterator[dict[str, Any]]:
    """A local stack of this check's own, on free ports."""
    ready = workdir / "ready.json"
    ready.unlink(missing_ok=True)
    log_file = (workdir / "local-stack.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "local_stack",
            "--port",
            "0",
            "--aws-port",
            "0",
            "--ready-file",
            str(ready),
        ],
        cwd=ROOT,
        stdout=log_file,
        stderr=subprocess.STDOUT,
        env={**os.environ, "LOCAL_STACK_WORKERS": "1"},
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 90
        while not ready.exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise CheckFailed(
                    f"the local stack did not start: {(workdir / 'local-stack.log').read_text()}"
                )
            time.sleep(0.2)
        info = json.loads(ready.read_text())
        log(f"local stack: API {info['api_url']}, moto {info['aws_endpoint']}")
        yield info
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log_file.close()


@contextlib.contextmanager
def sam_api(command: list[str], log_path: Path, port: int) -> Iterator[str]:
    """sam local start-api until the block ends; its base URL once it listens."""
    log_file = log_path.open("w")
    proc = subprocess.Popen(
        command,
        env=sam_env(),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_default_sigint,
    )
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise CheckFailed(f"sam local start-api exited {proc.returncode}")
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if time.monotonic() > deadline:
                raise CheckFailed("sam local start-api did not listen within 180 s")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)  # sam stops and removes its containers
            try:
                proc.wait(timeout=20)  # inside the wrapper's --kill-after
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log_file.close()


def _seed_history(info: dict[str, Any], url: str) -> None:
    """An analysis in the cache, written to moto as AnalyzeFunction would."""
    from local_stack.stack import isolate_from_aws

    env = info["environments"]["HistoryFunction"]
    isolate_from_aws(info["aws_endpoint"], info["region"])
    os.environ.update(
        {
            "POWERTOOLS_TRACE_DISABLED": "true",
            "TABLE_NAME": env["TABLE_NAME"],
            "INDEX_SHARDS": env["INDEX_SHARDS"],
        }
    )
    sys.path[:0] = [str(ROOT / "layers" / "core" / "python")]
    from imgsvc.cache import AnalysisCache

    AnalysisCache().put(url, {"format": "PNG", "width": 1, "height": 1})


def _session_item(info: dict[str, Any], upload_id: str) -> dict[str, Any] | None:
    from local_stack.stack import client

    table = info["environments"]["UploadsFunction"]["TABLE_NAME"]
    dynamodb = client("dynamodb", info["aws_endpoint"], info["region"])
    key = {"PK": {"S": f"UPLOAD#{upload_id}"}, "SK": {"S": "SESSION"}}
    return dynamodb.get_item(TableName=table, Key=key).get("Item")


def _terminated(signum: int, frame: Any) -> None:
    raise CheckFailed("terminated (SIGTERM: out of time?)")


def cmd_check(args: argparse.Namespace) -> int:
    started = time.monotonic()
    signal.signal(signal.SIGTERM, _terminated)  # stop sam and the local stack on the way out
    arch, debian_arch = host_arch()
    client = docker_client()
    ensure_image(client, arch, debian_arch)
    template = sam_build(arch)
    workdir = SCRATCH / "check"
    workdir.mkdir(parents=True, exist_ok=True)
    sys.path[:0] = [str(ROOT / "layers" / "core" / "python")]
    from imgsvc import __version__

    try:
        with (
            local_stack(workdir) as info,
            container_endpoint(client, info["aws_endpoint"], args.endpoint) as endpoint,
        ):
            env_file = write_env_vars(workdir / "env-vars.json", info, endpoint)
            port = free_port()
            command = start_api_command(
                template, env_file, port, ["--skip-pull-image", "--warm-containers", "LAZY"]
            )
            log(" ".join(command))
            seeded = "http://photos.example/sam-local-check.png"
            _seed_history(info, seeded)
            with sam_api(command, workdir / "sam.log", port) as api:
                log(f"sam local start-api listens on {api} ({time.monotonic() - started:.0f} s)")
                key = {"x-api-key": info["api_key"]}

                t = time.monotonic()
                status, body = _request("GET", f"{api}/status")
                _expect(
                    f"GET /status 200, version {__version__} ({time.monotonic() - t:.1f} s)",
                    status == 200
                    and isinstance(body, dict)
                    and body.get("status") == "ok"
                    and body.get("version") == __version__,
                    [status, body],
                )

                t = time.monotonic()
                status, body = _request("GET", f"{api}/history", headers=key)
                _expect(
                    f"GET /history 200, the analysis seeded in moto ({time.monotonic() - t:.1f} s)",
                    status == 200
                    and isinstance(body, dict)
                    and body.get("cached_items") == [seeded]
                    and body.get("count") == 1,
                    [status, body],
                )

                t = time.monotonic()
                request = {"files": [{"filename": "cat.jpg", "content_type": "image/jpeg"}]}
                status, body = _request("POST", f"{api}/uploads", request, headers=key)
                upload_id = body.get("upload_id") if isinstance(body, dict) else None
                files = body.get("files") if isinstance(body, dict) else None
                posts = [f.get("url", "") for f in files or [] if isinstance(f, dict)]
                _expect(
                    f"POST /uploads 201, presigned for {endpoint} ({time.monotonic() - t:.1f} s)",
                    status == 201
                    and bool(upload_id)
                    and len(posts) == 1
                    and posts[0].startswith(endpoint),
                    [status, body],
                )
                item = _session_item(info, upload_id)
                _expect(
                    f"the session UPLOAD#{upload_id} is in moto's table",
                    item is not None,
                    "no such item",
                )

                # The presigned POST through the relay, as a browser would: the local stack's
                # IngestFunction ingests it; GET /uploads/{id} (sam again) then says done.
                t = time.monotonic()
                import requests

                photo = ROOT / "tests" / "data" / "photos" / CHECK_PHOTO
                posted = requests.post(
                    posts[0],
                    data=files[0]["fields"],
                    files={"file": ("cat.jpg", photo.read_bytes(), "image/jpeg")},
                    timeout=60,
                )
                _expect("the presigned POST to moto: 204", posted.status_code == 204, posted.text)
                deadline = time.monotonic() + 60
                while True:
                    status, body = _request("GET", f"{api}/uploads/{upload_id}", headers=key)
                    state = body.get("files", {}).get("cat.jpg", {}) if status == 200 else {}
                    if state.get("status") != "pending" or time.monotonic() > deadline:
                        break
                    time.sleep(1)
                _expect(
                    f"GET /uploads/{{id}} 200, cat.jpg ingested ({time.monotonic() - t:.1f} s)",
                    state.get("status") == "done" and bool(state.get("image_id")),
                    [status, body],
                )
    except CheckFailed as err:
        log(f"FAILED: {err}")
        for name in ("sam.log", "local-stack.log"):
            path = workdir / name
            if path.exists():
                print(f"---- {path} (last 80 lines)", flush=True)
                print("\n".join(path.read_text(errors="replace").splitlines()[-80:]), flush=True)
        return 1
    log(f"passed in {time.monotonic() - started:.0f} s")
    return 0


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.sam_local",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("env-vars", help="write sam's --env-vars file from the ready file")
    p.add_argument("--ready-file", type=Path, default=DEFAULT_READY_FILE)
    p.add_argument("--out", type=Path, default=DEFAULT_READY_FILE.parent / "sam-env-vars.json")
    p.add_argument("--endpoint", help="AWS_ENDPOINT_URL as the containers reach moto")
    p.set_defaults(run=cmd_env_vars)

    p = sub.add_parser("image", help="build the stand-in Lambda python3.13 image")
    p.add_argument("--rebuild", action="store_true", help="even if the stand-in is current")
    p.set_defaults(run=cmd_image)

    p = sub.add_parser("start-api", help="sam local start-api against a running make local")
    p.add_argument("--ready-file", type=Path, default=DEFAULT_READY_FILE)
    p.add_argument("--port", type=int, default=3100)
    p.add_argument(
        "--arch",
        choices=["template", "x86_64", "arm64"],
        default="template",
        help="template: .aws-sam/build as `make build` made it (arm64); x86_64 or arm64: a copy "
        "of the template built for that architecture",
    )
    p.add_argument("--endpoint", help="AWS_ENDPOINT_URL as the containers reach moto (no relay)")
    p.add_argument("sam_args", nargs="*", help="more sam local start-api options, after --")
    p.set_defaults(run=cmd_start_api)

    p = sub.add_parser("probe", help=f"exit {CANNOT_RUN_DOCKER} if no container can run here")
    p.set_defaults(run=cmd_probe)

    p = sub.add_parser("check", help="CI: sam local start-api serves this app from moto")
    p.add_argument("--endpoint", help="AWS_ENDPOINT_URL as the containers reach moto (no relay)")
    p.set_defaults(run=cmd_check)
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
