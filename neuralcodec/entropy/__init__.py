"""Entropy coding of integer symbols: fixed integer tables, constriction's range coder and
the escape stream. Nothing here knows about models (tables come in as integer CDFs)."""

from .cdf_tables import CDF_PRECISION, TableSet, quantized_cdf
from .escapes import pack_varints, unpack_varints
from .range_coder import SymbolDecoder, SymbolEncoder

__all__ = ["CDF_PRECISION", "SymbolDecoder", "SymbolEncoder", "TableSet", "pack_varints",
           "quantized_cdf", "unpack_varints"]
