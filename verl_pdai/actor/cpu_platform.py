"""A CPU platform for verl's platform registry, so that verl's own actor engine (FSDP2) runs on a machine without
an accelerator.

verl resolves its platform once (``verl.plugin.platform.get_platform``) and falls back to "nvidia" when it finds no
accelerator; everything it asks the platform for (device name, the torch device module, the collective backend)
then points at CUDA. ``use_cpu_platform()`` registers ``PlatformCPU`` by name ("cpu") and makes it the current one.
Its ``device_module`` is ``torch.cpu`` plus the few memory queries verl's workers log (answered with 0: the
numbers are about accelerator memory, which a CPU run has none of).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from types import ModuleType, SimpleNamespace
from typing import Any

import torch
from verl.plugin.platform import PlatformBase, get_platform, set_platform
from verl.plugin.platform.platform_manager import PlatformRegistry

# verl's FSDP engine is registered for cuda/npu only; the engine registry reads this to pick it on CPU
ENGINE_DEVICE = "cuda"


def _zero(*args: Any, **kwargs: Any) -> int:
    return 0


def _nothing(*args: Any, **kwargs: Any) -> None:
    return None


def _cpu_device_module() -> ModuleType:
    module = ModuleType("verl_pdai_cpu_device")
    for name in dir(torch.cpu):
        if not name.startswith("__"):
            setattr(module, name, getattr(torch.cpu, name))
    for name in ("max_memory_allocated", "max_memory_reserved", "memory_allocated", "memory_reserved"):
        setattr(module, name, _zero)
    for name in ("empty_cache", "reset_peak_memory_stats", "ipc_collect", "set_device", "manual_seed_all"):
        setattr(module, name, _nothing)
    module.manual_seed = torch.manual_seed
    module.mem_get_info = lambda *a, **k: (0, 0)
    module.is_available = lambda: True
    module.device_count = lambda: 1
    module.current_device = lambda: "cpu"
    module.get_rng_state = torch.get_rng_state
    module.set_rng_state = torch.set_rng_state
    module.memory_stats = lambda *a, **k: {}
    module.get_device_name = lambda *a, **k: "CPU"  # verl's flops counter: no known peak, so mfu reports 0
    module.nvtx = SimpleNamespace(
        range_push=_nothing, range_pop=_nothing, range=lambda *a, **k: contextlib.nullcontext()
    )
    return module


@PlatformRegistry.register(platform="cpu")
class PlatformCPU(PlatformBase):
    _module = _cpu_device_module()

    @property
    def device_name(self) -> str:
        return "cpu"

    @property
    def vendor_name(self) -> str:
        return "cpu"

    @property
    def device_module(self) -> ModuleType:
        return self._module

    def is_available(self) -> bool:
        return True

    def is_platform_available(self, use_smi_check: bool = False) -> bool:
        return False  # never auto-detected: a machine with an accelerator keeps its own platform

    def current_device(self) -> Any:
        # verl moves tensors with ``.to(get_device_id())``: the device itself, since there is no index on a CPU
        return "cpu"

    def device_count(self) -> int:
        return 1

    def set_device(self, device_index: int) -> None:
        return None

    def synchronize(self, device_index: int | None = None) -> None:
        return None

    def manual_seed(self, seed: int) -> None:
        torch.manual_seed(seed)

    def manual_seed_all(self, seed: int) -> None:
        torch.manual_seed(seed)

    def set_allocator_settings(self, settings: str) -> None:
        return None

    def empty_cache(self) -> None:
        return None

    def get_device_capability(self, device_index: int = 0) -> tuple[int | None, int | None]:
        return None, None

    def communication_backend_name(self) -> str:
        return "gloo"

    def visible_devices_envvar(self) -> str:
        return "CUDA_VISIBLE_DEVICES"

    @contextlib.contextmanager
    def nvtx_range(self, msg: str) -> Iterator[None]:
        yield

    def profiler_start(self) -> None:
        return None

    def profiler_stop(self) -> None:
        return None

    def ray_resource_name(self) -> str:
        return "CPU"

    def ray_noset_envvars(self) -> list[str]:
        return []

    def is_ipc_supported(self) -> bool:
        return False

    def cudart(self) -> Any:
        return None


def use_cpu_platform() -> PlatformCPU:
    """Make the CPU platform verl's current one (idempotent) and point the engine registry at verl's FSDP engine."""
    current = get_platform() if _platform_resolved() else None
    if not isinstance(current, PlatformCPU):
        current = PlatformCPU()
        set_platform(current)
    os.environ.setdefault("VERL_ENGINE_DEVICE", ENGINE_DEVICE)
    return current


def _platform_resolved() -> bool:
    from verl.plugin.platform import platform_manager

    return platform_manager._current_platform is not None
