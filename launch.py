"""Start the Inspector app: ``python launch.py --help``."""

from __future__ import annotations

import argparse
import os
import secrets
import sys
from collections.abc import Sequence

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")

from inspector_agent.errors import InspectorError
from inspector_agent.settings import load_settings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The launcher's options (each overrides the settings file and environment)."""
    parser = argparse.ArgumentParser(description="Serve the Inspector chat app (Gradio).")
    parser.add_argument("--host", help="interface to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default 7860)")
    parser.add_argument("--data-dir", help="data directory (store, records, uploads)")
    parser.add_argument(
        "--grounder", choices=["expert", "vlm", "local", "fusion"], help="default expert"
    )
    parser.add_argument("--model-url", help="OpenAI-compatible server of the multimodal model")
    parser.add_argument("--model-path", help="checkpoint for the local grounder or --serve-model")
    parser.add_argument("--chat-model-url", help="optional chat model that phrases answers")
    parser.add_argument(
        "--serve-model",
        action="store_true",
        help="start vLLM on --model-path and use the vlm grounder",
    )
    parser.add_argument("--auth-file", help="JSON/TOML users with roles supervisor/engineer")
    parser.add_argument("--config", help="TOML settings file")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options, prepare the backends and serve until interrupted."""
    args = parse_args(argv)
    try:
        settings = load_settings(
            args.config,
            host=args.host,
            port=args.port,
            data_dir=args.data_dir,
            grounder=args.grounder,
            model_url=args.model_url,
            model_path=args.model_path,
            chat_model_url=args.chat_model_url,
            auth_file=args.auth_file,
        )
        from inspector_agent.ui.auth import load_users

        users = load_users(settings.auth_file)  # a bad auth file fails before the slow imports
        from inspector_agent.ui.app import launch

        if not args.serve_model:
            launch(settings, users)
            return 0
        if not settings.model_path:
            raise InspectorError("--serve-model needs --model-path (a checkpoint folder)")
        from inspector_agent.serving import start_vllm_server

        # The child server is only for this app: without a configured key, a random one.
        key = settings.model_api_key or secrets.token_urlsafe(24)
        with start_vllm_server(settings.model_path, api_key=key) as server:
            served = settings.with_overrides(
                model_url=server.url + "/v1", model_api_key=key, grounder="vlm"
            )
            launch(served, users)
    except InspectorError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
