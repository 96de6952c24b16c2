"""The page bundle of target=web: the converted model, TF.js and its wasm binaries, the page, and what makes it
an installable, offline-capable web app. Plain files, nothing fetched from another host.

Written to a temporary folder beside its destination and renamed into place (as exports are), so a
failed conversion or a half-copied library never leaves a bundle that looks whole.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

PAGE = Path(__file__).resolve().parent / "page"
JS = Path(__file__).resolve().parent / "js"
LIBRARIES = {  # bundle name -> file in node_modules (tasks/web/js/package.json pins the versions)
    "tf.min.js": "@tensorflow/tfjs/dist/tf.min.js",
    "tf-backend-wasm.min.js": "@tensorflow/tfjs-backend-wasm/dist/tf-backend-wasm.min.js",
    "tfjs-backend-wasm.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm",
    "tfjs-backend-wasm-simd.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-simd.wasm",
    "tfjs-backend-wasm-threaded-simd.wasm": "@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm-threaded-simd.wasm",
}
TFLITE = "@tensorflow/tfjs-tflite"  # format=tflite: its script and its wasm runtime (every file of wasm/)
THEME = (31, 78, 121)  # the icons' and the manifest's colour


def png(size: int, rgb: tuple[int, int, int] = THEME) -> bytes:
    """A square PNG icon: a coloured tile with a lighter square mark (zlib only, no imaging library)."""
    light = tuple(min(255, c + 120) for c in rgb)
    rows = []
    for y in range(size):
        row = bytearray([0])
        for x in range(size):
            inside = size * 0.3 <= x < size * 0.7 and size * 0.3 <= y < size * 0.7
            row += bytes(light if inside else rgb)
        rows.append(bytes(row))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows), 9))
        + chunk(b"IEND", b"")
    )


def build(
    model_dir: Path, dest: Path, page: dict[str, Any], node_modules: Path = JS / "node_modules"
) -> dict[str, Any]:
    """Write the bundle for a converted model at `dest` (atomically); its files and sizes."""
    tmp = dest.with_name(f".{dest.name}.tmp")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        scripts = ["tf.min.js", "tf-backend-wasm.min.js"]
        if model_dir.is_file():  # a .tflite file
            shutil.copy2(model_dir, tmp / "model.tflite")
            shutil.copy2(node_modules / TFLITE / "dist" / "tf-tflite.min.js", tmp / "tf-tflite.min.js")
            for item in sorted((node_modules / TFLITE / "wasm").iterdir()):
                shutil.copy2(item, tmp / item.name)
            scripts.append("tf-tflite.min.js")
        else:
            for item in sorted(model_dir.iterdir()):
                shutil.copy2(item, tmp / item.name)
        for name, source in LIBRARIES.items():
            shutil.copy2(node_modules / source, tmp / name)
        shutil.copy2(PAGE / "app.js", tmp / "app.js")
        tags = "\n".join(f'<script src="{name}"></script>' for name in scripts)
        (tmp / "index.html").write_text((PAGE / "index.html").read_text().replace("<!--LIBRARIES-->", tags))
        (tmp / "page.json").write_text(json.dumps(page, indent=1) + "\n")
        for size in (192, 512):
            (tmp / f"icon-{size}.png").write_bytes(png(size))
        manifest = {
            "name": page["title"],
            "short_name": page["title"][:12],
            "start_url": "./index.html",
            "scope": "./",
            "display": "standalone",
            "background_color": "#ffffff",
            "theme_color": "#%02x%02x%02x" % THEME,
            "description": page["description"],
            "icons": [
                {"src": f"icon-{s}.png", "sizes": f"{s}x{s}", "type": "image/png", "purpose": "any"} for s in (192, 512)
            ],
        }
        (tmp / "manifest.webmanifest").write_text(json.dumps(manifest, indent=1) + "\n")
        files = sorted(p.name for p in tmp.iterdir()) + ["sw.js"]
        digest = hashlib.sha256()
        for name in files[:-1]:
            digest.update(name.encode() + (tmp / name).read_bytes())
        worker = (
            (PAGE / "sw.js")
            .read_text()
            .replace("__VERSION__", digest.hexdigest()[:16])
            .replace("__FILES__", json.dumps(["./", *files]))
        )
        (tmp / "sw.js").write_text(worker)
        sizes = {name: (tmp / name).stat().st_size for name in files}
        if dest.exists():
            shutil.rmtree(dest)
        tmp.rename(dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"path": dest, "files": sizes, "bytes": sum(sizes.values()), "sha256": digest.hexdigest()}
