"""``gradflow info``: what this machine offers gradflow, as a readable report or as JSON.

``describe()`` gathers gradflow, Python, the platform, NumPy (its BLAS and
thread count), SciPy, CuPy, the CUDA runtime and driver, each GPU, whether the
custom kernels compile here (NVRTC), and which device ``'auto'`` picks and
why. Nothing here raises on a machine without CUDA, CuPy or cuda-python:
each missing piece becomes a value saying why.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import platform
import sys

import numpy as np

from . import cuda
from .backends import kernels, nvrtc_check
from .device import device as to_device
from .version import __version__

NOT_INSTALLED = "not installed"


def describe() -> dict:
    """Everything ``gradflow info`` reports, as JSON-ready nested dicts of str/int/bool/None.

    >>> info = describe()
    >>> sorted(info)  # doctest: +NORMALIZE_WHITESPACE
    ['auto_device', 'cuda', 'cupy', 'gradflow', 'kernels', 'numpy', 'platform', 'python', 'scipy']
    """
    cuda_info = _cuda()
    return {
        "gradflow": {"version": __version__, "location": os.path.dirname(os.path.abspath(__file__))},
        "python": {
            "version": platform.python_version(),
            "implementation": platform.python_implementation(),
            "executable": sys.executable,
        },
        "platform": {
            "system": platform.system(),
            "release": platform.release(),
            "machine": platform.machine(),
            "processor": platform.processor() or None,
            "cpu_count": os.cpu_count(),
        },
        "numpy": _numpy(),
        "scipy": _version_of("scipy"),
        "cupy": _cupy(),
        "cuda": cuda_info,
        "kernels": _kernels(cuda_info),
        "auto_device": _auto_device(),
    }


def _version_of(module_name: str) -> dict:
    try:
        module = __import__(module_name)
    except ImportError as error:
        return {"version": None, "status": f"{NOT_INSTALLED} ({error})"}
    return {"version": getattr(module, "__version__", None), "status": "installed"}


def _numpy() -> dict:
    blas = {"name": None, "version": None, "threads": None, "threading_layer": None, "source": None}
    try:  # how NumPy was built (NumPy >= 1.25 returns a dict)
        build = (np.show_config(mode="dicts") or {}).get("Build Dependencies", {}).get("blas", {})
        blas.update(name=build.get("name"), version=build.get("version"), source="numpy.show_config")
    except Exception:  # older NumPy prints instead of returning; threadpoolctl below may still answer
        pass
    try:  # what is loaded and how many threads it runs (threadpoolctl is optional)
        from threadpoolctl import threadpool_info

        pools = [pool for pool in threadpool_info() if pool.get("user_api") == "blas"]
        numpy_dir = os.path.dirname(os.path.dirname(np.__file__))
        own = [
            pool for pool in pools if "numpy" in os.path.relpath(pool.get("filepath", ""), numpy_dir).split(os.sep)[0]
        ]
        pool = (own or pools or [None])[0]
        if pool is not None:
            blas.update(
                name=blas["name"] or pool.get("internal_api"),
                version=blas["version"] or pool.get("version"),
                threads=pool.get("num_threads"),
                threading_layer=pool.get("threading_layer"),
                source="threadpoolctl",
            )
    except ImportError:
        blas["threads_note"] = "threadpoolctl not installed (pip install threadpoolctl to read the BLAS thread count)"
    except Exception as error:  # threadpoolctl inspects loaded libraries; never let that break `info`
        blas["threads_note"] = f"threadpoolctl failed ({type(error).__name__}: {error})"
    return {"version": np.__version__, "blas": blas}


def _cupy() -> dict:
    try:
        import cupy
    except ImportError as error:
        return {"version": None, "status": f"{NOT_INSTALLED} ({error})"}
    except Exception as error:  # a broken install raises all sorts of errors on import
        return {"version": None, "status": f"failed to import ({type(error).__name__}: {error})"}
    return {"version": cupy.__version__, "status": "installed"}


def _cuda_version(number: int) -> str:
    """CUDA's integer version (12040) as text ("12.4"); 0 is what the runtime answers when no driver is loaded."""
    if number == 0:
        return "none (no NVIDIA driver loaded)"
    return f"{number // 1000}.{(number % 1000) // 10}"


def _cuda() -> dict:
    reason = cuda.unavailable_reason()
    result = {
        "available": reason is None,
        "reason": reason,
        "runtime_version": None,
        "driver_version": None,
        "devices": [],
    }
    try:
        import cupy
    except Exception:  # reason already says why (CuPy missing or broken)
        return result
    for key, read in (("runtime_version", "runtimeGetVersion"), ("driver_version", "driverGetVersion")):
        try:
            result[key] = _cuda_version(getattr(cupy.cuda.runtime, read)())
        except Exception as error:  # no driver: the runtime answers, the driver does not (or neither)
            result[key] = f"unknown ({type(error).__name__}: {error})"
    for index in range(cuda.device_count()):
        try:
            props = cupy.cuda.runtime.getDeviceProperties(index)
            name = props["name"]
            result["devices"].append(
                {
                    "index": index,
                    "name": name.decode() if isinstance(name, bytes) else str(name),
                    "total_memory_bytes": int(props["totalGlobalMem"]),
                    "multiprocessor_count": int(props["multiProcessorCount"]),
                    "compute_capability": f"{props['major']}.{props['minor']}",
                }
            )
        except Exception as error:
            result["devices"].append({"index": index, "error": f"{type(error).__name__}: {error}"})
    return result


def _kernels(cuda_info: dict) -> dict:
    """Whether each kernel family compiles with NVRTC for this GPU's architecture (compute_90 without a GPU)."""
    architecture = "compute_90"
    capabilities = [device["compute_capability"] for device in cuda_info["devices"] if "compute_capability" in device]
    if capabilities:
        architecture = "compute_" + capabilities[0].replace(".", "")
    reason = nvrtc_check.nvrtc_unavailable_reason()
    if reason is not None:
        families = dict.fromkeys(kernels.FAMILIES, reason)
    else:
        families = nvrtc_check.check_all(architecture)
    return {
        "architecture": architecture,
        "architecture_source": "first GPU" if capabilities else "no GPU: default compute_90",
        "nvrtc": "available" if reason is None else reason,
        "families": families,
        "all_ok": all(status == "ok" for status in families.values()),
    }


def _auto_device() -> dict:
    # Resolve through the real rule; its one-time fallback notice would only repeat our reason.
    with contextlib.redirect_stderr(io.StringIO()):
        chosen = to_device("auto")
    return {"device": str(chosen), "reason": None if chosen.type == "cuda" else cuda.unavailable_reason()}


# -- the command ----------------------------------------------------------------------------------
def add_parser(subparsers) -> None:
    """Register ``gradflow info`` on the ``gradflow`` command's subparsers."""
    parser = subparsers.add_parser(
        "info",
        help="print what this machine offers gradflow (Python, NumPy/BLAS, CuPy, CUDA, GPUs, kernels)",
        description="Print gradflow's, Python's and NumPy's versions (with NumPy's BLAS and thread count), "
        "CuPy's and CUDA's versions, each GPU (name, memory, multiprocessors, compute capability), "
        "whether the custom CUDA kernels compile here, and which device 'auto' resolves to and why.",
    )
    parser.add_argument("--json", action="store_true", help="print machine-readable JSON on stdout instead")


def run(args) -> int:
    """Print the report (``args.json``: as JSON); returns the exit status (0)."""
    info = describe()
    if getattr(args, "json", False):
        print(json.dumps(info, indent=2, sort_keys=True))
        return 0
    from rich.console import Console

    Console().print(render(info))
    return 0


def _memory(size: int) -> str:
    return f"{size / 2**30:.1f} GiB"


def render(info: dict):
    """A rich Table of ``describe()``'s answer, one section per piece of the machine.

    Every text is escaped: the reasons quote install commands such as ``pip install 'gradflow[cuda12]'``,
    which rich would otherwise read as markup and print as ``'gradflow'``.
    """
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="gradflow info", show_header=False, title_justify="left")
    table.add_column("item", style="bold")
    table.add_column("value", overflow="fold")

    def section(name: str) -> None:
        table.add_section()
        table.add_row(f"[underline]{escape(name)}[/underline]", "")

    def add_row(item: str, value: str) -> None:
        table.add_row(escape(item), escape(value))

    section("software")
    add_row("gradflow", f"{info['gradflow']['version']} ({info['gradflow']['location']})")
    python = info["python"]
    add_row("Python", f"{python['version']} ({python['implementation']}, {python['executable']})")
    plat = info["platform"]
    add_row("platform", f"{plat['system']} {plat['release']} {plat['machine']}, {plat['cpu_count']} CPUs")
    numpy_info = info["numpy"]
    blas = numpy_info["blas"]
    threads = blas["threads"] if blas["threads"] is not None else blas.get("threads_note", "unknown")
    add_row("NumPy", numpy_info["version"])
    add_row("  BLAS", f"{blas['name'] or 'unknown'} {blas['version'] or ''}".strip())
    add_row("  BLAS threads", str(threads))
    add_row("SciPy", info["scipy"]["version"] or info["scipy"]["status"])
    add_row("CuPy", info["cupy"]["version"] or info["cupy"]["status"])

    section("CUDA")
    cuda_info = info["cuda"]
    add_row("usable", "yes" if cuda_info["available"] else f"no: {cuda_info['reason']}")
    add_row("runtime", str(cuda_info["runtime_version"] or "-"))
    add_row("driver", str(cuda_info["driver_version"] or "-"))
    for device in cuda_info["devices"]:
        if "error" in device:
            add_row(f"cuda:{device['index']}", f"unreadable: {device['error']}")
            continue
        add_row(
            f"cuda:{device['index']}",
            f"{device['name']}, {_memory(device['total_memory_bytes'])}, {device['multiprocessor_count']} SMs, "
            f"compute capability {device['compute_capability']}",
        )
    if not cuda_info["devices"]:
        add_row("GPUs", "none")

    section("custom kernels")
    kernels_info = info["kernels"]
    add_row("NVRTC", kernels_info["nvrtc"])
    add_row("architecture", f"{kernels_info['architecture']} ({kernels_info['architecture_source']})")
    if kernels_info["nvrtc"] == "available":
        for family, status in kernels_info["families"].items():
            add_row(f"  {family}", status)

    section("device 'auto'")
    auto = info["auto_device"]
    add_row("resolves to", auto["device"] if auto["reason"] is None else f"{auto['device']} ({auto['reason']})")
    return table
