"""Which IB API client runs the worker: ib_async, or its predecessor ib_insync.

Both speak the same TWS protocol with the same API; ib_async is the maintained one, and a
deployment that still has ib_insync installed keeps working. The worker touches only what the
two share: `IB`, `Contract`, `RequestError` and the `errorEvent` / `disconnectedEvent` hooks.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from importlib.metadata import version
from types import ModuleType
from typing import Any, Literal

LibraryName = Literal["auto", "ib_async", "ib_insync"]
_PREFERENCE = ("ib_async", "ib_insync")


@dataclass(frozen=True, slots=True)
class IbLibrary:
    name: str
    version: str
    module: ModuleType

    def new_ib(self) -> Any:
        ib = self.module.IB()
        # Failures become RequestError with IB's code and text, never an empty answer.
        ib.RaiseRequestErrors = True
        return ib

    def contract(self, **fields: Any) -> Any:
        return self.module.Contract(**fields)

    @property
    def request_error(self) -> type[Exception]:
        error: type[Exception] = self.module.RequestError
        return error

    def connect_options(self) -> dict[str, Any]:
        """ib_async can skip the start-up sync of orders and account data a collector never
        reads; ib_insync always does it."""
        if self.name == "ib_async":
            return {"fetchFields": self.module.StartupFetchNONE}
        return {}


def load_library(name: LibraryName = "auto") -> IbLibrary:
    candidates = _PREFERENCE if name == "auto" else (name,)
    for candidate in candidates:
        try:
            module = importlib.import_module(candidate)
        except ImportError:
            continue
        return IbLibrary(candidate, version(candidate.replace("_", "-")), module)
    raise RuntimeError(
        f"no IB API client installed: install ib_async (or ib_insync); looked for {candidates}"
    )
