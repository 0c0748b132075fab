"""`python -m handoff`: run the gateway under uvicorn.

uvicorn must use ws="wsproto": rasa pins websockets 10.x, which uvicorn 0.54's default
websocket implementation cannot use.
"""

from __future__ import annotations

import logging
import sys

import uvicorn

from handoff.app import STATIC_DIR, build_gateway
from handoff.errors import ConfigError
from handoff.masking import MaskingFilter
from handoff.settings import Settings


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    # Every log line (ours and uvicorn's, which propagate here) has personal numbers masked.
    for handler in logging.getLogger().handlers:
        handler.addFilter(MaskingFilter())
    try:
        settings = Settings.from_env()
        gateway = build_gateway(settings)
    except ConfigError as err:
        print(f"配置错误 / config error: {err}", file=sys.stderr)
        return 2
    base = f"http://{settings.host}:{settings.port}"
    lines = [
        f"loanbot gateway on {base}",
        f"  borrower chat page : {base}/",
        f"  socket.io          : {base}/socket.io/ (namespaces / and /agent)",
        f"  agent login        : POST {base}/api/login",
        f"  health             : {base}/healthz",
        f"  Rasa               : {settings.rasa_url}",
    ]
    if (STATIC_DIR / "agent.html").is_file():
        lines.insert(2, f"  agent console      : {base}/agent.html")
    # Flushed: under a process manager stdout is a pipe and would hold the URLs back.
    print("\n".join(lines), flush=True)
    uvicorn.run(
        gateway.app,
        host=settings.host,
        port=settings.port,
        ws="wsproto",
        lifespan="on",
        log_config=None,  # keep the masked root handler above
        log_level="info",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
