"""`nasbox health`: the image's HEALTHCHECK."""
from __future__ import annotations

from nasbox.health import smb_answers


def health(port: int) -> int:
    ok, detail = smb_answers(port=port)
    print(f"smbd: {'ok' if ok else 'FAILING'} ({detail})")
    return 0 if ok else 1
