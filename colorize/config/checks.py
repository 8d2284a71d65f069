"""Range checks for the schemas: each names its key from its group and field, in one format."""

from __future__ import annotations

from typing import ClassVar

from colorize.errors import invalid


class Checked:
    """A schema of the config group `GROUP` (``model``, ``trainer.early_stopping``, ...): `require`
    refuses a field's value with ``colorize: error: <group>.<field>=<value> is invalid: <allowed>``."""

    GROUP: ClassVar[str] = ""

    def require(self, ok: bool, name: str, allowed: str) -> None:
        if not ok:
            raise invalid(f"{self.GROUP}.{name}", getattr(self, name), allowed)
