"""kidsql: knowledge distillation for text-to-SQL LMs (KID and its baselines) with a sandboxed SQL evaluator.

`from kidsql import Text2SQL` is resolved lazily, so `import kidsql` stays free of torch.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Text2SQL", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "Text2SQL":
        from kidsql.text2sql import Text2SQL

        return Text2SQL
    raise AttributeError(f"module 'kidsql' has no attribute {name!r}")
