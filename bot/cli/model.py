"""``deskbot serve-model DIR``: a local model as an OpenAI-compatible endpoint.

    deskbot serve-model DIR [--adapter DIR] [--host H] [--port P] [--max-new-tokens N]

Workers elsewhere then set ``OPENAI_BASE_URL=http://H:P/v1`` (and any ``OPENAI_API_KEY``;
the server asks for none). The server is :mod:`finetune.serve`; a missing or unusable
directory is one line on stderr and exit 2.
"""

from __future__ import annotations

from pathlib import Path

import click

from bot.cli.common import pass_settings, run
from bot.errors import ConfigError
from bot.settings import Settings

__all__ = ["serve_model"]


@click.command("serve-model")
@click.argument("model_dir", type=click.Path(path_type=Path))
@click.option("--adapter", type=click.Path(path_type=Path), help="A LoRA adapter to merge in.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=int, default=8000, show_default=True, help="0 picks a free port.")
@click.option("--max-new-tokens", type=int, help="Tokens per turn at most.")
@pass_settings
def serve_model(
    settings: Settings,
    model_dir: Path,
    adapter: Path | None,
    host: str,
    port: int,
    max_new_tokens: int | None,
) -> None:
    """Serve a local model at /v1/chat/completions and /v1/models until Ctrl-C."""
    from finetune.local import LocalBackend, LocalModelError
    from finetune.serve import serve

    try:
        backend = LocalBackend(
            model_dir,
            adapter=adapter,
            max_new_tokens=max_new_tokens or settings.local_max_new_tokens,
        )
    except LocalModelError as exc:
        raise ConfigError(str(exc)) from None

    def ready(url: str) -> None:
        click.echo(f"serving {backend.model} at {url} (OPENAI_BASE_URL={url})")

    run(serve(backend, host=host, port=port, on_ready=ready))
