"""`hfqd-export-ct2 SRC OUT`: export a translation model (packed hfqd student, transformers folder or Hub id) to
CTranslate2."""

from __future__ import annotations

import argparse

from ..utils import ensure_available
from .ct2 import QUANTIZATIONS, export_ctranslate2


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="hfqd-export-ct2", description=__doc__)
    parser.add_argument("source", help="packed hfqd folder, transformers seq2seq folder, or Hub id")
    parser.add_argument("output_dir", help="CTranslate2 folder to write (model, vocabulary, tokenizer files)")
    parser.add_argument("--quantization", default="int8", choices=QUANTIZATIONS, help="weight type (default int8)")
    parser.add_argument("--force", action="store_true", help="replace an existing output folder")
    parser.add_argument("--vocab_map", help="vocabulary map to include (translate with use_vmap=True)")
    opts = parser.parse_args(argv)
    ensure_available(opts.source, "model to export", "Give a folder written by save_pretrained or hfqd.save_packed.")
    try:
        out = export_ctranslate2(opts.source, opts.output_dir, opts.quantization, force=opts.force,
                                 vocab_map=opts.vocab_map)
    except (ImportError, ValueError, FileExistsError, OSError) as err:
        raise SystemExit(f"hfqd-export-ct2: {err}") from None
    print(f"Wrote {out} ({opts.quantization}). Translate with ctranslate2.Translator({out!r}).")


if __name__ == "__main__":
    main()
