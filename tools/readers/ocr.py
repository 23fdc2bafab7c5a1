"""OCR with Tesseract (Apache-2.0), through its command line: a scanned PDF page (rendered by PDFium) or an image
in, its text out. The `tesseract` program is used when it is installed and `OCR=auto`; nothing is downloaded.

The settings are process-wide (`configure`, called once by the settings that build the services), as a reader
takes only a file's bytes. Tesseract runs one thread per page (OMP_THREAD_LIMIT=1): its OpenMP threads slow it
down on few cores, and pages are read in parallel by the ingest's threads anyway.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from dataclasses import dataclass

from tools import defaults
from tools.readers.base import Unreadable

PAGE_TIMEOUT_S = 120  # one page at 300 dpi takes 1-3 s here
INSTALL = "install Tesseract (Debian/Ubuntu: apt-get install tesseract-ocr; macOS: brew install tesseract) to read it"


@dataclass
class OcrSettings:
    mode: str = defaults.OCR  # "auto": use Tesseract when installed; "off": never
    languages: str = defaults.OCR_LANGUAGES  # Tesseract's language codes joined by "+": eng+kor+chi_sim


SETTINGS = OcrSettings()


def configure(mode: str, languages: str) -> None:
    SETTINGS.mode, SETTINGS.languages = mode, languages


def unavailable(what: str) -> str | None:
    """Why `what` (a scanned PDF, an image) cannot be read by OCR here, as a skip reason; None when it can."""
    if SETTINGS.mode == "off":
        return f"{what}: OCR is off (OCR=off; set OCR=auto to read it with Tesseract)"
    if shutil.which("tesseract") is None:
        return f"{what}: OCR needs Tesseract, which is not installed: {INSTALL}"
    return None


@functools.cache
def _installed_languages() -> frozenset[str]:
    done = subprocess.run(["tesseract", "--list-langs"], capture_output=True, timeout=30, check=False)
    return frozenset(line.strip() for line in done.stdout.decode("utf-8", "replace").splitlines()[1:] if line.strip())


def recognise(image: bytes) -> list[str]:
    """The text of each page of an image file (PNG, JPEG, TIFF with one or more pages)."""
    missing = [lang for lang in SETTINGS.languages.split("+") if lang not in _installed_languages()]
    if missing:  # Tesseract would warn and carry on with the others
        raise Unreadable(
            f"OCR: Tesseract has no data for {'+'.join(missing)!r} of OCR_LANGUAGES={SETTINGS.languages!r}: install it "
            "(Debian: apt-get install tesseract-ocr-kor, tesseract-ocr-chi-sim, ...) or leave it out"
        )
    command = ["tesseract", "stdin", "stdout", "-l", SETTINGS.languages, "--psm", "3"]
    try:
        done = subprocess.run(
            command,
            input=image,
            capture_output=True,
            timeout=PAGE_TIMEOUT_S,
            env={**os.environ, "OMP_THREAD_LIMIT": "1"},
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise Unreadable(f"OCR took more than {PAGE_TIMEOUT_S} s on one image") from None
    except OSError as exc:
        raise Unreadable(f"OCR could not run tesseract: {exc.strerror or exc}") from None
    if done.returncode:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise Unreadable(f"OCR failed: {message[-1] if message else f'tesseract exited with {done.returncode}'}")
    return done.stdout.decode("utf-8", "replace").split("\f")
