"""`mlpc view`: serve a model to Netron (the optional extra `mlpc[view]`) until Ctrl-C."""

from __future__ import annotations

import logging
import sys
from typing import Any

from mlpc.errors import MlpcError
from mlpc.runtime.onnx_engine import load_model_file

INSTALL_HINT = "mlpc view needs Netron: pip install 'mlpc[view]'"


def _netron() -> Any:
    try:
        import netron
    except ImportError:
        raise MlpcError(INSTALL_HINT) from None
    return netron


def view(model_path: str, port: int | None = None, browse: bool = True,
         host: str = "localhost") -> int:
    """Serve `model_path` with Netron, open a browser unless `browse` is false, and wait
    until interrupted. Returns the exit status (0)."""
    load_model_file(model_path)  # a one-line error for a missing or unreadable file, first
    netron = _netron()
    logging.getLogger("netron").setLevel(logging.WARNING)  # the line below says it once
    try:
        address = netron.start(model_path, address=(host, port) if port else None,
                               browse=browse)
    except OSError as exc:
        where = f"port {port}" if port else "a free port"
        raise MlpcError(f"Netron cannot listen on {where}: {exc.strerror or exc}") from None
    print(f"mlpc: Netron serves {model_path} at http://{address[0]}:{address[1]} "
          "(Ctrl-C to stop)", file=sys.stderr, flush=True)
    try:
        netron.wait()
    except KeyboardInterrupt:
        pass
    finally:
        netron.stop()
    return 0
