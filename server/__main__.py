"""`python -m server`: read settings and flags, then serve over stdio."""

from __future__ import annotations

import logging
import os
import sys

from server.app import create_server
from server.settings import Settings


def main(argv: list[str] | None = None) -> None:
    settings = Settings(_cli_parse_args=sys.argv[1:] if argv is None else argv)
    # pymilvus reads MILVUS_URI itself when first imported and rejects Milvus Lite paths; the
    # value is ours and has been read, so hide it from pymilvus.
    os.environ.pop("MILVUS_URI", None)
    logging.basicConfig(
        stream=sys.stderr, level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pymilvus").setLevel(logging.ERROR)
    create_server(settings).run("stdio")


if __name__ == "__main__":
    main()
