"""Benchmarking: aec against classical codecs, rate-distortion and speed.

    harness.py       runs codecs over a folder of images (resumable), the ``aec bench`` engine
    classical.py     JPEG, WebP, AVIF, JPEG XL, JPEG 2000 (Pillow); the lossless table
                     (PNG, WebP and JPEG XL lossless, JPEG-LS) and JPEG XL by distance
                     (imagecodecs)
    report.py        curves, BD-rates, the lossless table, results.json/.csv, summary.md, plots
    stage_timing.py  per-stage timings of the neural codec
"""
