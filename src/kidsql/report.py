"""`kidsql.evaluate` writes its report files through this name; the one atomic write is `kidsql.files.write_atomic`."""

from kidsql.files import write_atomic as write_text_atomic

__all__ = ["write_text_atomic"]
